//! Bad input and bad providers: each gets the right 4xx/5xx problem+json, never a panic,
//! never a price of 0.

use std::time::Duration;

use axum::body::Body;
use harness::{Reply, TestApp};
use http::Request;

async fn finnhub_app() -> TestApp {
    TestApp::builder()
        .finnhub()
        .env("FINNHUB_TIMEOUT_MS", "300")
        .build()
        .await
}

#[tokio::test]
async fn a_missing_symbol_is_400() {
    let app = TestApp::builder().build().await;
    let detail = app.get("/prices/latest").await.problem_detail(400);
    assert!(detail.contains("`symbol` is required"), "{detail}");
}

#[tokio::test]
async fn an_empty_symbol_is_400() {
    let app = TestApp::builder().build().await;
    for uri in ["/prices/latest?symbol=", "/prices/latest?symbol=%20%20"] {
        let detail = app.get(uri).await.problem_detail(400);
        assert!(detail.contains("must not be empty"), "{detail}");
    }
}

#[tokio::test]
async fn a_lower_case_symbol_is_upper_cased() {
    let app = TestApp::builder().build().await;
    let r = app.get("/prices/latest?symbol=aapl").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["symbol"], "AAPL");
}

#[tokio::test]
async fn a_too_long_symbol_is_400() {
    let app = TestApp::builder().build().await;
    let detail = app
        .get("/prices/latest?symbol=ABCDEFGHIJKLMNOP")
        .await
        .problem_detail(400);
    assert!(detail.contains("at most 15"), "{detail}");
}

#[tokio::test]
async fn injection_like_symbols_are_400() {
    let app = TestApp::builder().build().await;
    for raw in [
        "AAPL%27%3B%20DROP%20TABLE%20raw_market_data%3B--",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "..%2F..%2Fetc%2Fpasswd",
        "AAPL%00",
        "A%20B",
        "%E2%82%AC",
        "*",
    ] {
        let detail = app
            .get(&format!("/prices/latest?symbol={raw}"))
            .await
            .problem_detail(400);
        assert!(detail.starts_with("invalid `symbol`"), "{raw}: {detail}");
    }
}

#[tokio::test]
async fn a_repeated_parameter_is_400() {
    let app = TestApp::builder().build().await;
    app.get("/prices/latest?symbol=AAPL&symbol=MSFT")
        .await
        .problem_detail(400);
}

#[tokio::test]
async fn an_unknown_provider_is_400() {
    let app = TestApp::builder().build().await;
    let detail = app
        .get("/prices/latest?symbol=AAPL&provider=bloomberg")
        .await
        .problem_detail(400);
    assert!(
        detail.contains("bloomberg") && detail.contains("finnhub"),
        "{detail}"
    );
}

#[tokio::test]
async fn finnhub_zeros_are_404_never_a_price_of_zero() {
    let app = finnhub_app().await;
    app.finnhub.reply("ZZZZ", Reply::Zeros);
    let detail = app
        .get("/prices/latest?symbol=ZZZZ")
        .await
        .problem_detail(404);
    assert!(detail.contains("ZZZZ"), "{detail}");
}

#[tokio::test]
async fn a_refused_key_is_502() {
    let app = finnhub_app().await;
    app.finnhub.reply("AAPL", Reply::Status(401, vec![]));
    let detail = app
        .get("/prices/latest?symbol=AAPL")
        .await
        .problem_detail(502);
    assert!(detail.contains("FINNHUB_API_KEY"), "{detail}");
    assert!(!detail.contains(harness::app::TEST_FINNHUB_KEY));
}

#[tokio::test]
async fn the_providers_rate_limit_is_503_with_retry_after() {
    let app = finnhub_app().await;
    app.finnhub.reply(
        "AAPL",
        Reply::Status(429, vec![("retry-after", "7".into())]),
    );
    let r = app.get("/prices/latest?symbol=AAPL").await;
    r.problem_detail(503);
    assert_eq!(r.headers["retry-after"], "7");
}

#[tokio::test]
async fn a_provider_server_error_is_503() {
    let app = finnhub_app().await;
    app.finnhub.reply("AAPL", Reply::Status(500, vec![]));
    app.get("/prices/latest?symbol=AAPL")
        .await
        .problem_detail(503);
}

#[tokio::test]
async fn a_hanging_provider_is_503_within_the_timeout() {
    let app = finnhub_app().await;
    app.finnhub.reply("AAPL", Reply::Hang);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        app.get("/prices/latest?symbol=AAPL"),
    )
    .await
    .expect("the API answers instead of hanging");
    let detail = r.problem_detail(503);
    assert!(detail.contains("did not answer within 300 ms"), "{detail}");
}

#[tokio::test]
async fn an_html_error_page_is_503_and_html_sent_as_a_quote_is_502() {
    let app = finnhub_app().await;
    app.finnhub.reply("AAPL", Reply::Html(502));
    app.finnhub.reply("MSFT", Reply::Html(200));
    app.get("/prices/latest?symbol=AAPL")
        .await
        .problem_detail(503);
    app.get("/prices/latest?symbol=MSFT")
        .await
        .assert_problem(502, "not a quote");
}

#[tokio::test]
async fn truncated_json_is_502() {
    let app = finnhub_app().await;
    app.finnhub.reply(
        "AAPL",
        Reply::RawJson(r#"{"c":261.74,"h":263.31,"l":26"#.into()),
    );
    let detail = app
        .get("/prices/latest?symbol=AAPL")
        .await
        .problem_detail(502);
    assert!(detail.contains("not JSON"), "{detail}");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::builder().build().await;
    let detail = app.get("/prices/nope").await.problem_detail(404);
    assert!(detail.contains("/prices/nope"), "{detail}");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = TestApp::builder().build().await;
    let r = app.delete("/prices/latest?symbol=AAPL").await;
    r.problem_detail(405);
    assert!(r.headers["allow"].to_str().unwrap().contains("GET"));
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let app = TestApp::builder().build().await;
    let big = vec![b'x'; 100 * 1024];
    let r = app
        .send(
            Request::post("/prices/latest")
                .header("content-type", "application/json")
                .header("content-length", big.len())
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    r.problem_detail(413);
}
