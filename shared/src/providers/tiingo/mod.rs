//! Tiingo adapter (`GET /iex/?tickers=aapl,msft`, a batch endpoint).
//!
//! The answer is an array, one object per known ticker (an unknown one is simply absent).
//! `tngoLast` is preferred (`last` may be null outside IEX hours); times are ISO 8601 with an
//! offset and nanoseconds, kept to microseconds. Errors are `{"detail":…}`: 429 (or 200)
//! for the hourly or daily allocation, 401/403 for the token. The key goes in
//! `Authorization: Token …`.

pub mod config;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use super::http::{self, Fields, HttpSource};
use super::settings::{ProviderSettings, key_text};
use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Symbol, fetch_time_now};

/// Tickers asked in one call.
pub const MAX_BATCH: usize = 50;

/// The Tiingo client.
pub struct Tiingo {
    http: HttpSource,
    iex_url: String,
}

impl Tiingo {
    /// A client from `settings` (which hold a key).
    pub fn new(settings: &ProviderSettings) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        if let Ok(mut v) = HeaderValue::from_str(&format!("Token {}", key_text(settings))) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        Ok(Self {
            http: HttpSource::new("Tiingo", settings.timeout, headers)?,
            iex_url: format!("{}/iex/", settings.base_url),
        })
    }
}

#[async_trait]
impl QuoteProvider for Tiingo {
    fn id(&self) -> ProviderId {
        ProviderId::Tiingo
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        self.quotes(std::slice::from_ref(symbol))
            .await
            .pop()
            .unwrap_or(Err(ProviderError::NotFound))
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Vec<Result<FetchedQuote, ProviderError>> {
        let tickers: Vec<String> = symbols
            .iter()
            .map(|s| s.as_str().to_ascii_lowercase())
            .collect();
        let answer = match self
            .http
            .get(&self.iex_url, &[("tickers", &tickers.join(","))])
            .await
        {
            Ok(a) => a,
            Err(e) => return symbols.iter().map(|_| Err(e.clone())).collect(),
        };
        let body = match http::json("Tiingo", &answer.body) {
            Ok(b) => b,
            Err(_) if !answer.status.is_success() => {
                let e = http::status_error("Tiingo", &answer);
                return symbols.iter().map(|_| Err(e.clone())).collect();
            }
            Err(e) => return symbols.iter().map(|_| Err(e.clone())).collect(),
        };
        if let Some(e) = error_of(&body, Utc::now()).or_else(|| {
            (!answer.status.is_success()).then(|| http::status_error("Tiingo", &answer))
        }) {
            return symbols.iter().map(|_| Err(e.clone())).collect();
        }
        parse_batch(symbols, &body, fetch_time_now())
    }
}

fn error_of(body: &Value, now: DateTime<Utc>) -> Option<ProviderError> {
    let detail: String = body
        .get("detail")
        .and_then(Value::as_str)?
        .chars()
        .take(200)
        .collect();
    let lower = detail.to_ascii_lowercase();
    Some(if lower.contains("allocation") || lower.contains("limit") {
        let window = if lower.contains("daily") {
            86_400
        } else {
            3_600
        };
        ProviderError::RateLimited {
            retry_after: Some(http::until_next_window(now, window)),
        }
    } else if lower.contains("token") {
        ProviderError::CredentialsRefused(format!("Tiingo: {detail}"))
    } else if lower.contains("permission") || lower.contains("upgrade") {
        ProviderError::PlanRestricted(format!("Tiingo: {detail}"))
    } else {
        ProviderError::Garbage(format!("Tiingo: {detail}"))
    })
}

fn parse_batch(
    symbols: &[Symbol],
    body: &Value,
    fetched_at: DateTime<Utc>,
) -> Vec<Result<FetchedQuote, ProviderError>> {
    let Some(list) = body.as_array() else {
        let e = ProviderError::Garbage("Tiingo's answer is not an array".into());
        return symbols.iter().map(|_| Err(e.clone())).collect();
    };
    symbols
        .iter()
        .map(|s| {
            let item = list.iter().find(|q| {
                q.get("ticker")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(s.as_str()))
            });
            match item {
                Some(q) => parse_one(s, q, fetched_at),
                None => Err(ProviderError::NotFound),
            }
        })
        .collect()
}

fn parse_one(
    symbol: &Symbol,
    q: &Value,
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    let d = |k: &str| q.get(k).and_then(http::decimal);
    let time = |k: &str| {
        q.get(k)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
    };
    let price = d("tngoLast").or_else(|| d("last"));
    let previous_close = d("prevClose");
    let change = price.zip(previous_close).map(|(p, c)| p - c);
    let fields = Fields {
        price,
        change,
        percent_change: change
            .zip(previous_close)
            .filter(|(_, c)| !c.is_zero())
            .map(|(ch, c)| (ch / c * rust_decimal::Decimal::ONE_HUNDRED).round_dp(4)),
        high: d("high"),
        low: d("low"),
        open: d("open"),
        previous_close,
        quote_time: time("timestamp").or_else(|| time("lastSaleTimestamp")),
    };
    http::build_quote(ProviderId::Tiingo, symbol, fields, q.clone(), fetched_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/providers/tiingo/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn tngo_last_is_preferred_and_nanosecond_offsets_become_utc_microseconds() {
        let out = parse_batch(
            &[sym("AAPL"), sym("MSFT"), sym("ZZZZZ")],
            &fixture("iex.json"),
            Utc::now(),
        );
        let aapl = &out[0].as_ref().unwrap().quote;
        assert_eq!(aapl.price.to_string(), "261.74");
        assert_eq!(
            aapl.quote_time.to_rfc3339(),
            "2026-11-25T21:00:00.123456+00:00"
        );
        assert_eq!(aapl.change.unwrap().to_string(), "2.29");
        assert_eq!(
            out[1].as_ref().unwrap().quote.quote_time.to_rfc3339(),
            "2026-11-25T15:59:58.500+00:00"
        );
        assert_eq!(out[2], Err(ProviderError::NotFound));
    }

    #[test]
    fn an_empty_array_is_unknown_and_details_are_classified() {
        assert_eq!(
            parse_batch(&[sym("ZZZZZ")], &fixture("unknown_symbol.json"), Utc::now()),
            vec![Err(ProviderError::NotFound)]
        );
        let now = DateTime::from_timestamp(3_600 - 5, 0).unwrap();
        assert_eq!(
            error_of(&fixture("rate_limited.json"), now),
            Some(ProviderError::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(5))
            })
        );
        assert!(matches!(
            error_of(&fixture("bad_key.json"), now),
            Some(ProviderError::CredentialsRefused(_))
        ));
        assert!(matches!(
            parse_batch(&[sym("A")], &serde_json::json!({"a":1}), now)[0],
            Err(ProviderError::Garbage(_))
        ));
    }
}
