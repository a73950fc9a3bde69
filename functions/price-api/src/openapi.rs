//! The OpenAPI document: generated from the handlers' own types and annotations, so it
//! cannot drift from the code; served at `/openapi.json` and rendered at `/docs` and `/redoc`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::Problem;

/// The document's static part; [`crate::router`] adds every route's path.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Market Data API",
        description = "Latest stock prices from market-data providers (Finnhub, or a built-in \
                       simulation), cached, stored and published as events. Errors are \
                       RFC 9457 problem details (`application/problem+json`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "prices", description = "Quotes"),
        (name = "history", description = "Stored price points and their moving averages"),
        (name = "polling", description = "Jobs that poll symbols on a schedule"),
        (name = "operations", description = "Liveness and readiness"),
    ),
    components(schemas(Problem, crate::problem::RouteStep, crate::routes::latest::BatchResponse)),
    modifiers(&ApiKeyScheme),
)]
pub struct ApiDoc;

/// Declares the `x-api-key` header; routes list it as optional, since keys are switched on
/// by configuration.
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "Required when the deployment sets API_KEYS; each key may have its own rate limit.",
            ))),
        );
    }
}

/// The problem bodies the route annotations show (`example = json!(examples::unknown_job())`):
/// each is the [`Problem`] the API answers in that case, built through the very conversion
/// or constructor the handler uses wherever that is reachable from here (the rest spell out
/// what a middleware or handler builds in place). `tests/it/openapi_docs.rs` provokes every
/// documented case on the real router and checks the answer equals its example.
pub mod examples {
    use std::time::Duration;

    use axum::http::StatusCode;
    use market_data::cause::Cause;
    use market_data::domain::{AverageKind, AverageSpec, JobId, ProviderId, Symbol};
    use market_data::jobs::JobStoreError;
    use market_data::providers::ProviderError;
    use market_data::usecases::polling::validate;
    use market_data::usecases::{AverageError, NewJob, PollingError, QuoteError};

    use crate::problem::Problem;

    /// The symbol the examples ask about.
    pub const SYMBOL: &str = "AAPL";
    /// A symbol the provider does not know.
    pub const UNKNOWN_SYMBOL: &str = "ZZZZZ";
    /// A symbol longer than any symbol may be.
    pub const TOO_LONG_SYMBOL: &str = "ABCDEFGHIJKLMNOP";
    /// A provider this API does not know.
    pub const UNKNOWN_PROVIDER: &str = "bloomberg";
    /// The job id of the examples (well-formed, but no job has it).
    pub const JOB_ID: &str = "poll_019ac1d2e3f47a8b9c0d1e2f3a4b5c6d";
    /// An interval below the shortest a job may have.
    pub const TOO_SHORT_INTERVAL: u32 = 5;
    /// The averages the deployment of the examples computes (`MA_WINDOWS`).
    pub const MA_WINDOWS: &str = "sma:5,ema:12";

