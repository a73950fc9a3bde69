//! Finnhub adapter of the quote-provider port (`GET /quote`).
//!
//! Everything about Finnhub lives here: the request, the API key header, the shape of its
//! answers and the mapping of its failure modes to [`ProviderError`]. One `reqwest` client
//! (and so one connection pool) is built per process and reused by every invocation.

mod config;

pub use config::{FINNHUB_DEFAULT_BASE_URL, FINNHUB_DEFAULT_QUOTA, FINNHUB_SETTING, FinnhubConfig};

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{ProviderError, QuoteProvider};
use crate::domain::{FetchedQuote, ProviderId, Quote, Symbol, exact_json_option, fetch_time_now};

/// Bodies larger than this are not a quote; reading stops there.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The Finnhub REST client.
pub struct Finnhub {
    client: reqwest::Client,
    quote_url: String,
    timeout: Duration,
}

/// Finnhub's `/quote` answer. Unknown symbols come back as 200 with every field zero.
/// Prices are read from the digits Finnhub sent, never through a double.
#[derive(Debug, Deserialize)]
struct FinnhubQuote {
    #[serde(default, with = "exact_json_option")]
    c: Option<Decimal>,
    #[serde(default, with = "exact_json_option")]
    d: Option<Decimal>,
    #[serde(default, with = "exact_json_option")]
    dp: Option<Decimal>,
    #[serde(default, with = "exact_json_option")]
    h: Option<Decimal>,
    #[serde(default, with = "exact_json_option")]
    l: Option<Decimal>,
    #[serde(default, with = "exact_json_option")]
    o: Option<Decimal>,
    #[serde(default, with = "exact_json_option")]
    pc: Option<Decimal>,
    t: Option<i64>,
}

impl Finnhub {
    /// A client for Finnhub, or `None` when no API key is configured.
    pub fn from_config(config: &FinnhubConfig) -> Result<Option<Self>, reqwest::Error> {
        let Some(key) = &config.api_key else {
            return Ok(None);
        };
        let mut token = match HeaderValue::from_str(key.expose_secret()) {
            Ok(v) => v,
            // A key that cannot be a header value cannot be valid either; let Finnhub say so
            // rather than failing start-up with a message that would have to quote the key.
            Err(_) => HeaderValue::from_static("invalid-key"),
        };
        token.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("X-Finnhub-Token", token);

        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("market-data-backend/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_keepalive(Duration::from_secs(30))
            .build()?;
        Ok(Some(Self {
            client,
            quote_url: format!("{}/quote", config.base_url),
            timeout: config.timeout,
        }))
    }

    fn transport_error(&self, e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::Unavailable(format!(
                "Finnhub did not answer within {} ms",
                self.timeout.as_millis()
            ))
        } else if e.is_connect() {
            ProviderError::Unavailable("could not connect to Finnhub".into())
        } else {
            // Never format the request itself: its headers carry the API key.
            ProviderError::Unavailable(format!("request to Finnhub failed: {}", e.without_url()))
        }
    }
}

#[async_trait]
impl QuoteProvider for Finnhub {
    fn id(&self) -> ProviderId {
        ProviderId::Finnhub
    }

    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError> {
        let mut response = self
            .client
            .get(&self.quote_url)
            .query(&[("symbol", symbol.as_str())])
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;

        let status = response.status();
        if status != StatusCode::OK {
            return Err(status_error(status, response.headers()));
        }

        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ProviderError::Garbage(
                    "Finnhub's answer is too large to be a quote".into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        parse_quote(symbol, &body, fetch_time_now())
    }
}

fn status_error(status: StatusCode, headers: &HeaderMap) -> ProviderError {
    match status {
        StatusCode::UNAUTHORIZED => ProviderError::CredentialsRefused(format!(
            "Finnhub answered {status}: check FINNHUB_API_KEY"
        )),
        // Finnhub's "You don't have access to this resource": a premium symbol or endpoint.
        StatusCode::FORBIDDEN => ProviderError::PlanRestricted(format!(
            "Finnhub answered {status}: the plan does not cover this symbol"
        )),
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(headers, Utc::now()),
        },
        s => ProviderError::Unavailable(format!("Finnhub answered {s}")),
    }
}

/// Finnhub sends `X-Ratelimit-Reset` (a Unix time); a proxy may send `Retry-After` seconds.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    // Finnhub's limits are per minute: a reset further off than that is not believed.
    super::http::retry_after_within(headers, now, 60)
}

