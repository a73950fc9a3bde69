//! Quote times that cannot be true are the provider's error (`garbage`): answered 503 and
//! never stored, published or cached. Finnhub's `t` in milliseconds read as seconds is year
//! 55840, which would otherwise be the symbol's newest point forever.

use std::time::Duration;

use chrono::Utc;
use harness::TestApp;
use harness::fake_finnhub::Reply;
use harness::kafka::consume;
use serde_json::json;

async fn app() -> TestApp {
    TestApp::builder()
        .postgres()
        .kafka()
        .finnhub()
        .build()
        .await
}

fn quote_at(t: i64) -> Reply {
    Reply::Json(json!({
        "c": 261.74, "d": 2.29, "dp": 0.8826, "h": 263.31, "l": 260.68, "o": 261.07,
        "pc": 259.45, "t": t
    }))
}

async fn assert_nothing_kept(app: &TestApp) {
    let client = app.db.as_ref().unwrap().client().await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM raw_market_data", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "nothing stored");
    let topic = app.topic.as_deref().unwrap();
    let published = consume(topic, 1, Duration::from_secs(3)).await;
    assert!(published.is_empty(), "nothing published: {published:?}");
}

#[tokio::test]
async fn a_quote_time_in_milliseconds_is_a_provider_error_never_stored_or_published() {
    let app = app().await;
    app.finnhub
        .reply("AAPL", quote_at(Utc::now().timestamp_millis()));
    let answer = app.get("/prices/latest?symbol=AAPL&provider=finnhub").await;
    answer.assert_problem(503, "ahead of the clock");
    assert_nothing_kept(&app).await;
    // Not cached either: asked again, the provider is asked again.
    app.get("/prices/latest?symbol=AAPL&provider=finnhub")
        .await
        .assert_problem(503, "implausible");
    assert_eq!(app.finnhub.calls("AAPL"), 2);
}

#[tokio::test]
async fn a_quote_time_before_1990_is_a_provider_error_never_stored_or_published() {
    let app = app().await;
    // 1989-01-05.
    app.finnhub.reply("MSFT", quote_at(600_000_000));
    let answer = app.get("/prices/latest?symbol=MSFT&provider=finnhub").await;
    answer.assert_problem(503, "before 1990");
    assert_nothing_kept(&app).await;
}

#[tokio::test]
async fn a_provider_clock_a_minute_fast_is_still_believed() {
    let app = app().await;
    let ahead = Utc::now().timestamp() + 60;
    app.finnhub.reply("NVDA", quote_at(ahead));
    let answer = app.get("/prices/latest?symbol=NVDA&provider=finnhub").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["timestamp"],
        chrono::DateTime::from_timestamp(ahead, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

#[tokio::test]
async fn an_implausible_quote_in_a_batch_is_that_symbols_problem_and_never_kept() {
    let app = app().await;
    app.finnhub
        .reply("MSFT", quote_at(Utc::now().timestamp_millis()));
    let answer = app
        .get("/prices/latest?symbols=MSFT&provider=finnhub")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.json["quotes"].as_array().is_none_or(Vec::is_empty),
        "no quote: {}",
        answer.text
    );
    let error = &answer.json["errors"][0];
    assert_eq!(error["symbol"], "MSFT", "{}", answer.text);
    assert_eq!(error["status"], 503, "{}", answer.text);
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("ahead of the clock"),
        "{}",
        answer.text
    );
    assert_nothing_kept(&app).await;
}
