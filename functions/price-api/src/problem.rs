//! Errors as RFC 9457 problem details (`application/problem+json`).
//!
//! Every error the API returns is one of these, with `detail` always present because the
//! seed's clients read it. Handlers return [`Problem`]; the [`crate::middleware`] turns any
//! other error response (an extractor rejection, a 404/405 from routing, a 413 from the
//! body limit, a panic) into one too.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use market_data::providers::ProviderError;
use market_data::store::StoreError;
use market_data::usecases::{Attempt, AttemptOutcome, QuoteError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem detail object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!(crate::openapi::examples::bad_symbol()))]
pub struct Problem {
    /// A URI reference naming the kind of problem; the same kind always has the same type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, written for the client.
    pub detail: String,
    /// For a quote no provider could give: each provider tried or skipped, with its reason
    /// (an RFC 9457 extension member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<RouteStep>>,
    /// Seconds to wait before retrying, also sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

/// One provider of a quote's route: who was tried, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteStep {
    /// The provider id.
    pub provider: String,
    /// `served`, `failed` (asked, and it failed) or `skipped` (not asked: quota used up,
    /// cooling down after a refusal, or circuit open).
    pub outcome: String,
    /// `served`, or the failure: `not_found`, `rate_limited`, `credentials_refused`,
    /// `plan_restricted`, `unavailable`, `garbage`, `not_configured`.
    pub reason: String,
    /// What the provider said, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&Attempt> for RouteStep {
    fn from(a: &Attempt) -> Self {
        let outcome = match a.outcome {
            AttemptOutcome::Served => "served",
            AttemptOutcome::Failed(_) => "failed",
            AttemptOutcome::Skipped(_) => "skipped",
        };
        Self {
            provider: a.provider.to_string(),
            outcome: outcome.into(),
            reason: a.reason().into(),
            detail: a.error().map(ToString::to_string),
        }
    }
}

impl Problem {
    /// A problem of kind `slug` (`/problems/{slug}`).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            attempts: None,
            retry_after: None,
        }
    }

    /// 400: a query parameter is missing or invalid.
    pub fn bad_parameter(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-parameter",
            "Invalid request parameter",
            detail,
        )
    }

    /// The generic problem for a status an error response already had.
    pub fn for_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let (slug, title) = match status {
            StatusCode::BAD_REQUEST => ("bad-request", "Bad request"),
            StatusCode::NOT_FOUND => ("not-found", "Not found"),
            StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "Request body too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported-media-type", "Unsupported media type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ("invalid-body", "Invalid request body"),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "Request timeout"),
            s if s.is_server_error() => ("internal", "Internal error"),
            _ => ("http-error", "Request failed"),
        };
        Self::new(status, slug, title, detail)
    }

    /// 503: the price store failed; what failed is for the log, not the client.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Store unavailable",
            "the price store cannot be reached; retry shortly",
        )
        .with_retry_after(Duration::from_secs(5))
    }

    /// Lists the providers a quote's route tried.
    pub fn with_attempts(mut self, attempts: &[Attempt]) -> Self {
        self.attempts = Some(attempts.iter().map(RouteStep::from).collect());
        self
    }

    /// Sets `Retry-After`.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl From<QuoteError> for Problem {
    fn from(e: QuoteError) -> Self {
        let QuoteError {
            provider,
            symbol,
            source,
            attempts,
        } = e;
        if attempts.len() > 1 {
            let asked: Vec<String> = attempts.iter().map(|a| a.provider.to_string()).collect();
            let problem = match source {
                ProviderError::NotFound => Problem::new(
                    StatusCode::NOT_FOUND,
                    "unknown-symbol",
                    "Unknown symbol",
                    format!(
                        "no provider has a quote for symbol {symbol} (asked: {})",
                        asked.join(", ")
                    ),
                ),
                _ => no_provider(&symbol, &attempts),
            };
            return problem.with_attempts(&attempts);
        }
        let problem = match source {
            ProviderError::NotFound => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-symbol",
                "Unknown symbol",
                format!("{provider} has no quote for symbol {symbol}"),
            ),
            e @ ProviderError::NotConfigured { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider-not-configured",
                "Provider not configured",
                e.to_string(),
            ),
            ProviderError::CredentialsRefused(reason) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-refused",
                "Provider refused the request",
                format!("{provider} refused the request for {symbol}: {reason}"),
            ),
            ProviderError::PlanRestricted(reason) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-plan",
                "Not covered by the provider plan",
                format!("{provider}'s plan does not cover {symbol}: {reason}"),
            ),
            ProviderError::RateLimited { retry_after } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider-rate-limited",
                "Provider rate limit reached",
                format!(
                    "{provider}'s rate limit is exhausted and no cached quote of {symbol} is usable"
                ),
            )
            .with_retry_after(retry_after.unwrap_or(Duration::from_secs(30))),
            ProviderError::Implausible(reason) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider-implausible",
                "Provider answered an implausible quote",
                format!(
                    "{provider} answered an implausible quote of {symbol} and no cached quote \
                     is usable: {reason}"
                ),
            ),
            ProviderError::Unavailable(reason) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider-unavailable",
                "Provider unavailable",
                format!(
                    "{provider} could not quote {symbol} and no cached quote is usable: {reason}"
                ),
            ),
            ProviderError::Garbage(reason) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-bad-answer",
                "Provider answer unreadable",
                format!(
                    "{provider} answered something that is not a quote of {symbol} and no cached quote is usable: {reason}"
                ),
            ),
        };
        // One provider asked: the answer stays as it always was.
        problem
    }
}

/// 503: every provider of the chain failed or was skipped; the detail lists each reason,
/// and `Retry-After` is the soonest a rate-limited one said.
fn no_provider(symbol: &market_data::domain::Symbol, attempts: &[Attempt]) -> Problem {
    let reasons: Vec<String> = attempts
        .iter()
        .map(|a| match &a.outcome {
            AttemptOutcome::Skipped(e) => format!("{} skipped: {e}", a.provider),
            _ => format!(
                "{}: {}",
                a.provider,
                a.error().map(ToString::to_string).unwrap_or_default()
            ),
        })
        .collect();
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no-provider",
        "No provider could answer",
        format!(
            "no provider could quote {symbol} and no cached quote is usable: {}",
            reasons.join("; ")
        ),
    );
    let soonest = attempts
        .iter()
        .filter_map(|a| match a.error() {
            Some(ProviderError::RateLimited { retry_after }) => {
                Some(retry_after.unwrap_or(Duration::from_secs(30)))
            }
            _ => None,
        })
        .min();
    match soonest {
        Some(after) => problem.with_retry_after(after),
        None => problem,
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        // The cause goes to the log; the client learns only that the store is away.
        tracing::error!(error = %e, "price store failed");
        Problem::store_unavailable()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(after) = retry_after {
            // Rounded up: a client that waits that long is let through.
            let secs = u64::try_from(after.as_micros().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
