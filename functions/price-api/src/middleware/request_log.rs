//! Request ids and the access log.
//!
//! Every request gets an id: the caller's `x-request-id` when it is a sane token, else API
//! Gateway's request id, else a new UUID. It is returned in `x-request-id` and carried by a
//! span, so every line logged while handling the request names it, together with the
//! Lambda invocation id and API Gateway's id. One line per request then records the route,
//! status, latency, caller, cache outcome and provider. Headers, query values and bodies are
//! never logged: they may hold keys.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, info, info_span};
use uuid::Uuid;

use super::access::Caller;
use crate::client;

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the latest-price handler tells the access log about its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteOutcome {
    /// `hit-local`, `hit-shared`, `miss`, `joined` or `stale`.
    pub cache: &'static str,
    /// The provider that answered (or was asked last), or cached.
    pub provider: String,
    /// The providers tried and each one's outcome (`finnhub:rate_limited>tiingo:served`).
    pub route: String,
}

/// Wraps the request in its span and logs it once answered.
pub async fn request_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (apigw_request_id, lambda_request_id) = client::platform_request_ids(&request);
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_token(id))
        .map(str::to_owned)
        .or_else(|| apigw_request_id.clone())
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());

    let span = info_span!(
        "request",
        request_id = %request_id,
        lambda_request_id = lambda_request_id.as_deref(),
        apigw_request_id = apigw_request_id.as_deref(),
    );
    let mut response = next.run(request).instrument(span.clone()).await;

    let outcome = response.extensions().get::<QuoteOutcome>().cloned();
    let caller = response.extensions().get::<Caller>().cloned();
    span.in_scope(|| {
        info!(
            target: "access",
            method = %method,
            route = %route,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            caller = caller.as_ref().map(Caller::label),
            cache = outcome.as_ref().map(|o| o.cache),
            provider = outcome.as_ref().map(|o| o.provider.as_str()),
            providers_route = outcome.as_ref().map(|o| o.route.as_str()),
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// 1 to 64 characters of `A-Z a-z 0-9 . _ -`: safe to log and to echo.
fn is_token(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_taken_from_the_caller() {
        assert!(is_token("0f3c-req_1.2"));
        for bad in ["", "has space", "new\nline", "<script>", &"x".repeat(65)] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }
}
