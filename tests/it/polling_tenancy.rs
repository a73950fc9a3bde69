//! Polling jobs with API keys: a job belongs to the key that created it, each key sees and
//! manages only its own (another key's job is 404), an admin key sees all, and each key's
//! limits (jobs, symbol-ticks a minute) are enforced with a problem naming the limit and the
//! current use. Jobs live in DynamoDB Local, where listing goes through an index.

use axum::body::Body;
use axum::http::Request;
use harness::TestApp;
use harness::app::TestResponse;
use harness::dynamodb::{create_jobs_table, dynamodb_endpoint};
use serde_json::{Value, json};

const ALPHA: &str = "alpha-key-0123456789abcdef";
const BRAVO: &str = "bravo-key-0123456789abcdef";
const ROOT: &str = "root-key-0123456789abcdefg";

async fn app() -> TestApp {
    let table = create_jobs_table().await;
    TestApp::builder()
        .env("JOBS_TABLE", table.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint())
        .env("POLL_MAX_JOBS_PER_KEY", "3")
        .env("POLL_MAX_SYMBOL_TICKS_PER_MINUTE", "20")
        .env(
            "API_KEYS",
            &format!(
                r#"[{{"name":"alpha","key":"{ALPHA}"}},
                    {{"name":"bravo","key":"{BRAVO}","max_jobs":1,"max_symbol_ticks_per_minute":7}},
                    {{"name":"root","key":"{ROOT}","admin":true}}]"#
            ),
        )
        .build()
        .await
}

async fn call(
    app: &TestApp,
    method: &str,
    uri: &str,
    key: &str,
    body: Option<Value>,
) -> TestResponse {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.send(builder.body(body).unwrap()).await
}

async fn create(app: &TestApp, key: &str, symbols: &[&str], interval: u32) -> TestResponse {
    call(
        app,
        "POST",
        "/prices/poll",
        key,
        Some(json!({"symbols": symbols, "interval": interval})),
    )
    .await
}

async fn create_ok(app: &TestApp, key: &str, symbols: &[&str], interval: u32) -> String {
    let r = create(app, key, symbols, interval).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["job_id"].as_str().unwrap().to_owned()
}

fn ids(list: &TestResponse) -> Vec<String> {
    assert_eq!(list.status, 200, "{}", list.text);
    list.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_key_sees_and_manages_only_its_own_jobs() {
    let app = app().await;
    let a1 = create_ok(&app, ALPHA, &["AAPL"], 60).await;
    let a2 = create_ok(&app, ALPHA, &["MSFT"], 60).await;
    let b1 = create_ok(&app, BRAVO, &["NVDA"], 60).await;

    let shown = call(&app, "GET", &format!("/prices/poll/{a1}"), ALPHA, None).await;
    assert_eq!(shown.json["owner"], "alpha");
    assert_eq!(
        ids(&call(&app, "GET", "/prices/poll", ALPHA, None).await),
        [a2.clone(), a1.clone()],
        "its own, newest first"
    );
    assert_eq!(
        ids(&call(&app, "GET", "/prices/poll", BRAVO, None).await),
        vec![b1.clone()]
    );

    // Another key's job is 404 on every route, and stays untouched.
    for (method, uri) in [
        ("GET", format!("/prices/poll/{a1}")),
        ("POST", format!("/prices/poll/{a1}/pause")),
        ("POST", format!("/prices/poll/{a1}/resume")),
        ("DELETE", format!("/prices/poll/{a1}")),
    ] {
        call(&app, method, &uri, BRAVO, None)
            .await
            .assert_problem(404, &a1);
    }
    let still = call(&app, "GET", &format!("/prices/poll/{a1}"), ALPHA, None).await;
    assert_eq!(still.json["status"], "active");

    // The admin key sees every job, and may manage any.
    assert_eq!(
        ids(&call(&app, "GET", "/prices/poll", ROOT, None).await),
        [b1.clone(), a2, a1.clone()]
    );
    let paused = call(
        &app,
        "POST",
        &format!("/prices/poll/{b1}/pause"),
        ROOT,
        None,
    )
    .await;
    assert_eq!(paused.json["status"], "paused");
    assert_eq!(
        call(&app, "DELETE", &format!("/prices/poll/{a1}"), ROOT, None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn over_the_job_limit_is_a_422_naming_the_limit_and_the_use() {
    let app = app().await;
    for s in ["AAPL", "MSFT", "NVDA"] {
        create_ok(&app, ALPHA, &[s], 60).await;
    }
    let r = create(&app, ALPHA, &["TSLA"], 60).await;
    r.assert_problem(422, "max_jobs = 3");
    assert!(r.problem_detail(422).contains("owns 3"), "{}", r.text);
    // Deleting one makes room.
    let list = call(&app, "GET", "/prices/poll", ALPHA, None).await;
    let first = ids(&list)[0].clone();
    call(
        &app,
        "DELETE",
        &format!("/prices/poll/{first}"),
        ALPHA,
        None,
    )
    .await;
    create_ok(&app, ALPHA, &["TSLA"], 60).await;
    // Another key's jobs do not count.
    create_ok(&app, BRAVO, &["AAPL"], 60).await;
}

#[tokio::test]
async fn over_the_symbol_tick_limit_is_a_422_naming_the_limit_and_the_use() {
    let app = app().await;
    // 3 symbols every 10 s: 18 symbol-ticks a minute, within the default 20.
    create_ok(&app, ALPHA, &["AAPL", "MSFT", "NVDA"], 10).await;
    let r = create(&app, ALPHA, &["TSLA"], 20).await;
    let detail = r.problem_detail(422);
    assert!(
        detail.contains("max_symbol_ticks_per_minute = 20")
            && detail.contains("use 18")
            && detail.contains("needs 3"),
        "{detail}"
    );
    // A key's own override: bravo may make 7 a minute.
    create(&app, BRAVO, &["AAPL", "MSFT"], 10)
        .await
        .assert_problem(422, "max_symbol_ticks_per_minute = 7");
    create_ok(&app, BRAVO, &["AAPL"], 10).await;
}
