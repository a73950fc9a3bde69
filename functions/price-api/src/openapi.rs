//! The OpenAPI document: generated from the handlers' own types and annotations, so it
//! cannot drift from the code; served at `/openapi.json` and rendered at `/docs` and `/redoc`.

use serde_json::json;
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
    components(schemas(Problem)),
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

/// Example problem bodies shared by the route annotations.
pub mod examples {
    use super::json;
    use serde_json::Value;

    /// 401 when keys are configured and none (or a wrong one) was sent.
    pub fn unauthorized() -> Value {
        json!({"type": "/problems/unauthorized", "title": "Unauthorized", "status": 401,
               "detail": "this API needs an API key in the x-api-key header"})
    }

    /// 503 when the database cannot be reached.
    pub fn store_unavailable() -> Value {
        json!({"type": "/problems/store-unavailable", "title": "Store unavailable", "status": 503,
               "detail": "the price store cannot be reached; retry shortly"})
    }

    /// 429 from the rate limit.
    pub fn rate_limited() -> Value {
        json!({"type": "/problems/rate-limited", "title": "Too many requests", "status": 429,
               "detail": "the limit of 600 requests a minute (burst 600) is reached; retry in 1 s"})
    }
}
