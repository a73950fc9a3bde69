//! `GET /health` (liveness) and `GET /ready` (each dependency's state).

use crate::AppState;
use crate::middleware::access::Caller;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use market_data::readiness::{DependencyState, DependencyStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Liveness: the process answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0"}))]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The running version.
    pub version: String,
}

/// Readiness: every port and the state of the adapter serving it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "degraded", "dependencies": [
    {"port": "store", "adapter": "postgres (pool of 8)", "status": "up"},
    {"port": "cache", "adapter": "in-process L1 + redis (prefix \"mdb:\")", "status": "down",
     "detail": "cache unavailable: no answer within 250 ms"},
    {"port": "events", "adapter": "kafka 127.0.0.1:9092 topic price-events", "status": "up"},
    {"port": "provider:finnhub", "adapter": "not configured (set FINNHUB_API_KEY or FINNHUB_API_KEY_SECRET_ID)",
     "status": "not_configured"}
]}))]
pub struct Readiness {
    /// `ready` when every configured dependency is up, else `degraded`.
    pub status: String,
    /// One entry per port.
    /// Empty for a caller without a key when keys are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// One dependency's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Dependency {
    /// The port (`store`, `cache`, `events`, `provider:finnhub`, ...).
    pub port: String,
    /// The adapter serving it.
    pub adapter: String,
    /// `up`, `down` or `not_configured`.
    pub status: String,
    /// Why it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<DependencyState> for Dependency {
    fn from(d: DependencyState) -> Self {
        Self {
            port: d.port.to_owned(),
            adapter: d.adapter,
            status: d.status.as_str().to_owned(),
            detail: d.detail,
        }
    }
}

/// Answers without touching any dependency, so it stays cheap and always up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Liveness",
    description = "Answers without touching any dependency; never authenticated nor rate-limited.",
    responses((status = 200, description = "The process answers", body = Health)),
)]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Checks every dependency; 503 when a configured one is down.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "Readiness, with each dependency's state",
    description = "Checks the store, the shared cache and the event bus (each bounded to 2 s) \
                   and reports which providers are configured. Needs no key; when API keys are \
                   configured, a caller without a valid one gets the status alone (no \
                   dependencies, hosts or errors).",
    responses(
        (status = 200, description = "Every configured dependency is up", body = Readiness,
         example = json!({"status": "ready", "dependencies": [
             {"port": "store", "adapter": "postgres (pool of 8)", "status": "up"}]})),
        (status = 503, description = "A configured dependency is down", body = Readiness),
        (status = 429, description = "The caller's rate limit is reached",
         body = crate::problem::Problem, content_type = "application/problem+json",
         example = json!(crate::openapi::examples::rate_limited())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn ready(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> (StatusCode, Json<Readiness>) {
    let states = state.api.readiness.check().await;
    let all_up = states.iter().all(|d| d.status != DependencyStatus::Down);
    // With API keys configured, only a caller with one learns what the service runs on.
    let trusted =
        state.edge.api_keys.is_none() || matches!(caller.as_deref(), Some(Caller::Key(_)));
    let dependencies: Vec<Dependency> = if trusted {
        states.into_iter().map(Dependency::from).collect()
    } else {
        Vec::new()
    };
    let (code, status) = if all_up {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    (
        code,
        Json(Readiness {
            status: status.into(),
            dependencies,
        }),
    )
}
