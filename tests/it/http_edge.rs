//! The HTTP edge's hygiene: security headers, CORS, request ids and the request timeout.

use std::time::Duration;

use axum::body::Body;
use harness::{Reply, TestApp};
use http::Request;

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::builder().build().await;
    for uri in [
        "/prices/latest?symbol=AAPL",
        "/prices/latest",
        "/nope",
        "/health",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(r.headers["x-frame-options"], "DENY", "{uri}");
        assert_eq!(r.headers["referrer-policy"], "no-referrer", "{uri}");
        assert!(r.headers.contains_key("strict-transport-security"), "{uri}");
        assert_eq!(
            r.headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{uri}"
        );
        assert_eq!(r.headers["cache-control"], "no-store", "{uri}");
    }
    let docs = app.get("/redoc").await;
    let csp = docs.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src") || csp.starts_with("default-src 'self'"),
        "{csp}"
    );
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = TestApp::builder().build().await;
    let r = app
        .get_with(
            "/prices/latest?symbol=AAPL",
            &[("origin", "https://app.example.com")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::builder()
        .env("CORS_ALLOWED_ORIGINS", "https://app.example.com")
        .build()
        .await;
    let preflight = |origin: &str| {
        Request::options("/prices/latest?symbol=AAPL")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-api-key")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app.send(preflight("https://app.example.com")).await;
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = app.send(preflight("https://evil.example.net")).await;
    assert!(refused.headers.get("access-control-allow-origin").is_none());

    let simple = app
        .get_with(
            "/prices/latest?symbol=AAPL",
            &[("origin", "https://app.example.com")],
        )
        .await;
    assert_eq!(
        simple.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = simple.headers["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("ratelimit-remaining") && exposed.contains("retry-after"),
        "{exposed}"
    );
}

#[tokio::test]
async fn requests_get_an_id_or_keep_a_sane_one() {
    let app = TestApp::builder().build().await;
    let generated = app.get("/health").await;
    let id = generated.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let kept = app
        .get_with("/health", &[("x-request-id", "trace-42")])
        .await;
    assert_eq!(kept.headers["x-request-id"], "trace-42");
    let replaced = app
        .get_with("/health", &[("x-request-id", "<script>alert(1)</script>")])
        .await;
    assert_ne!(
        replaced.headers["x-request-id"],
        "<script>alert(1)</script>"
    );
}

#[tokio::test]
async fn a_request_past_the_timeout_is_a_503_problem() {
    let app = TestApp::builder()
        .finnhub()
        .env("FINNHUB_TIMEOUT_MS", "20000")
        .env("REQUEST_TIMEOUT_MS", "300")
        .build()
        .await;
    app.finnhub.reply("SLOW", Reply::Hang);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        app.get("/prices/latest?symbol=SLOW"),
    )
    .await
    .expect("the API answers by itself");
    r.problem_detail(503);
}
