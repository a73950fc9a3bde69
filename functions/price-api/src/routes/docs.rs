//! The documentation pages: Swagger UI at `/docs`, ReDoc at `/redoc`, the document at
//! `/openapi.json`. Every asset is compiled into the binary (Swagger UI through
//! `utoipa-swagger-ui`'s vendored build, ReDoc's standalone bundle from `assets/`), so the
//! pages work with no internet.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// ReDoc 2.5.1's standalone bundle (MIT, see `assets/redoc.LICENSE`).
const REDOC_JS: &str = include_str!("../../assets/redoc.standalone.js");

/// Paths are relative, so the pages also work under an API Gateway stage prefix.
const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Market Data API - ReDoc</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <script src="redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The routes serving `openapi` and the pages that render it.
pub fn routes<S>(openapi: OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .route("/redoc", get(|| async { Html(REDOC_PAGE) }))
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    REDOC_JS,
                )
                    .into_response()
            }),
        )
}
