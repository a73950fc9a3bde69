//! Alpha Vantage adapter (`GET /query?function=GLOBAL_QUOTE&symbol=IBM`).
//!
//! Every value is a string (`"05. price"`, `"10. change percent":"0.6319%"`), and every
//! answer is HTTP 200: an unknown symbol is `{"Global Quote":{}}`, the rate limit an
//! `Information` (older: `Note`) message, a bad key an `Error Message`. The key can only go
//! in the query string (`apikey`).
//!
//! Alpha Vantage gives only the trading day (`07. latest trading day`), no time. The rule:
//! the quote time is that day's regular close, 16:00 in New York (20:00 or 21:00 UTC with
//! daylight saving time), or the time of the fetch if that is earlier (the day is still
//! trading).

pub mod config;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use serde_json::Value;

use super::http::{self, Fields, HttpSource};
use super::settings::{ProviderSettings, key_text};
use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Symbol, fetch_time_now};

/// The Alpha Vantage client.
pub struct AlphaVantage {
    http: HttpSource,
    query_url: String,
    key: String,
}

impl AlphaVantage {
    /// A client from `settings` (which hold a key).
    pub fn new(settings: &ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpSource::new("Alpha Vantage", settings.timeout, Default::default())?,
            query_url: format!("{}/query", settings.base_url),
            key: key_text(settings),
        })
    }
}

#[async_trait]
impl QuoteProvider for AlphaVantage {
    fn id(&self) -> ProviderId {
        ProviderId::Alphavantage
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        let answer = self
            .http
            .get(
                &self.query_url,
                &[
                    ("function", "GLOBAL_QUOTE"),
                    ("symbol", symbol.as_str()),
                    ("apikey", &self.key),
                ],
            )
            .await?;
        if !answer.status.is_success() {
            return Err(http::status_error("Alpha Vantage", &answer));
        }
        let body = http::json("Alpha Vantage", &answer.body)?;
        parse_quote(symbol, body, fetch_time_now())
    }
}

fn parse_quote(
    symbol: &Symbol,
    body: Value,
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(m) = text("Information").or_else(|| text("Note")) {
        return Err(information(&m, fetched_at));
    }
    if let Some(m) = text("Error Message") {
        let m: String = m.chars().take(200).collect();
        return Err(if m.contains("apikey") {
            ProviderError::CredentialsRefused(format!("Alpha Vantage: {m}"))
        } else {
            ProviderError::Garbage(format!("Alpha Vantage: {m}"))
        });
    }
    let Some(q) = body.get("Global Quote").and_then(Value::as_object) else {
        return Err(ProviderError::Garbage(
            "Alpha Vantage's answer has no \"Global Quote\"".into(),
        ));
    };
    if q.is_empty() {
        return Err(ProviderError::NotFound);
    }
    let d = |k: &str| q.get(k).and_then(http::decimal);
    let day = q
        .get("07. latest trading day")
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    let fields = Fields {
        price: d("05. price"),
        change: d("09. change"),
        percent_change: d("10. change percent"),
        high: d("03. high"),
        low: d("04. low"),
        open: d("02. open"),
        previous_close: d("08. previous close"),
        quote_time: day
            .and_then(new_york_close)
            .map(|close| close.min(fetched_at)),
    };
    http::build_quote(ProviderId::Alphavantage, symbol, fields, body, fetched_at)
}

/// An `Information`/`Note` message: the rate limit (per day: until midnight UTC; per minute:
/// a minute), or a premium endpoint.
fn information(message: &str, now: DateTime<Utc>) -> ProviderError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("premium endpoint") {
        return ProviderError::PlanRestricted(format!(
            "Alpha Vantage: {}",
            message.chars().take(200).collect::<String>()
        ));
    }
    let retry_after = if lower.contains("per day") && !lower.contains("per minute") {
        http::until_next_window(now, 86_400)
    } else {
        std::time::Duration::from_secs(60)
    };
    ProviderError::RateLimited {
        retry_after: Some(retry_after),
    }
}

/// 16:00 in New York on `day`, in UTC. US daylight saving time runs from the second Sunday
/// of March to the first Sunday of November.
fn new_york_close(day: NaiveDate) -> Option<DateTime<Utc>> {
    let nth_sunday = |month: u32, n: u8| {
        NaiveDate::from_weekday_of_month_opt(day.year(), month, Weekday::Sun, n)
    };
    let dst = match (nth_sunday(3, 2), nth_sunday(11, 1)) {
        (Some(start), Some(end)) => day >= start && day < end,
        _ => false,
    };
    let hour = if dst { 20 } else { 21 };
    Some(day.and_hms_opt(hour, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/providers/alphavantage/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn ibm() -> Symbol {
        Symbol::parse("IBM").unwrap()
    }

    fn late() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T09:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn every_string_is_read_exactly_and_the_day_becomes_its_close() {
        let q = parse_quote(&ibm(), fixture("quote.json"), late())
            .unwrap()
            .quote;
        assert_eq!(q.price.to_string(), "170.0100");
        assert_eq!(q.percent_change.unwrap().to_string(), "0.6319");
        assert_eq!(q.previous_close.to_string(), "168.9400");
        // 25 November 2026 is after daylight saving time ended: 16:00 EST is 21:00 UTC.
        assert_eq!(q.quote_time.to_rfc3339(), "2026-11-25T21:00:00+00:00");
    }

    #[test]
    fn a_day_still_trading_is_stamped_with_the_fetch_time() {
        let during = DateTime::parse_from_rfc3339("2026-11-25T15:00:00Z")
            .unwrap()
            .to_utc();
        let q = parse_quote(&ibm(), fixture("quote.json"), during)
            .unwrap()
            .quote;
        assert_eq!(q.quote_time, during);
    }

    #[test]
    fn summer_closes_are_an_hour_earlier_in_utc() {
        let d = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        assert_eq!(
            new_york_close(d).unwrap().to_rfc3339(),
            "2026-07-01T20:00:00+00:00"
        );
    }

    #[test]
    fn errors_in_200_bodies_are_classified() {
        assert_eq!(
            parse_quote(&ibm(), fixture("unknown_symbol.json"), late()),
            Err(ProviderError::NotFound)
        );
        for f in ["rate_limited.json", "rate_limited_note.json"] {
            assert!(
                matches!(
                    parse_quote(&ibm(), fixture(f), late()),
                    Err(ProviderError::RateLimited {
                        retry_after: Some(_)
                    })
                ),
                "{f}"
            );
        }
        // 25 a day: back at midnight UTC.
        assert_eq!(
            parse_quote(&ibm(), fixture("rate_limited.json"), late()),
            Err(ProviderError::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(15 * 3600))
            })
        );
        assert!(matches!(
            parse_quote(&ibm(), fixture("bad_key.json"), late()),
            Err(ProviderError::CredentialsRefused(_))
        ));
        assert!(matches!(
            parse_quote(&ibm(), fixture("premium.json"), late()),
            Err(ProviderError::PlanRestricted(_))
        ));
        assert!(matches!(
            parse_quote(&ibm(), serde_json::json!({"x": 1}), late()),
            Err(ProviderError::Garbage(_))
        ));
    }
}
