//! Massive (formerly Polygon.io) adapter: the previous day's bar
//! (`GET /v2/aggs/ticker/AAPL/prev`), the latest quote the free tier allows.
//!
//! The bar's `t` is milliseconds (trades and snapshots, which need a paid plan and are not
//! asked here, use nanoseconds). The bar's close is both the price and the previous close;
//! `change` is not reported. An unknown symbol is 200 with `resultsCount: 0` and no
//! `results`; errors are `{"status":"ERROR","error":…}` (429 sometimes with an empty body),
//! a plan refusal 403 `{"status":"NOT_AUTHORIZED",…}`. The key goes in
//! `Authorization: Bearer …`.

pub mod config;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use super::http::{self, Fields, HttpSource};
use super::settings::{ProviderSettings, key_text};
use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Symbol, fetch_time_now};

/// The Massive client.
pub struct Massive {
    http: HttpSource,
    base_url: String,
}

impl Massive {
    /// A client from `settings` (which hold a key).
    pub fn new(settings: &ProviderSettings) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", key_text(settings))) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        Ok(Self {
            http: HttpSource::new("Massive", settings.timeout, headers)?,
            base_url: settings.base_url.clone(),
        })
    }
}

#[async_trait]
impl QuoteProvider for Massive {
    fn id(&self) -> ProviderId {
        ProviderId::Massive
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        let url = format!("{}/v2/aggs/ticker/{}/prev", self.base_url, symbol.as_str());
        let answer = self.http.get(&url, &[("adjusted", "true")]).await?;
        let body = http::json("Massive", &answer.body).ok();
        if !answer.status.is_success() {
            return Err(match (answer.status, body.as_ref()) {
                (StatusCode::UNAUTHORIZED, _) => ProviderError::CredentialsRefused(format!(
                    "Massive answered 401: {}",
                    message(body.as_ref())
                )),
                (StatusCode::FORBIDDEN, _) => {
                    ProviderError::PlanRestricted(format!("Massive: {}", message(body.as_ref())))
                }
                // Massive's limits are per minute.
                (StatusCode::TOO_MANY_REQUESTS, _) => ProviderError::RateLimited {
                    retry_after: http::retry_after(&answer.headers, Utc::now())
                        .or(Some(http::until_next_window(Utc::now(), 60))),
                },
                _ => http::status_error("Massive", &answer),
            });
        }
        let body =
            body.ok_or_else(|| ProviderError::Garbage("Massive's answer is not JSON".into()))?;
        parse_prev(symbol, body, fetch_time_now())
    }
}

fn message(body: Option<&Value>) -> String {
    body.and_then(|b| b.get("error").or_else(|| b.get("message")))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .chars()
        .take(200)
        .collect()
}

fn parse_prev(
    symbol: &Symbol,
    body: Value,
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    match body.get("status").and_then(Value::as_str) {
        Some("OK" | "DELAYED") => {}
        Some("NOT_AUTHORIZED") => {
            return Err(ProviderError::PlanRestricted(format!(
                "Massive: {}",
                message(Some(&body))
            )));
        }
        _ => {
            return Err(ProviderError::Garbage(format!(
                "Massive: {}",
                message(Some(&body))
            )));
        }
    }
    let bar = match body.get("results").and_then(Value::as_array) {
        Some(results) => results.first(),
        None => None,
    };
    let Some(bar) = bar else {
        return if body.get("resultsCount").and_then(Value::as_i64) == Some(0)
            || body.get("results").is_none()
        {
            Err(ProviderError::NotFound)
        } else {
            Err(ProviderError::Garbage("Massive's answer has no bar".into()))
        };
    };
    let d = |k: &str| bar.get(k).and_then(http::decimal);
    let time = bar
        .get("t")
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis);
    let fields = Fields {
        price: d("c"),
        change: None,
        percent_change: None,
        high: d("h"),
        low: d("l"),
        open: d("o"),
        previous_close: d("c"),
        quote_time: time,
    };
    http::build_quote(ProviderId::Massive, symbol, fields, body, fetched_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/providers/massive/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn aapl() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    #[test]
    fn the_previous_bar_is_read_with_its_millisecond_time() {
        let q = parse_prev(&aapl(), fixture("prev.json"), Utc::now())
            .unwrap()
            .quote;
        assert_eq!(q.price.to_string(), "261.74");
        assert_eq!(q.open.to_string(), "261.07");
        assert_eq!(q.quote_time.timestamp_millis(), 1_795_640_400_000);
        assert_eq!(q.change, None);
    }

    #[test]
    fn zero_results_is_an_unknown_symbol() {
        assert_eq!(
            parse_prev(&aapl(), fixture("unknown_symbol.json"), Utc::now()),
            Err(ProviderError::NotFound)
        );
    }

    #[test]
    fn error_bodies_and_odd_shapes_are_classified() {
        assert!(matches!(
            parse_prev(&aapl(), fixture("not_authorized.json"), Utc::now()),
            Err(ProviderError::PlanRestricted(_))
        ));
        assert!(matches!(
            parse_prev(&aapl(), fixture("rate_limited.json"), Utc::now()),
            Err(ProviderError::Garbage(_))
        ));
        assert!(matches!(
            parse_prev(
                &aapl(),
                serde_json::json!({"status":"OK","resultsCount":1,"results":[{"c":"x","t":1}]}),
                Utc::now()
            ),
            Err(ProviderError::Garbage(_))
        ));
        assert_eq!(message(Some(&fixture("bad_key.json"))), "Unknown API Key");
    }
}
