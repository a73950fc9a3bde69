//! What every HTTP provider adapter shares: one client per provider, a bounded body read,
//! and the classification of transport failures and of the statuses every provider means
//! the same way.
//!
//! The adapters stay in charge of their own answers: several providers report errors inside
//! 200 bodies, so a status is only a first hint and each adapter reads the body too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::ProviderError;

/// Bodies larger than this are not a quote (a batch of 50 included); reading stops there.
const MAX_BODY_BYTES: usize = 512 * 1024;

/// One provider's HTTP client: its name for messages, its pool, its timeout.
pub(crate) struct HttpSource {
    name: &'static str,
    client: reqwest::Client,
    timeout: Duration,
}

/// A provider's answer, read whole (up to [`MAX_BODY_BYTES`]).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text, for messages (lossy, cut short).
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(200).collect()
    }
}

impl HttpSource {
    /// A client for `name` sending `headers` on every request (mark keys sensitive).
    pub fn new(
        name: &'static str,
        timeout: Duration,
        headers: HeaderMap,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("market-data-backend/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_keepalive(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            name,
            client,
            timeout,
        })
    }

    /// `GET url?query`, the whole body read. Only transport failures are errors here.
    pub async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<Answer, ProviderError> {
        let mut response = self
            .client
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ProviderError::Garbage(format!(
                    "{}'s answer is too large to be a quote",
                    self.name
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> ProviderError {
        let name = self.name;
        if e.is_timeout() {
            ProviderError::Unavailable(format!(
                "{name} did not answer within {} ms",
                self.timeout.as_millis()
            ))
        } else if e.is_connect() {
            ProviderError::Unavailable(format!("could not connect to {name}"))
        } else {
            // Never format the request itself: its URL or headers carry the API key.
            ProviderError::Unavailable(format!("request to {name} failed: {}", e.without_url()))
        }
    }
}

/// The body as JSON, or garbage.
pub(crate) fn json(name: &str, body: &[u8]) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_slice(body)
        .map_err(|e| ProviderError::Garbage(format!("{name}'s answer is not JSON: {e}")))
}

/// What a non-success status means when the body says nothing more specific.
pub(crate) fn status_error(name: &str, answer: &Answer) -> ProviderError {
    let status = answer.status;
    match status {
        StatusCode::UNAUTHORIZED => ProviderError::CredentialsRefused(format!(
            "{name} answered {status}: check its API key"
        )),
        StatusCode::PAYMENT_REQUIRED | StatusCode::FORBIDDEN => ProviderError::PlanRestricted(
            format!("{name} answered {status}: the plan does not cover this request"),
        ),
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(&answer.headers, Utc::now()),
        },
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            ProviderError::Unavailable(format!("{name} answered {s}"))
        }
        s => ProviderError::Garbage(format!("{name} answered {s}: {}", answer.snippet())),
    }
}

/// `Retry-After` in seconds, else an `X-Ratelimit-Reset` Unix time (Finnhub and others),
/// at most an hour away.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    retry_after_within(headers, now, 3_600)
}

/// As [`retry_after`], a reset time read as at most `max_secs` away (a provider whose quota
/// is per minute never asks for longer).
pub(crate) fn retry_after_within(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    max_secs: i64,
) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = header(RETRY_AFTER.as_str()).and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    let reset = header("x-ratelimit-reset")?.trim().parse::<i64>().ok()?;
    let wait = reset - now.timestamp();
    Some(Duration::from_secs(wait.clamp(1, max_secs).unsigned_abs()))
}

/// A decimal from a JSON string or number (several providers send prices as strings).
pub(crate) fn decimal(value: &serde_json::Value) -> Option<rust_decimal::Decimal> {
    use std::str::FromStr;
    match value {
        serde_json::Value::String(s) => {
            rust_decimal::Decimal::from_str(s.trim().trim_end_matches('%')).ok()
        }
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            rust_decimal::Decimal::from_str(&text)
                .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
                .ok()
        }
        _ => None,
    }
}

