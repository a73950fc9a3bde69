//! The `price-api` function: the HTTP API as an `axum` router.
//!
//! [`router`] builds the one router that Lambda (through `lambda_http`), the local runner
//! and the tests all serve, so what is tested is what runs.

pub mod client;
pub mod edge;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use market_data::services::ApiServices;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::edge::{Edge, EdgeConfig};
use crate::middleware::{access, problems, request_log, security_headers};
use crate::openapi::ApiDoc;
use crate::problem::Problem;

/// What every handler and the edge share: the API's use cases and the edge as built.
///
/// Cloned for every request (by each layer with state and by each handler's `State`), so it
/// is two reference counts: cloning the services themselves (a dozen `Arc`s and the Redis
/// connection) cost about a sixth of a cache hit's CPU time (docs/benchmarks.md).
#[derive(Clone)]
pub struct AppState {
    /// The use cases and their adapters.
    pub api: Arc<ApiServices>,
    /// Who may call, and how often.
    pub edge: Arc<Edge>,
}

impl AppState {
    /// The state of `api` behind the edge `config` asks for (its limiter shares the API's
    /// Redis connection).
    pub fn new(api: ApiServices, config: EdgeConfig) -> Self {
        let edge = Edge::new(config, api.redis.clone());
        Self {
            api: Arc::new(api),
            edge: Arc::new(edge),
        }
    }
}

/// The API's router over the process's shared state: every documented route, the
/// documentation pages, and the edge layers.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_routes().split_for_parts();
    let app = api
        .merge(routes::docs::routes(openapi))
        .with_state(state.clone());
    with_edge(app, &state)
}

/// The API's routes with their OpenAPI paths: one list, so a route cannot be served
/// without being documented.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::latest::latest_price))
        .routes(routes!(routes::history::history))
        .routes(routes!(routes::moving_average::moving_average))
        .routes(routes!(routes::health::health))
        .routes(routes!(routes::health::ready))
        .routes(routes!(routes::poll::create_job, routes::poll::list_jobs))
        .routes(routes!(routes::poll::get_job, routes::poll::delete_job))
        .routes(routes!(routes::poll::pause_job))
        .routes(routes!(routes::poll::resume_job))
}

/// The OpenAPI document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// Wraps `routes` in the layers every route shares (see [`middleware`]), and answers
/// unknown routes with a problem.
pub fn with_edge(routes: Router, state: &AppState) -> Router {
    let edge = &state.edge;
    routes.fallback(no_route).layer(
        ServiceBuilder::new()
            .layer(from_fn(request_log::request_log))
            .layer(CatchPanicLayer::custom(problems::panic_problem))
            .layer(from_fn(security_headers::security_headers))
            .option_layer(security_headers::cors(&edge.cors_allowed_origins))
            .layer(from_fn(problems::problem_for_errors))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                edge.request_timeout,
            ))
            .layer(from_fn_with_state(state.clone(), access::access))
            .layer(RequestBodyLimitLayer::new(middleware::MAX_BODY_BYTES)),
    )
}

async fn no_route(method: Method, uri: Uri) -> Problem {
    Problem::for_status(
        StatusCode::NOT_FOUND,
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
        let config = market_data::Config::load(|_| None, None).await.unwrap();
        let api = ApiServices::from_config(&config).await.unwrap();
        let edge = EdgeConfig::from_env(&market_data::config::Env::new(&|_| None, None))
            .await
            .unwrap();
        let state = AppState::new(api, edge);
        let app = with_edge(
            Router::new()
                .route("/boom", axum::routing::get(boom))
                .route("/fine", axum::routing::get(|| async { "ok" })),
            &state,
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
