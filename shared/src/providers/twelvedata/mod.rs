//! Twelve Data adapter (`GET /quote?symbol=AAPL`, batch `symbol=AAPL,MSFT`).
//!
//! Prices are strings; the quote time is `last_quote_at` when present, else `timestamp`
//! (Unix seconds). Errors are `{"code":N,"message":…,"status":"error"}`, with the HTTP status
//! or inside a 200 (and per symbol inside a batch): 404 unknown symbol, 401 bad key, 429 out
//! of credits (they come back at the next minute), 403 plan. A call costs one credit per
//! symbol. The key goes in the `Authorization: apikey …` header, never in the URL.

pub mod config;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use super::http::{self, Answer, Fields, HttpSource};
use super::settings::{ProviderSettings, key_text};
use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Symbol, fetch_time_now};

/// Symbols asked in one batch call.
pub const MAX_BATCH: usize = 50;

/// The Twelve Data client.
pub struct TwelveData {
    http: HttpSource,
    quote_url: String,
}

impl TwelveData {
    /// A client from `settings` (which hold a key).
    pub fn new(settings: &ProviderSettings) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        if let Ok(mut v) = HeaderValue::from_str(&format!("apikey {}", key_text(settings))) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        Ok(Self {
            http: HttpSource::new("Twelve Data", settings.timeout, headers)?,
            quote_url: format!("{}/quote", settings.base_url),
        })
    }

    async fn ask(&self, symbols: &[Symbol]) -> Result<(Answer, Value), ProviderError> {
        let list: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        let answer = self
            .http
            .get(&self.quote_url, &[("symbol", &list.join(","))])
            .await?;
        let body = match http::json("Twelve Data", &answer.body) {
            Ok(v) => v,
            Err(e) if answer.status.is_success() => return Err(e),
            Err(_) => return Err(http::status_error("Twelve Data", &answer)),
        };
        if let Some(e) = error_of(&body, Utc::now()) {
            return Err(e);
        }
        if !answer.status.is_success() {
            return Err(http::status_error("Twelve Data", &answer));
        }
        Ok((answer, body))
    }
}

