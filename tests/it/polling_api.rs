//! The `/prices/poll` routes through the real router: the seed's request and answer,
//! listing (newest first), pausing, deleting, and a clear 4xx problem for every kind of bad
//! input. Without API keys the service is single-tenant: jobs have no owner.
//! Jobs here live in the embedded store (the DynamoDB adapter has tests of its own).

use harness::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn the_seed_request_is_accepted_with_the_seed_answer() {
    let app = TestApp::builder().build().await;
    let r = app
        .post_json(
            "/prices/poll",
            &json!({"symbols": [" aapl", "MSFT", "AAPL"], "interval": 60, "provider": "simulated"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["job_id"].as_str().unwrap();
    assert!(id.starts_with("poll_") && id.len() == 37, "{id}");
    assert_eq!(r.json["status"], "accepted");
    assert_eq!(
        r.json["config"],
        json!({"symbols": ["AAPL", "MSFT"], "interval": 60, "provider": "simulated"})
    );

    let shown = app.get(&format!("/prices/poll/{id}")).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json["status"], "active");
    assert_eq!(shown.json["run_count"], 0);
    assert_eq!(
        shown.json["owner"],
        Value::Null,
        "single-tenant without API keys"
    );
    assert_eq!(shown.json["config"], r.json["config"]);

    // Without a provider, the deployment's default (here: simulated).
    let r = app
        .post_json(
            "/prices/poll",
            &json!({"symbols": ["TSLA"], "interval": 10}),
        )
        .await;
    assert_eq!(r.json["config"]["provider"], "simulated");
}

#[tokio::test]
async fn jobs_are_listed_a_page_at_a_time() {
    let app = TestApp::builder().build().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let r = app
            .post_json(
                "/prices/poll",
                &json!({"symbols": [format!("S{i}")], "interval": 10 + i}),
            )
            .await;
        created.push(r.json["job_id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut uri = "/prices/poll?limit=2".to_owned();
    loop {
        let page = app.get(&uri).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let jobs = page.json["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 2);
        seen.extend(
            jobs.iter()
                .map(|j| j["job_id"].as_str().unwrap().to_owned()),
        );
        match page.json["next_cursor"].as_str() {
            Some(c) => uri = format!("/prices/poll?limit=2&cursor={c}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "every job once, newest first");

    app.get("/prices/poll?limit=0")
        .await
        .assert_problem(400, "limit");
    app.get("/prices/poll?limit=101")
        .await
        .assert_problem(400, "limit");
    app.get("/prices/poll?limit=ten")
        .await
        .assert_problem(400, "limit");
    app.get("/prices/poll?cursor=garbage")
        .await
        .assert_problem(400, "cursor");
}

#[tokio::test]
async fn pause_resume_and_delete() {
    let app = TestApp::builder().build().await;
    let r = app
        .post_json(
            "/prices/poll",
            &json!({"symbols": ["AAPL"], "interval": 30}),
        )
        .await;
    let id = r.json["job_id"].as_str().unwrap().to_owned();

    let paused = app.post_raw(&format!("/prices/poll/{id}/pause"), "").await;
    assert_eq!(
        (paused.status, paused.json["status"].as_str()),
        (200, Some("paused"))
    );
    let again = app.post_raw(&format!("/prices/poll/{id}/pause"), "").await;
    assert_eq!(again.json["status"], "paused");
    let resumed = app.post_raw(&format!("/prices/poll/{id}/resume"), "").await;
    assert_eq!(
        (resumed.status, resumed.json["status"].as_str()),
        (200, Some("active"))
    );

    let gone = app.delete(&format!("/prices/poll/{id}")).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    app.delete(&format!("/prices/poll/{id}"))
        .await
        .assert_problem(404, &id);
    app.get(&format!("/prices/poll/{id}"))
        .await
        .assert_problem(404, &id);
    app.post_raw(&format!("/prices/poll/{id}/resume"), "")
        .await
        .assert_problem(404, &id);
}

#[tokio::test]
async fn unknown_or_malformed_job_ids_are_404() {
    let app = TestApp::builder().build().await;
    for id in [
        "poll_0123456789abcdef0123456789abcdef",
        "poll_nope",
        "job_1",
        "..%2F..%2Fetc",
    ] {
        app.get(&format!("/prices/poll/{id}"))
            .await
            .assert_problem(404, "no polling job");
        app.delete(&format!("/prices/poll/{id}"))
            .await
            .assert_problem(404, "no polling job");
        app.post_raw(&format!("/prices/poll/{id}/pause"), "")
            .await
            .assert_problem(404, "no polling job");
    }
}

#[tokio::test]
async fn every_malformed_body_is_a_clear_4xx_problem() {
    let app = TestApp::builder().build().await;
    let raw_cases: &[(&str, u16, &str)] = &[
        ("", 400, "JSON object"),
        ("   ", 400, "JSON object"),
        ("{", 400, "not valid JSON"),
        (
            "{\"symbols\": [\"AAPL\"], \"interval\": 10",
            400,
            "not valid JSON",
        ),
        ("symbols=AAPL&interval=10", 400, "not valid JSON"),
        ("[]", 422, "does not match"),
        ("null", 422, "does not match"),
        ("\"AAPL\"", 422, "does not match"),
    ];
    for (body, status, detail) in raw_cases {
        let r = app.post_raw("/prices/poll", body.to_string()).await;
        r.assert_problem(*status, detail);
    }
    let too_many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"interval": 10}), 422, "symbols"),
        (json!({"symbols": ["AAPL"]}), 422, "interval"),
        (
            json!({"symbols": "AAPL", "interval": 10}),
            422,
            "does not match",
        ),
        (
            json!({"symbols": [1, 2], "interval": 10}),
            422,
            "does not match",
        ),
        (json!({"symbols": [], "interval": 10}), 422, "at least one"),
        (
            json!({"symbols": too_many, "interval": 10}),
            422,
            "at most 50",
        ),
        (
            json!({"symbols": ["AAPL", "no way"], "interval": 10}),
            422,
            "symbols[1]",
        ),
        (
            json!({"symbols": ["AAPL", ""], "interval": 10}),
            422,
            "symbols[1]",
        ),
        (
            json!({"symbols": ["AAPL'; DROP TABLE x;--"], "interval": 10}),
            422,
            "symbols[0]",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 9}),
            422,
            "from 10 to 86400",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 0}),
            422,
            "from 10 to 86400",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 86_401}),
            422,
            "from 10 to 86400",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 99_999_999_999u64}),
            422,
            "from 10 to 86400",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": -10}),
            422,
            "does not match",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 10.5}),
            422,
            "does not match",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": "10"}),
            422,
            "does not match",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 10, "provider": "bloomberg"}),
            400,
            "unknown provider",
        ),
        (
            json!({"symbols": ["AAPL"], "interval": 10, "provider": 7}),
            422,
            "does not match",
        ),
        // Known but without an API key on this deployment.
        (
            json!({"symbols": ["AAPL"], "interval": 10, "provider": "finnhub"}),
            503,
            "not configured",
        ),
    ];
    for (body, status, detail) in cases {
        let r = app.post_json("/prices/poll", &body).await;
        r.assert_problem(status, detail);
    }
    // Nothing of the above made a job.
    let list = app.get("/prices/poll").await;
    assert_eq!(list.json["jobs"], json!([]));
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = TestApp::builder().build().await;
    let huge = format!(
        "{{\"symbols\": [\"{}\"], \"interval\": 10}}",
        "A".repeat(70_000)
    );
    let r = app.post_raw("/prices/poll", huge).await;
    r.assert_problem(413, "length limit");
}
