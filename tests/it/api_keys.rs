//! API keys: off by default; when configured, required on every route but `/health` and
//! the documentation, each key with an optional limit of its own.

use harness::app::{TestAppBuilder, apigw_v2_event};
use harness::{TestApp, create_secret, load_edge_config, secrets_client};

const ALPHA: &str = "alpha-key-0123456789abcdef";
const BRAVO: &str = "bravo-key-0123456789abcdef";

fn with_keys(builder: TestAppBuilder) -> TestAppBuilder {
    builder.env(
        "API_KEYS",
        &format!(
            r#"[{{"name":"alpha","key":"{ALPHA}","per_minute":2}},{{"name":"bravo","key":"{BRAVO}"}}]"#
        ),
    )
}

#[tokio::test]
async fn without_configured_keys_the_api_is_open() {
    let app = TestApp::builder().build().await;
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 200);
}

#[tokio::test]
async fn a_missing_key_is_401() {
    let app = with_keys(TestApp::builder()).build().await;
    let detail = app
        .get("/prices/latest?symbol=AAPL")
        .await
        .problem_detail(401);
    assert!(detail.contains("x-api-key"), "{detail}");
}

#[tokio::test]
async fn readiness_without_a_key_is_the_status_alone() {
    let app = with_keys(TestApp::builder()).build().await;
    let anonymous = app.get("/ready").await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text);
    assert_eq!(anonymous.json, serde_json::json!({"status": "ready"}));
    let wrong = app.get_with("/ready", &[("x-api-key", "nope")]).await;
    assert_eq!(wrong.json, serde_json::json!({"status": "ready"}));
    let keyed = app.get_with("/ready", &[("x-api-key", BRAVO)]).await;
    assert!(
        keyed.json["dependencies"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        keyed.json
    );
}

#[tokio::test]
async fn wrong_keys_count_against_the_address_and_are_throttled() {
    let app = with_keys(TestApp::builder())
        .env("RATE_LIMIT_PER_MINUTE", "3")
        .env("RATE_LIMIT_BURST", "3")
        .build()
        .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .get_with(
                "/prices/latest?symbol=AAPL",
                &[("x-api-key", "guess-0123456789abcdef")],
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // A valid key is its own client: the address's refusals do not reach it.
    let r = app
        .get_with("/prices/latest?symbol=AAPL", &[("x-api-key", BRAVO)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_wrong_key_is_401() {
    let app = with_keys(TestApp::builder()).build().await;
    for wrong in ["nope", &ALPHA[..ALPHA.len() - 1], &format!("{ALPHA}0"), ""] {
        let r = app
            .get_with("/prices/latest?symbol=AAPL", &[("x-api-key", wrong)])
            .await;
        let detail = r.problem_detail(401);
        assert!(
            !detail.contains(wrong) || wrong.is_empty(),
            "the key is not echoed"
        );
    }
}

#[tokio::test]
async fn a_valid_key_is_let_through() {
    let app = with_keys(TestApp::builder()).build().await;
    for key in [ALPHA, BRAVO] {
        let r = app
            .get_with("/prices/latest?symbol=AAPL", &[("x-api-key", key)])
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
    }
}

#[tokio::test]
async fn health_and_docs_need_no_key() {
    let app = with_keys(TestApp::builder()).build().await;
    for uri in ["/health", "/openapi.json", "/docs/", "/redoc"] {
        assert_eq!(app.get(uri).await.status, 200, "{uri}");
    }
}

#[tokio::test]
async fn each_key_has_its_own_limit_on_the_shared_redis() {
    let app = with_keys(TestApp::builder().redis())
        .env("RATE_LIMIT_PER_MINUTE", "100")
        .build()
        .await;
    let app = &app;
    let get = |key: &'static str| async move {
        app.get_with("/prices/latest?symbol=AAPL", &[("x-api-key", key)])
            .await
    };
    assert_eq!(get(ALPHA).await.status, 200);
    let second = get(ALPHA).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.headers["ratelimit-limit"], "2");
    assert_eq!(get(ALPHA).await.status, 429, "alpha's own limit is 2");
    for _ in 0..5 {
        let r = get(BRAVO).await;
        assert_eq!(r.status, 200, "bravo has the default limit");
        assert_eq!(r.headers["ratelimit-limit"], "100");
    }
}

#[tokio::test]
async fn a_key_counts_wherever_it_is_used_from() {
    let app = with_keys(TestApp::builder().redis()).build().await;
    let q = [("symbol", "AAPL")];
    let key = [("x-api-key", ALPHA)];
    let status = |r: serde_json::Value| r["statusCode"].as_u64().unwrap();
    assert_eq!(
        status(
            app.invoke_apigw_v2(apigw_v2_event(&q, &key, "198.51.100.1"))
                .await
        ),
        200
    );
    assert_eq!(
        status(
            app.invoke_apigw_v2(apigw_v2_event(&q, &key, "198.51.100.2"))
                .await
        ),
        200
    );
    assert_eq!(
        status(
            app.invoke_apigw_v2(apigw_v2_event(&q, &key, "198.51.100.3"))
                .await
        ),
        429
    );
}

#[tokio::test]
async fn keys_can_come_from_secrets_manager() {
    let client = secrets_client().await;
    let name = create_secret(&client, &format!(r#"{{"ops":"{ALPHA}"}}"#)).await;
    let store = market_data::secrets::SecretsManager::new(client);
    let edge = load_edge_config(&[("API_KEYS_SECRET_ID", name.as_str())], &store)
        .await
        .unwrap();
    let keys = edge.api_keys.expect("keys loaded");
    assert_eq!(keys.find(ALPHA).map(|k| k.name.as_str()), Some("ops"));
}