    /// What an example whose premise no longer holds shows instead: a 500, which the tests
    /// catch (its status is not the documented one). The document is built at start-up, so
    /// an example never panics.
    fn broken(why: impl std::fmt::Display) -> Problem {
        Problem::for_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("broken example: {why}"),
        )
    }

    /// The problem a failed quote of `symbol` from Finnhub becomes.
    fn quote_failed(symbol: &str, source: ProviderError) -> Problem {
        match Symbol::parse(symbol) {
            Ok(symbol) => Problem::from(QuoteError {
                provider: ProviderId::Finnhub,
                symbol,
                source,
                attempts: Vec::new(),
            }),
            Err(e) => broken(format!("{symbol:?}: {e}")),
        }
    }

    /// 400: `provider` names no provider (`/prices/latest`, `POST /prices/poll`).
    pub fn unknown_provider() -> Problem {
        match UNKNOWN_PROVIDER.parse::<ProviderId>() {
            Err(e) => Problem::bad_parameter(format!("invalid `provider`: {e}")),
            Ok(p) => broken(format!("{p} is a known provider")),
        }
    }

    /// 400: `symbol` is too long (16 characters).
    pub fn bad_symbol() -> Problem {
        match Symbol::parse(TOO_LONG_SYMBOL) {
            Err(e) => Problem::bad_parameter(format!("invalid `symbol`: {e}")),
            Ok(s) => broken(format!("{s} is a valid symbol")),
        }
    }

    /// 400: `from` of `/prices/history` is not a time.
    pub fn bad_time() -> Problem {
        Problem::bad_parameter(
            "invalid `from`: expected an RFC 3339 time such as 2026-11-25T14:30:00Z",
        )
    }

    /// 400: `limit` of `GET /prices/poll` is out of range (`limit=0`).
    pub fn bad_job_page() -> Problem {
        let max = market_data::usecases::polling::MAX_PAGE;
        match crate::extract::bounded_param("limit", Some("0"), 1, 1..=max) {
            Err(problem) => problem,
            Ok(_) => Problem::bad_parameter("0 is out of range"),
        }
    }

    /// 400: an average `MA_WINDOWS` does not list (SMA-7).
    pub fn average_not_computed() -> Problem {
        let e = AverageError::NotComputed {
            spec: AverageSpec {
                kind: AverageKind::Sma,
                window: 7,
            },
            available: MA_WINDOWS.replace(',', ", "),
        };
        Problem::new(
            StatusCode::BAD_REQUEST,
            "average-not-computed",
            "Average not computed",
            e.to_string(),
        )
    }

    /// 401: keys are configured and the request has none.
    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "this API needs an API key in the x-api-key header",
        )
    }

    /// 404: the provider does not know the symbol.
    pub fn unknown_symbol() -> Problem {
        quote_failed(UNKNOWN_SYMBOL, ProviderError::NotFound)
    }

    /// 404: fewer points of the symbol are stored than the average spans (SMA-5).
    pub fn average_not_ready() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "average-not-ready",
            "Average not available yet",
            format!("no sma:5 of {SYMBOL} yet: it needs 5 stored price points"),
        )
    }

    /// 404: no job has the id.
    pub fn unknown_job() -> Problem {
        match JobId::parse(JOB_ID) {
            Ok(id) => Problem::from(PollingError::NotFound(id)),
            Err(_) => broken(format!("{JOB_ID} is not a job id")),
        }
    }

    /// 413: a body over the limit. The body limit layer answers with this text, which the
    /// problem middleware keeps as the detail.
    pub fn body_too_large() -> Problem {
        Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded")
    }

    /// 422: a job whose interval is too short.
    pub fn invalid_job() -> Problem {
        let new = NewJob {
            symbols: Symbol::parse(SYMBOL).into_iter().collect(),
            interval_secs: TOO_SHORT_INTERVAL,
            provider: ProviderId::Finnhub,
        };
        match validate(&new) {
            Err(e) => Problem::from(e),
            Ok(_) => broken(format!("an interval of {TOO_SHORT_INTERVAL} s is valid")),
        }
    }

    /// 429: the caller's limit is reached (600 a minute, burst 600).
    pub fn rate_limited() -> Problem {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            "the limit of 600 requests a minute (burst 600) is reached; retry in 1 s",
        )
        .with_retry_after(Duration::from_secs(1))
    }

    /// 502: the provider refused the service's key.
    pub fn provider_refused() -> Problem {
        quote_failed(
            SYMBOL,
            ProviderError::CredentialsRefused(
                "Finnhub answered 401 Unauthorized: check FINNHUB_API_KEY".into(),
            ),
        )
    }

    /// 503: the provider asked for has no key on this deployment.
    pub fn provider_not_configured() -> Problem {
        quote_failed(
            SYMBOL,
            ProviderError::NotConfigured {
                provider: ProviderId::Finnhub,
                variable: "FINNHUB_API_KEY or FINNHUB_API_KEY_SECRET_ID",
            },
        )
    }

    /// 503: the database cannot be reached.
    pub fn store_unavailable() -> Problem {
        Problem::store_unavailable()
    }

    /// 503: the job store or the tick queue did not answer.
    pub fn jobs_unavailable() -> Problem {
        // The conversion logs the failure; an example has none to report.
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            Problem::from(PollingError::Store(JobStoreError::Unavailable(Cause::msg(
                "the example's store",
            ))))
        })
    }
}
