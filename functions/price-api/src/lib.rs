//! The `price-api` function: the HTTP API as an `axum` router.
//!
//! [`router`] builds the one router that Lambda (through `lambda_http`), the local runner
//! and the tests all serve, so what is tested is what runs.

pub mod extract;
pub mod middleware;
pub mod problem;
pub mod routes;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::get;
use market_data::Services;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::problem::Problem;

/// The API's router over the process's shared state.
pub fn router(services: Services) -> Router {
    Router::new()
        .route("/prices/latest", get(routes::latest::latest_price))
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .fallback(no_route)
        .with_state(services)
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(axum::middleware::from_fn(middleware::problem_for_errors))
                .layer(CatchPanicLayer::custom(middleware::panic_problem))
                .layer(RequestBodyLimitLayer::new(middleware::MAX_BODY_BYTES)),
        )
}

async fn no_route(method: Method, uri: Uri) -> Problem {
    Problem::for_status(
        axum::http::StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}
