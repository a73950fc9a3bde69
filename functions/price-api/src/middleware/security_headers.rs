//! Headers every answer carries, and CORS when configured.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The API answers JSON only: nothing may be framed, sniffed, cached by the way, or run.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The documentation pages run their own (vendored) scripts and styles, nothing else.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                        worker-src 'self' blob:; frame-ancestors 'none'";

/// Adds the security headers, keeping any a handler set itself.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let docs = is_docs(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    if docs {
        set(header::CONTENT_SECURITY_POLICY, DOCS_CSP);
    } else {
        set(header::CONTENT_SECURITY_POLICY, API_CSP);
        set(header::CACHE_CONTROL, "no-store");
    }
    response
}

fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/") || path == "/redoc" || path.starts_with("/redoc/")
}

/// CORS for the configured origins (`*` for any); `None` when there are none (CORS off).
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
