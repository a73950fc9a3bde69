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
    with_edge(
        Router::new()
            .route("/prices/latest", get(routes::latest::latest_price))
            .route("/health", get(routes::health::health))
            .route("/ready", get(routes::health::ready))
            .with_state(services),
    )
}

/// Wraps `routes` in the layers every route shares: request logs, problem details for every
/// error, panics caught, bodies bounded, and a problem for unknown routes.
pub fn with_edge(routes: Router) -> Router {
    routes.fallback(no_route).layer(
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("bug")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_problem_and_the_router_goes_on() {
        let app = with_edge(
            Router::new()
                .route("/boom", get(boom))
                .route("/fine", get(|| async { "ok" })),
        );
        let response = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["content-type"], problem::PROBLEM_JSON);
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(body["status"], 500);
        assert!(
            !body["detail"].as_str().unwrap().contains("bug"),
            "no internals leak"
        );

        let after = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::OK);
    }
}
