//! Who may call, and how often: the API key check (when keys are configured) and the rate
//! limit, evaluated before any handler runs.
//!
//! A client is its API key's name when it sent a valid key, else its address. `/health` is
//! neither authenticated nor limited; the documentation pages and `/ready` are limited but
//! need no key (`/ready` then answers its status alone). A request with a missing or wrong key
//! counts against its address's limit before it is refused, so guessing keys is throttled like
//! any other anonymous traffic (429 once the address's limit is reached).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use market_data::ratelimit::{Decision, Quota, whole_seconds};

use crate::AppState;
use crate::client;
use crate::problem::Problem;

/// The header an API key is sent in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Who the request is from, once known; handlers and the access log read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A client that sent a valid API key, by the key's name.
    Key(String),
    /// A client known only by its address.
    Anonymous,
}

impl Caller {
    /// The key's name, or `anonymous`: safe to log.
    pub fn label(&self) -> &str {
        match self {
            Caller::Key(name) => name,
            Caller::Anonymous => "anonymous",
        }
    }
}

fn is_unlimited(path: &str) -> bool {
    path == "/health"
}

fn is_public(path: &str) -> bool {
    is_unlimited(path)
        || path == "/ready"
        || path == "/openapi.json"
        || path == "/docs"
        || path.starts_with("/docs/")
        || path == "/redoc"
        || path.starts_with("/redoc/")
}

/// Authenticates and rate-limits, then adds the `RateLimit-*` headers to the answer.
pub async fn access(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if is_unlimited(&path) {
        return next.run(request).await;
    }
    let edge = &state.edge;

    let presented = request
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok());
    let key = match (&edge.api_keys, presented) {
        (Some(keys), Some(presented)) => keys.find(presented),
        _ => None,
    };
    if edge.api_keys.is_some() && key.is_none() && !is_public(&path) {
        // Counted against the address first: a refused key costs the guesser its limit.
        if let Some(quota) = edge.default_quota {
            let address = format!("ip:{}", client::address(&request));
            let decision = edge.limiter.check(&address, quota).await;
            if !decision.allowed {
                return refused(&state, &Caller::Anonymous, quota, &decision);
            }
        }
        let detail = if presented.is_some() {
            "the x-api-key header does not hold a valid API key"
        } else {
            "this API needs an API key in the x-api-key header"
        };
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
        .into_response();
    }
    let (caller, limiter_key, quota) = match key {
        Some(k) => (
            Caller::Key(k.name.clone()),
            format!("key:{}", k.name),
            k.quota.or(edge.default_quota),
        ),
        None => (
            Caller::Anonymous,
            format!("ip:{}", client::address(&request)),
            edge.default_quota,
        ),
    };
    request.extensions_mut().insert(caller.clone());

    let Some(quota) = quota else {
        return with_caller(next.run(request).await, caller);
    };
    let decision = edge.limiter.check(&limiter_key, quota).await;
    if !decision.allowed {
        return with_caller(refused(&state, &caller, quota, &decision), caller);
    }
    let mut response = next.run(request).await;
    set_headers(response.headers_mut(), &decision);
    with_caller(response, caller)
}

/// The 429 answer for a caller over `quota`.
fn refused(state: &AppState, caller: &Caller, quota: Quota, decision: &Decision) -> Response {
    state
        .api
        .metrics
        .count("RateLimited", vec![("Caller", caller_kind(caller).into())]);
    let retry = decision.retry_after.unwrap_or_default();
    let problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!(
            "the limit of {} requests a minute (burst {}) is reached; retry in {} s",
            quota.per_minute,
            quota.burst,
            whole_seconds(retry)
        ),
    )
    .with_retry_after(retry);
    let mut response = problem.into_response();
    set_headers(response.headers_mut(), decision);
    response
}

fn caller_kind(caller: &Caller) -> &'static str {
    match caller {
        Caller::Key(_) => "key",
        Caller::Anonymous => "anonymous",
    }
}

fn with_caller(mut response: Response, caller: Caller) -> Response {
    response.extensions_mut().insert(caller);
    response
}

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert("ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(whole_seconds(d.reset_after)),
    );
}
