//! Financial Modeling Prep adapter (`GET /stable/quote?symbol=AAPL`).
//!
//! The answer is an array (`[]` for an unknown symbol) with numbers and a Unix `timestamp`.
//! Errors are `{"Error Message":…}`: "Limit Reach" with 429 or 200 (the free tier is 250
//! calls a day, back at midnight UTC), an invalid key with 401, a restricted endpoint or a
//! premium symbol with 402. The key can only go in the query string (`apikey`).

pub mod config;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::http::{self, Fields, HttpSource};
use super::settings::{ProviderSettings, key_text};
use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Symbol, fetch_time_now};

/// The FMP client.
pub struct Fmp {
    http: HttpSource,
    quote_url: String,
    key: String,
}

impl Fmp {
    /// A client from `settings` (which hold a key).
    pub fn new(settings: &ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpSource::new("FMP", settings.timeout, Default::default())?,
            quote_url: format!("{}/stable/quote", settings.base_url),
            key: key_text(settings),
        })
    }
}

#[async_trait]
impl QuoteProvider for Fmp {
    fn id(&self) -> ProviderId {
        ProviderId::Fmp
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        let answer = self
            .http
            .get(
                &self.quote_url,
                &[("symbol", symbol.as_str()), ("apikey", &self.key)],
            )
            .await?;
        match http::json("FMP", &answer.body) {
            Ok(body) => {
                if let Some(e) = error_of(&body, Utc::now()) {
                    return Err(e);
                }
                if !answer.status.is_success() {
                    return Err(http::status_error("FMP", &answer));
                }
                parse_quote(symbol, body, fetch_time_now())
            }
            Err(_) if !answer.status.is_success() => Err(http::status_error("FMP", &answer)),
            Err(e) => Err(e),
        }
    }
}

fn error_of(body: &Value, now: DateTime<Utc>) -> Option<ProviderError> {
    let message: String = body
        .get("Error Message")
        .and_then(Value::as_str)?
        .chars()
        .take(200)
        .collect();
    let lower = message.to_ascii_lowercase();
    Some(if lower.contains("limit reach") {
        ProviderError::RateLimited {
            retry_after: Some(http::until_next_window(now, 86_400)),
        }
    } else if lower.contains("api key") || lower.contains("apikey") {
        ProviderError::CredentialsRefused(format!("FMP: {message}"))
    } else if lower.contains("restricted")
        || lower.contains("premium")
        || lower.contains("subscription")
    {
        ProviderError::PlanRestricted(format!("FMP: {message}"))
    } else {
        ProviderError::Garbage(format!("FMP: {message}"))
    })
}

fn parse_quote(
    symbol: &Symbol,
    body: Value,
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    let Some(list) = body.as_array() else {
        return Err(ProviderError::Garbage(
            "FMP's answer is not an array".into(),
        ));
    };
    let Some(q) = list
        .iter()
        .find(|q| q.get("symbol").and_then(Value::as_str) == Some(symbol.as_str()))
        .or(list.first())
    else {
        return Err(ProviderError::NotFound);
    };
    let d = |k: &str| q.get(k).and_then(http::decimal);
    let fields = Fields {
        price: d("price"),
        change: d("change"),
        percent_change: d("changePercentage"),
        high: d("dayHigh"),
        low: d("dayLow"),
        open: d("open"),
        previous_close: d("previousClose"),
        quote_time: q.get("timestamp").and_then(http::unix_seconds),
    };
    let raw = q.clone();
    http::build_quote(ProviderId::Fmp, symbol, fields, raw, fetched_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/providers/fmp/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn aapl() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    #[test]
    fn the_quote_is_read_exactly() {
        let q = parse_quote(&aapl(), fixture("quote.json"), Utc::now())
            .unwrap()
            .quote;
        assert_eq!(q.price.to_string(), "261.74");
        assert_eq!(q.percent_change.unwrap().to_string(), "0.88263");
        assert_eq!(q.previous_close.to_string(), "259.45");
        assert_eq!(q.quote_time.timestamp(), 1_795_640_398);
    }

    #[test]
    fn an_empty_array_is_an_unknown_symbol() {
        assert_eq!(
            parse_quote(&aapl(), fixture("unknown_symbol.json"), Utc::now()),
            Err(ProviderError::NotFound)
        );
    }

    #[test]
    fn error_messages_are_classified() {
        let now = DateTime::from_timestamp(86_400 - 10, 0).unwrap();
        assert_eq!(
            error_of(&fixture("limit_reach.json"), now),
            Some(ProviderError::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(10))
            })
        );
        assert!(matches!(
            error_of(&fixture("bad_key.json"), now),
            Some(ProviderError::CredentialsRefused(_))
        ));
        assert!(matches!(
            error_of(&fixture("restricted.json"), now),
            Some(ProviderError::PlanRestricted(_))
        ));
        assert_eq!(error_of(&fixture("quote.json"), now), None);
        assert!(matches!(
            parse_quote(&aapl(), serde_json::json!({"a":1}), now),
            Err(ProviderError::Garbage(_))
        ));
    }
}
