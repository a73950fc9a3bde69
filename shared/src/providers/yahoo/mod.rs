//! Yahoo chart adapter (`GET /v8/finance/chart/AAPL?range=1d&interval=1d`): unofficial,
//! keyless, and for personal use only by Yahoo's terms, so it is off unless
//! `YAHOO_ENABLED=true`.
//!
//! The price is `meta.regularMarketPrice`, its time `meta.regularMarketTime` (Unix seconds).
//! An unknown symbol is 404 with `chart.error`; the rate limit is 429 with a plain-text body.

pub mod config;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use super::http::{self, Fields, HttpSource};
use super::settings::ProviderSettings;
use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Symbol, fetch_time_now};

/// The Yahoo chart client.
pub struct Yahoo {
    http: HttpSource,
    chart_url: String,
}

impl Yahoo {
    /// A client from `settings`.
    pub fn new(settings: &ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpSource::new("Yahoo", settings.timeout, Default::default())?,
            chart_url: format!("{}/v8/finance/chart", settings.base_url),
        })
    }
}

#[async_trait]
impl QuoteProvider for Yahoo {
    fn id(&self) -> ProviderId {
        ProviderId::Yahoo
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        let url = format!("{}/{}", self.chart_url, symbol.as_str());
        let answer = self
            .http
            .get(&url, &[("range", "1d"), ("interval", "1d")])
            .await?;
        let body = http::json("Yahoo", &answer.body);
        match (answer.status, body) {
            (StatusCode::OK, Ok(body)) => parse_chart(symbol, body, fetch_time_now()),
            (StatusCode::NOT_FOUND, Ok(body)) if body.pointer("/chart/error").is_some() => {
                Err(ProviderError::NotFound)
            }
            (StatusCode::TOO_MANY_REQUESTS, _) => Err(ProviderError::RateLimited {
                retry_after: http::retry_after(&answer.headers, Utc::now()),
            }),
            (StatusCode::OK, Err(e)) => Err(e),
            _ => Err(http::status_error("Yahoo", &answer)),
        }
    }
}

fn parse_chart(
    symbol: &Symbol,
    body: Value,
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    if let Some(e) = body.pointer("/chart/error").filter(|e| !e.is_null()) {
        return Err(
            if e.get("code").and_then(Value::as_str) == Some("Not Found") {
                ProviderError::NotFound
            } else {
                ProviderError::Garbage(format!("Yahoo: {e}"))
            },
        );
    }
    let Some(meta) = body.pointer("/chart/result/0/meta") else {
        return Err(ProviderError::Garbage(
            "Yahoo's answer has no chart.result[0].meta".into(),
        ));
    };
    let d = |k: &str| meta.get(k).and_then(http::decimal);
    let open = body
        .pointer("/chart/result/0/indicators/quote/0/open/0")
        .and_then(http::decimal)
        .map(|o| o.round_dp(4));
    let price = d("regularMarketPrice");
    let previous_close = d("previousClose").or_else(|| d("chartPreviousClose"));
    let change = price.zip(previous_close).map(|(p, c)| p - c);
    let fields = Fields {
        price,
        change,
        percent_change: change
            .zip(previous_close)
            .filter(|(_, c)| !c.is_zero())
            .map(|(ch, c)| (ch / c * rust_decimal::Decimal::ONE_HUNDRED).round_dp(4)),
        high: d("regularMarketDayHigh"),
        low: d("regularMarketDayLow"),
        open,
        previous_close,
        quote_time: meta.get("regularMarketTime").and_then(http::unix_seconds),
    };
    let raw = serde_json::json!({ "meta": meta });
    http::build_quote(ProviderId::Yahoo, symbol, fields, raw, fetched_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/providers/yahoo/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn aapl() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    #[test]
    fn the_meta_price_and_time_are_read() {
        let q = parse_chart(&aapl(), fixture("chart.json"), Utc::now())
            .unwrap()
            .quote;
        assert_eq!(q.price.to_string(), "261.74");
        assert_eq!(q.quote_time.timestamp(), 1_795_640_401);
        assert_eq!(q.previous_close.to_string(), "259.45");
        assert_eq!(q.open.to_string(), "261.0700");
    }

    #[test]
    fn chart_errors_and_odd_shapes_are_classified() {
        assert_eq!(
            parse_chart(&aapl(), fixture("unknown_symbol.json"), Utc::now()),
            Err(ProviderError::NotFound)
        );
        assert!(matches!(
            parse_chart(
                &aapl(),
                serde_json::json!({"chart":{"result":[]}}),
                Utc::now()
            ),
            Err(ProviderError::Garbage(_))
        ));
    }
}
