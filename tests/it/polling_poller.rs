//! The poller on the real stack (DynamoDB Local, PostgreSQL, Redis, Kafka, the fake
//! Finnhub), invoked with the very input an EventBridge rule delivers (the sample event of
//! `local/events/`). Jobs are created through the API.

use std::time::Duration;

use harness::dynamodb::{create_jobs_table, dynamodb_endpoint};
use harness::{Reply, TestApp, kafka};
use market_data::domain::JobId;
use market_data::usecases::{RunOutcome, RunReport};
use serde_json::{Value, json};

/// The real stack with jobs in a table of this test's own; the tick window is shortened so
/// a sub-minute test does not take a whole minute.
async fn app(window_secs: u32) -> TestApp {
    let table = create_jobs_table().await;
    TestApp::builder()
        .postgres()
        .redis()
        .kafka()
        .finnhub()
        .env("JOBS_TABLE", table.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint())
        .env("POLL_TICK_WINDOW_SECONDS", &window_secs.to_string())
        .build()
        .await
}

async fn create_job(app: &TestApp, body: Value) -> String {
    let r = app.post_json("/prices/poll", &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["job_id"].as_str().unwrap().to_owned()
}

/// The sample event of `local/events/`, naming `job_id`: what the rule sends.
fn rule_input(job_id: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../local/events/poller-scheduled.json")).unwrap();
    event["job_id"] = job_id.into();
    event
}

async fn invoke(app: &TestApp, job_id: &str) -> RunReport {
    poller::handle_json(&app.services.ticks, rule_input(job_id))
        .await
        .expect("the invocation succeeds")
}

async fn raw_rows(app: &TestApp, symbol: &str) -> i64 {
    let client = app.db.as_ref().unwrap().client().await;
    client
        .query_one(
            "SELECT count(*) FROM raw_market_data WHERE symbol = $1",
            &[&symbol],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_tick_fetches_every_symbol_once_stores_and_publishes() {
    let app = app(20).await;
    let symbols = ["AAPL", "MSFT", "NVDA"];
    let job_id = create_job(
        &app,
        json!({"symbols": ["aapl", "MSFT", "nvda", "AAPL"], "interval": 60, "provider": "finnhub"}),
    )
    .await;
    let report = invoke(&app, &job_id).await;
    assert_eq!(report.outcome, RunOutcome::Ran);
    assert_eq!(report.ticks.len(), 1, "{report:?}");
    assert_eq!(report.ticks[0].fetched, 3);
    for s in symbols {
        assert_eq!(app.finnhub.calls(s), 1, "{s}");
        assert_eq!(raw_rows(&app, s).await, 1, "{s}");
    }
    let records = kafka::consume(app.topic.as_deref().unwrap(), 3, Duration::from_secs(20)).await;
    let mut keys: Vec<String> = records.iter().filter_map(|r| r.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, symbols);
    for r in &records {
        assert_eq!(r.value["source"], "finnhub");
        assert!(r.value["raw_response_id"].is_string());
    }
    let job = app.get(&format!("/prices/poll/{job_id}")).await;
    assert_eq!(job.json["run_count"], 1);
    assert!(job.json["last_run_at"].is_string());
    assert_eq!(job.json["last_error"], Value::Null);

    // The next tick is a minute away: another invocation now does nothing.
    let again = invoke(&app, &job_id).await;
    assert_eq!((again.outcome, again.ticks.len()), (RunOutcome::NotDue, 0));
    assert_eq!(app.finnhub.calls("AAPL"), 1);
}

#[tokio::test]
async fn sub_minute_ticks_run_inside_one_invocation_spaced_by_the_interval() {
    // Ticks due within 25 s of a 10 s job: at 0, 10 and 20 s.
    let app = app(25).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL", "TSLA"], "interval": 10})).await;
    let report = invoke(&app, &job_id).await;
    assert_eq!(report.ticks.len(), 3, "{report:?}");
    for pair in report.ticks.windows(2) {
        let due = (pair[1].due_at - pair[0].due_at).num_milliseconds();
        assert_eq!(due, 10_000, "due times are exactly an interval apart");
        let started = (pair[1].started_at - pair[0].started_at).num_milliseconds();
        assert!(
            (9_000..=11_500).contains(&started),
            "started {started} ms apart"
        );
    }
    for t in &report.ticks {
        let late = (t.started_at - t.due_at).num_milliseconds();
        assert!(
            (0..1_500).contains(&late),
            "tick started {late} ms after it was due"
        );
    }
    assert_eq!(app.finnhub.calls("AAPL"), 3);
    assert_eq!(app.finnhub.calls("TSLA"), 3);
    assert_eq!(raw_rows(&app, "TSLA").await, 3);
    let job = app.get(&format!("/prices/poll/{job_id}")).await;
    assert_eq!(job.json["run_count"], 3);
}

#[tokio::test]
async fn a_paused_or_deleted_job_does_nothing() {
    let app = app(20).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL"], "interval": 10})).await;
    let r = app
        .post_json(&format!("/prices/poll/{job_id}/pause"), &json!({}))
        .await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("paused")));
    let report = invoke(&app, &job_id).await;
    assert_eq!(
        (report.outcome, report.ticks.len()),
        (RunOutcome::Paused, 0)
    );
    assert_eq!(app.finnhub.calls("AAPL"), 0);
    assert_eq!(raw_rows(&app, "AAPL").await, 0);

    let r = app.delete(&format!("/prices/poll/{job_id}")).await;
    assert_eq!(r.status, 204);
    let report = invoke(&app, &job_id).await;
    assert_eq!(
        (report.outcome, report.ticks.len()),
        (RunOutcome::Deleted, 0)
    );
    assert_eq!(app.finnhub.calls("AAPL"), 0);
}

#[tokio::test]
async fn two_pollers_racing_run_a_tick_once() {
    let app = app(20).await;
    let job_id = create_job(&app, json!({"symbols": ["AAPL", "MSFT"], "interval": 60})).await;
    let (a, b) = tokio::join!(invoke(&app, &job_id), invoke(&app, &job_id));
    assert_eq!(a.ticks.len() + b.ticks.len(), 1, "{a:?} {b:?}");
    assert_eq!(app.finnhub.calls("AAPL"), 1);
    assert_eq!(app.finnhub.calls("MSFT"), 1);
}

#[tokio::test]
async fn a_failing_symbol_is_reported_and_the_others_are_still_polled() {
    let app = app(20).await;
    app.finnhub.reply("ZZZZ", Reply::Zeros);
    app.finnhub.reply("MSFT", Reply::Status(500, vec![]));
    let job_id = create_job(
        &app,
        json!({"symbols": ["AAPL", "ZZZZ", "MSFT"], "interval": 60}),
    )
    .await;
    let report = invoke(&app, &job_id).await;
    let tick = &report.ticks[0];
    assert_eq!(tick.fetched, 1);
    let failed: Vec<&str> = tick.failures.iter().map(|f| f.symbol.as_str()).collect();
    assert_eq!(failed, ["MSFT", "ZZZZ"]);
    assert_eq!(raw_rows(&app, "AAPL").await, 1);
    let stored = app
        .services
        .api
        .jobs
        .jobs()
        .get(&JobId::parse(&job_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let error = stored.last_error.expect("the failures are recorded");
    assert!(error.contains("MSFT") && error.contains("ZZZZ"), "{error}");
}

#[tokio::test]
async fn input_that_names_no_job_is_refused() {
    let app = app(20).await;
    for bad in [json!({}), json!({"job_id": "nope"}), json!("poll_")] {
        assert!(
            poller::handle_json(&app.services.ticks, bad.clone())
                .await
                .is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn finnhub_calls_stay_within_the_configured_budget() {
    let table = create_jobs_table().await;
    let app = TestApp::builder()
        .postgres()
        .redis()
        .finnhub()
        .env("JOBS_TABLE", table.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint())
        .env("POLL_TICK_WINDOW_SECONDS", "5")
        .env("POLL_FINNHUB_CALLS_PER_MINUTE", "2")
        .build()
        .await;
    let symbols = ["AAPL", "MSFT", "NVDA", "TSLA"];
    let job_id = create_job(
        &app,
        json!({"symbols": symbols, "interval": 10, "provider": "finnhub"}),
    )
    .await;
    let report = invoke(&app, &job_id).await;
    let tick = &report.ticks[0];
    // Two calls are allowed at once; the next would only be allowed after the next tick.
    assert_eq!(tick.fetched, 2, "{tick:?}");
    assert_eq!(tick.failures.len(), 2);
    assert!(
        tick.failures.iter().all(|f| f.error.contains("budget")),
        "{tick:?}"
    );
    let calls: usize = symbols.iter().map(|s| app.finnhub.calls(s)).sum();
    assert_eq!(calls, 2);
}