#[async_trait]
impl QuoteProvider for TwelveData {
    fn id(&self) -> ProviderId {
        ProviderId::Twelvedata
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        let (_, body) = self.ask(std::slice::from_ref(symbol)).await?;
        parse_quote(symbol, body, fetch_time_now())
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn cost(&self, symbols: usize) -> u32 {
        u32::try_from(symbols).unwrap_or(u32::MAX)
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Vec<Result<FetchedQuote, ProviderError>> {
        if symbols.len() == 1 {
            return vec![self.quote(&symbols[0]).await];
        }
        match self.ask(symbols).await {
            Ok((_, body)) => parse_batch(symbols, &body, fetch_time_now()),
            Err(e) => symbols.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

/// The error a body reports, if it is an error body.
fn error_of(body: &Value, now: DateTime<Utc>) -> Option<ProviderError> {
    if body.get("status").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .chars()
        .take(200)
        .collect::<String>();
    Some(match body.get("code").and_then(Value::as_i64) {
        Some(404) => ProviderError::NotFound,
        Some(401) => ProviderError::CredentialsRefused(format!("Twelve Data: {message}")),
        Some(403) => ProviderError::PlanRestricted(format!("Twelve Data: {message}")),
        // Credits come back at the start of the next minute (the daily ones at midnight UTC).
        Some(429) => ProviderError::RateLimited {
            retry_after: Some(if message.contains("day") {
                http::until_next_window(now, 86_400)
            } else {
                http::until_next_window(now, 60)
            }),
        },
        Some(c) if c >= 500 => ProviderError::Unavailable(format!("Twelve Data {c}: {message}")),
        _ => ProviderError::Garbage(format!("Twelve Data: {message}")),
    })
}

/// One symbol's quote object.
fn parse_quote(
    symbol: &Symbol,
    body: Value,
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    if let Some(e) = error_of(&body, Utc::now()) {
        return Err(e);
    }
    if !body.is_object() {
        return Err(ProviderError::Garbage(
            "Twelve Data's answer is not a quote object".into(),
        ));
    }
    let d = |k: &str| body.get(k).and_then(http::decimal);
    let time = body
        .get("last_quote_at")
        .and_then(http::unix_seconds)
        .or_else(|| body.get("timestamp").and_then(http::unix_seconds));
    let fields = Fields {
        price: d("close"),
        change: d("change"),
        percent_change: d("percent_change"),
        high: d("high"),
        low: d("low"),
        open: d("open"),
        previous_close: d("previous_close"),
        quote_time: time,
    };
    http::build_quote(ProviderId::Twelvedata, symbol, fields, body, fetched_at)
}

/// A batch answer: an object keyed by symbol (a symbol missing from it is unknown).
fn parse_batch(
    symbols: &[Symbol],
    body: &Value,
    fetched_at: DateTime<Utc>,
) -> Vec<Result<FetchedQuote, ProviderError>> {
    symbols
        .iter()
        .map(|s| match body.get(s.as_str()) {
            Some(one) => parse_quote(s, one.clone(), fetched_at),
            None => Err(ProviderError::NotFound),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/providers/twelvedata/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn string_prices_are_read_exactly_and_the_time_is_last_quote_at() {
        let q = parse_quote(&sym("AAPL"), fixture("quote.json"), Utc::now())
            .unwrap()
            .quote;
        assert_eq!(q.price.to_string(), "261.74001");
        assert_eq!(q.previous_close.to_string(), "259.45001");
        assert_eq!(q.percent_change.unwrap().to_string(), "0.88263");
        assert_eq!(q.quote_time.timestamp(), 1_795_640_398);
    }

    #[test]
    fn a_batch_is_keyed_by_symbol_with_errors_per_symbol() {
        let symbols = [sym("AAPL"), sym("MSFT"), sym("ZZZZZ"), sym("IBM")];
        let out = parse_batch(&symbols, &fixture("batch.json"), Utc::now());
        assert_eq!(
            out[0].as_ref().unwrap().quote.price.to_string(),
            "261.74001"
        );
        // No last_quote_at: the bar's timestamp.
        assert_eq!(
            out[1].as_ref().unwrap().quote.quote_time.timestamp(),
            1_795_615_200
        );
        assert_eq!(out[2], Err(ProviderError::NotFound));
        assert_eq!(out[3], Err(ProviderError::NotFound));
    }

    #[test]
    fn every_error_body_is_classified_whatever_the_status() {
        let now = DateTime::from_timestamp(1_795_640_398, 0).unwrap();
        assert_eq!(
            error_of(&fixture("unknown_symbol.json"), now),
            Some(ProviderError::NotFound)
        );
        assert!(matches!(
            error_of(&fixture("bad_key.json"), now),
            Some(ProviderError::CredentialsRefused(_))
        ));
        assert!(matches!(
            error_of(&fixture("plan.json"), now),
            Some(ProviderError::PlanRestricted(_))
        ));
        assert_eq!(
            error_of(&fixture("out_of_credits.json"), now),
            Some(ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            })
        );
        assert_eq!(error_of(&fixture("quote.json"), now), None);
    }

    #[test]
    fn malformed_quotes_are_garbage() {
        for body in [
            serde_json::json!([1, 2]),
            serde_json::json!({"symbol": "AAPL", "close": "abc", "timestamp": 1}),
            serde_json::json!({"symbol": "AAPL", "close": "1.5"}),
            serde_json::json!({"symbol": "AAPL", "close": "0", "timestamp": 1}),
        ] {
            assert!(
                matches!(
                    parse_quote(&sym("AAPL"), body.clone(), Utc::now()),
                    Err(ProviderError::Garbage(_))
                ),
                "{body}"
            );
        }
    }
}