/// Reads a `/quote` body into a quote, refusing anything that is not a real price.
fn parse_quote(
    symbol: &Symbol,
    body: &[u8],
    fetched_at: DateTime<Utc>,
) -> Result<FetchedQuote, ProviderError> {
    let raw: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Garbage(format!("Finnhub's answer is not JSON: {e}")))?;
    let q: FinnhubQuote = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Garbage(format!("Finnhub's answer is not a quote: {e}")))?;

    let price = q.c.unwrap_or_default();
    let time = q.t.unwrap_or_default();
    if price <= Decimal::ZERO || time <= 0 {
        // Finnhub's way of saying "unknown symbol": 200 with c = 0, pc = 0, t = 0.
        return Err(ProviderError::NotFound);
    }
    let quote_time = DateTime::from_timestamp(time, 0).ok_or_else(|| {
        ProviderError::Garbage(format!("Finnhub's quote time {time} is out of range"))
    })?;

    Ok(FetchedQuote {
        quote: Quote {
            symbol: symbol.clone(),
            provider: ProviderId::Finnhub,
            price,
            change: q.d,
            percent_change: q.dp,
            high: q.h.unwrap_or(price),
            low: q.l.unwrap_or(price),
            open: q.o.unwrap_or(price),
            previous_close: q.pc.unwrap_or_default(),
            quote_time,
            fetched_at,
        },
        raw,
    })
}

#[cfg(test)]
mod tests {
    use reqwest::header::RETRY_AFTER;

    use super::*;
    use std::str::FromStr;

    fn aapl() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn documented_quote_is_read_exactly() {
        // The example of https://finnhub.io/docs/api/quote
        let body = br#"{"c":261.74,"h":263.31,"l":260.68,"o":261.07,"pc":259.45,"t":1582641000,"d":2.29,"dp":0.8826}"#;
        let fetched = parse_quote(&aapl(), body, Utc::now()).unwrap();
        let q = fetched.quote;
        assert_eq!(q.price, dec("261.74"));
        assert_eq!(q.change, Some(dec("2.29")));
        assert_eq!(q.percent_change, Some(dec("0.8826")));
        assert_eq!(q.high, dec("263.31"));
        assert_eq!(q.low, dec("260.68"));
        assert_eq!(q.open, dec("261.07"));
        assert_eq!(q.previous_close, dec("259.45"));
        assert_eq!(q.quote_time.to_rfc3339(), "2020-02-25T14:30:00+00:00");
        assert_eq!(fetched.raw["c"], serde_json::json!(261.74));
    }

    #[test]
    fn prices_are_read_from_their_digits() {
        let body = br#"{"c":97123.456666666667,"h":0.30000000000000004,"l":1,"o":1,"pc":1,"t":1582641000}"#;
        let q = parse_quote(&aapl(), body, Utc::now()).unwrap().quote;
        assert_eq!(q.price, dec("97123.456666666667"));
        assert_eq!(q.high, dec("0.30000000000000004"));
    }

    #[test]
    fn all_zero_quote_is_not_found_never_a_price_of_zero() {
        let body = br#"{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}"#;
        assert_eq!(
            parse_quote(&aapl(), body, Utc::now()),
            Err(ProviderError::NotFound)
        );
    }

    #[test]
    fn html_and_truncated_bodies_are_garbage() {
        for body in [
            &b"<html><body>502 Bad Gateway</body></html>"[..],
            br#"{"c":261.74,"h":263.3"#,
            b"",
            br#"{"c":"not a number","t":1}"#,
            br#"[1,2,3]"#,
        ] {
            assert!(
                matches!(
                    parse_quote(&aapl(), body, Utc::now()),
                    Err(ProviderError::Garbage(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn statuses_map_to_typed_outcomes() {
        let none = HeaderMap::new();
        assert!(matches!(
            status_error(StatusCode::UNAUTHORIZED, &none),
            ProviderError::CredentialsRefused(_)
        ));
        assert!(matches!(
            status_error(StatusCode::FORBIDDEN, &none),
            ProviderError::PlanRestricted(_)
        ));
        assert_eq!(
            status_error(StatusCode::TOO_MANY_REQUESTS, &none),
            ProviderError::RateLimited { retry_after: None }
        );
        for s in [500, 502, 503, 504, 404, 400] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(matches!(
                status_error(s, &none),
                ProviderError::Unavailable(_)
            ));
        }
    }

    #[test]
    fn retry_after_comes_from_either_header() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1007"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
