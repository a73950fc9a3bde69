//! `GET /health` (liveness) and `GET /ready` (each dependency's state).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use market_data::Services;
use market_data::services::DependencyState;
use serde::{Deserialize, Serialize};

/// Liveness: the process answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The running version.
    pub version: String,
}

/// Readiness: every configured dependency and its state.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ready` when every configured dependency is up, else `degraded`.
    pub status: &'static str,
    /// One entry per port.
    pub dependencies: Vec<DependencyState>,
}

/// Answers without touching any dependency, so it stays cheap and always up.
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Checks every dependency; 503 when a configured one is down.
pub async fn ready(State(services): State<Services>) -> (StatusCode, Json<Readiness>) {
    let dependencies = services.readiness().await;
    let all_up = dependencies
        .iter()
        .all(|d| d.is_up() || d.status == "not_configured");
    let (code, status) = if all_up {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    (
        code,
        Json(Readiness {
            status,
            dependencies,
        }),
    )
}