/// The parts of a quote an adapter read; what is missing defaults to the price.
pub(crate) struct Fields {
    pub price: Option<rust_decimal::Decimal>,
    pub change: Option<rust_decimal::Decimal>,
    pub percent_change: Option<rust_decimal::Decimal>,
    pub high: Option<rust_decimal::Decimal>,
    pub low: Option<rust_decimal::Decimal>,
    pub open: Option<rust_decimal::Decimal>,
    pub previous_close: Option<rust_decimal::Decimal>,
    pub quote_time: Option<DateTime<Utc>>,
}

/// A quote from what an adapter read: a positive price and a time are required (anything
/// else is garbage); the time is kept to microseconds, the precision the store keeps.
pub(crate) fn build_quote(
    provider: crate::domain::ProviderId,
    symbol: &crate::domain::Symbol,
    f: Fields,
    raw: serde_json::Value,
    fetched_at: DateTime<Utc>,
) -> Result<crate::domain::FetchedQuote, ProviderError> {
    use chrono::SubsecRound;
    let price = f
        .price
        .filter(|p| *p > rust_decimal::Decimal::ZERO)
        .ok_or_else(|| {
            ProviderError::Garbage(format!("{provider}'s answer has no positive price"))
        })?;
    let quote_time = f
        .quote_time
        .ok_or_else(|| ProviderError::Garbage(format!("{provider}'s answer has no quote time")))?
        .trunc_subsecs(6);
    Ok(crate::domain::FetchedQuote {
        quote: crate::domain::Quote {
            symbol: symbol.clone(),
            provider,
            price,
            change: f.change,
            percent_change: f.percent_change,
            high: f.high.unwrap_or(price),
            low: f.low.unwrap_or(price),
            open: f.open.unwrap_or(price),
            previous_close: f.previous_close.unwrap_or_default(),
            quote_time,
            fetched_at,
        },
        raw,
    })
}

/// A Unix time in seconds from a JSON number or numeric string.
pub(crate) fn unix_seconds(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_i64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (secs > 0)
        .then(|| DateTime::from_timestamp(secs, 0))
        .flatten()
}

/// Until the next boundary of a `window`-second window (a provider's quota reset).
pub(crate) fn until_next_window(now: DateTime<Utc>, window: i64) -> Duration {
    let secs = now.timestamp();
    Duration::from_secs((window - secs.rem_euclid(window)).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

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

    #[test]
    fn decimals_are_read_exactly_from_strings_and_numbers() {
        use serde_json::json;
        assert_eq!(decimal(&json!("261.7400")).unwrap().to_string(), "261.7400");
        assert_eq!(decimal(&json!("0.6319%")).unwrap().to_string(), "0.6319");
        assert_eq!(decimal(&json!(261.74)).unwrap().to_string(), "261.74");
        assert_eq!(decimal(&json!(null)), None);
        assert_eq!(decimal(&json!("n/a")), None);
    }

    #[test]
    fn statuses_map_to_the_common_classes() {
        let answer = |code: u16| Answer {
            status: StatusCode::from_u16(code).unwrap(),
            headers: HeaderMap::new(),
            body: b"nope".to_vec(),
        };
        assert!(matches!(
            status_error("X", &answer(401)),
            ProviderError::CredentialsRefused(_)
        ));
        for code in [402, 403] {
            assert!(matches!(
                status_error("X", &answer(code)),
                ProviderError::PlanRestricted(_)
            ));
        }
        assert_eq!(
            status_error("X", &answer(429)),
            ProviderError::RateLimited { retry_after: None }
        );
        for code in [500, 502, 503, 504, 408] {
            assert!(matches!(
                status_error("X", &answer(code)),
                ProviderError::Unavailable(_)
            ));
        }
        assert!(matches!(
            status_error("X", &answer(400)),
            ProviderError::Garbage(_)
        ));
    }
}
