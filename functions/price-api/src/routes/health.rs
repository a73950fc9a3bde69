//! `GET /health` (liveness) and `GET /ready` (each dependency's state).

use crate::AppState;
use crate::middleware::access::Caller;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use market_data::providers::{ChainLink, window_name};
use market_data::readiness::{DependencyState, DependencyStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The failover chain in priority order, each provider with its live state.
    /// Empty for a caller without a key when keys are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ChainProvider>,
}

/// One provider of the failover chain, as it stands now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"provider": "twelvedata", "configured": true,
    "quota_left": {"a minute": 7, "a day": 790}, "counted_in": "redis", "circuit": "closed"}))]
pub struct ChainProvider {
    /// Its id (`finnhub`, `twelvedata`, ...).
    pub provider: String,
    /// Whether it has what it needs (a key, or being enabled); the chain skips it if not.
    pub configured: bool,
    /// Calls left in each quota window (`a minute`, `an hour`, `a day`).
    pub quota_left: BTreeMap<String, u32>,
    /// Where the quotas are counted: `redis` (across containers) or `process`.
    pub counted_in: String,
    /// `closed`, `half-open` or `open for N s` (this container's breaker).
    pub circuit: String,
    /// Seconds it is still skipped after it rate-limited us or refused the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cool_down_seconds: Option<u64>,
}

impl From<ChainLink> for ChainProvider {
    fn from(link: ChainLink) -> Self {
        Self {
            provider: link.provider.to_string(),
            configured: link.configured,
            quota_left: link
                .state
                .quota_left
                .iter()
                .map(|(w, n)| (window_name(*w), *n))
                .collect(),
            counted_in: link.state.counted_in.into(),
            circuit: link.state.circuit.to_string(),
            cool_down_seconds: link.state.cool_down.map(|d| d.as_secs().max(1)),
        }
    }
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
    description = "Checks the store, the shared cache and the event bus (each bounded to 2 s), \
                   reports which providers are configured, and lists the failover chain with \
                   each provider's quota left, cool-down and circuit. Needs no key; when API keys are \
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
    let (dependencies, providers) = if trusted {
        let chain = state.api.quotes.providers().chain_state().await;
        (
            states.into_iter().map(Dependency::from).collect(),
            chain.into_iter().map(ChainProvider::from).collect(),
        )
    } else {
        (Vec::new(), Vec::new())
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
            providers,
        }),
    )
}
