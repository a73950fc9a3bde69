//! `GET /prices/latest` end to end on the real stack: router → cache (L1, Redis) →
//! provider (the fake Finnhub) → PostgreSQL → Kafka, through the router and through
//! `lambda_http` with an API Gateway v2 event.

use std::time::Duration;

use harness::app::apigw_v2_latest;
use harness::kafka::consume;
use harness::redis::{PrivateRedis, free_port};
use harness::{Reply, TestApp};
use uuid::Uuid;

#[tokio::test]
async fn two_calls_for_one_symbol_make_one_provider_call() {
    let app = TestApp::real_stack().await;
    let first = app.get("/prices/latest?symbol=AAPL").await;
    let second = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(app.finnhub.calls("AAPL"), 1);
    assert_eq!(first.json["provider"], "finnhub");
    assert_eq!(first.json["cached"], false);
    assert_eq!(second.json["cached"], true);
    assert_eq!(second.json["stale"], false);
    assert_eq!(second.json["timestamp"], first.json["timestamp"]);
    assert_eq!(second.json["price"], first.json["price"]);
}

#[tokio::test]
async fn ten_concurrent_calls_on_a_cold_symbol_make_one_provider_call() {
    let app = TestApp::real_stack().await;
    app.finnhub.reply(
        "MSFT",
        Reply::Delayed(Duration::from_millis(300), Box::new(Reply::Quote)),
    );
    let calls = (0..10).map(|_| app.get("/prices/latest?symbol=MSFT"));
    let responses = futures::future::join_all(calls).await;
    assert!(responses.iter().all(|r| r.status == 200));
    assert_eq!(app.finnhub.calls("MSFT"), 1);
    let prices: Vec<_> = responses.iter().map(|r| &r.json["price"]).collect();
    assert!(prices.windows(2).all(|w| w[0] == w[1]));
    // One provider call means one stored row.
    let client = app.db.as_ref().unwrap().client().await;
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM raw_market_data WHERE symbol = 'MSFT'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_miss_stores_the_raw_response_then_publishes_its_event() {
    let app = TestApp::real_stack().await;
    let response = app.get("/prices/latest?symbol=TSLA").await;
    assert_eq!(response.status, 200);

    let client = app.db.as_ref().unwrap().client().await;
    let row = client
        .query_one(
            "SELECT id, price::text, raw, event_delivered_at IS NOT NULL
             FROM raw_market_data WHERE symbol = 'TSLA'",
            &[],
        )
        .await
        .unwrap();
    let id: Uuid = row.get(0);
    assert_eq!(row.get::<_, String>(1), response.json["price"].to_string());
    assert_eq!(
        row.get::<_, serde_json::Value>(2)["c"],
        response.json["price"]
    );
    assert!(row.get::<_, bool>(3), "delivery is recorded");

    let records = consume(app.topic.as_deref().unwrap(), 1, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key.as_deref(), Some("TSLA"));
    assert_eq!(records[0].value["raw_response_id"], id.to_string());
    assert_eq!(records[0].value["price"], response.json["price"]);
    assert_eq!(records[0].value["timestamp"], response.json["timestamp"]);
    assert_eq!(records[0].value["source"], "finnhub");
}

#[tokio::test]
async fn lambda_http_serves_an_api_gateway_v2_event() {
    let app = TestApp::real_stack().await;
    let event = apigw_v2_latest(&[("symbol", "aapl"), ("provider", "finnhub")]);
    let first = app.invoke_apigw_v2(event.clone()).await;
    let second = app.invoke_apigw_v2(event).await;
    for response in [&first, &second] {
        assert_eq!(response["statusCode"], 200, "{response}");
        assert!(
            response["headers"]["content-type"]
                .as_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    let body: serde_json::Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["provider"], "finnhub");
    assert!(body["price"].as_f64().unwrap() > 0.0);
    assert_eq!(app.finnhub.calls("AAPL"), 1);
}

#[tokio::test]
async fn lambda_http_answers_bad_input_with_a_problem() {
    let app = TestApp::real_stack().await;
    let response = app
        .invoke_apigw_v2(apigw_v2_latest(&[("symbol", "no way")]))
        .await;
    assert_eq!(response["statusCode"], 400);
    assert_eq!(
        response["headers"]["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert!(body["detail"].as_str().unwrap().contains("symbol"));
}

#[tokio::test]
async fn another_container_is_answered_from_redis_with_the_same_quote() {
    let first = TestApp::real_stack().await;
    let a = first.get("/prices/latest?symbol=NVDA").await;
    assert_eq!(a.status, 200);

    // A second "container": its own memory and its own provider, the same Redis keys.
    let second = TestApp::builder()
        .finnhub()
        .env("REDIS_URL", &harness::redis::url())
        .env("REDIS_KEY_PREFIX", first.redis_prefix.as_deref().unwrap())
        .build()
        .await;
    let b = second.get("/prices/latest?symbol=NVDA").await;
    assert_eq!(b.status, 200);
    assert_eq!(second.finnhub.calls("NVDA"), 0);
    assert_eq!(b.json["cached"], true);
    assert_eq!(b.json["timestamp"], a.json["timestamp"]);
    assert_eq!(b.json["price"], a.json["price"]);
    assert_eq!(b.json["fetched_at"], a.json["fetched_at"]);
}

#[tokio::test]
async fn a_stale_quote_stands_in_while_the_provider_fails_then_expires() {
    let app = TestApp::builder()
        .redis()
        .finnhub()
        .env("CACHE_TTL_SECONDS", "1")
        .env("CACHE_STALE_TTL_SECONDS", "3")
        .build()
        .await;
    let fresh = app.get("/prices/latest?symbol=AMZN").await;
    assert_eq!(fresh.status, 200);
    app.finnhub.reply("AMZN", Reply::Status(500, vec![]));

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stale = app.get("/prices/latest?symbol=AMZN").await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.json["stale"], true);
    assert_eq!(stale.json["cached"], true);
    assert_eq!(stale.json["timestamp"], fresh.json["timestamp"]);
    assert_eq!(app.finnhub.calls("AMZN"), 2, "the provider was asked first");

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let gone = app.get("/prices/latest?symbol=AMZN").await;
    gone.problem_detail(503);
}

#[tokio::test]
async fn an_unknown_symbol_is_not_hidden_by_a_stale_price() {
    let app = TestApp::builder()
        .finnhub()
        .env("CACHE_TTL_SECONDS", "1")
        .build()
        .await;
    assert_eq!(app.get("/prices/latest?symbol=DELISTED").await.status, 200);
    app.finnhub.reply("DELISTED", Reply::Zeros);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.get("/prices/latest?symbol=DELISTED").await.status, 404);
}

#[tokio::test]
async fn with_redis_unreachable_answers_still_come() {
    let app = TestApp::builder()
        .postgres()
        .kafka()
        .finnhub()
        .redis_at(&format!("redis://127.0.0.1:{}", free_port()))
        .build()
        .await;
    let first = app.get("/prices/latest?symbol=AAPL").await;
    let second = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(
        second.json["cached"], true,
        "the in-process tier still works"
    );
    assert_eq!(app.finnhub.calls("AAPL"), 1);
}

#[tokio::test]
async fn with_redis_stopped_mid_run_answers_still_come() {
    let mut redis = PrivateRedis::start().await;
    let app = TestApp::builder()
        .finnhub()
        .redis_at(&redis.url())
        .build()
        .await;
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 200);
    redis.stop();
    let after = app.get("/prices/latest?symbol=MSFT").await;
    assert_eq!(after.status, 200);
    assert_eq!(after.json["symbol"], "MSFT");
    assert_eq!(
        app.get("/prices/latest?symbol=AAPL").await.json["cached"],
        true
    );
}

#[tokio::test]
async fn embedded_defaults_serve_simulated_quotes_and_name_the_missing_key() {
    let app = TestApp::builder().build().await;
    let quote = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(quote.status, 200);
    assert_eq!(quote.json["provider"], "simulated");
    assert!(quote.json["price"].as_f64().unwrap() > 0.0);

    let finnhub = app.get("/prices/latest?symbol=AAPL&provider=finnhub").await;
    finnhub.assert_problem(503, "FINNHUB_API_KEY");
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let app = TestApp::real_stack().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.json);
    let deps = ready.json["dependencies"].as_array().unwrap();
    for port in ["store", "cache", "events", "provider:finnhub"] {
        let dep = deps.iter().find(|d| d["port"] == port).unwrap();
        assert_eq!(dep["status"], "up", "{dep}");
    }

    let broken = TestApp::builder()
        .redis_at(&format!("redis://127.0.0.1:{}", free_port()))
        .env(
            "KAFKA_BOOTSTRAP_SERVERS",
            &format!("127.0.0.1:{}", free_port()),
        )
        .env("KAFKA_DELIVERY_TIMEOUT_MS", "500")
        .build()
        .await;
    let degraded = broken.get("/ready").await;
    assert_eq!(degraded.status, 503);
    assert_eq!(degraded.json["status"], "degraded");
    let deps = degraded.json["dependencies"].as_array().unwrap();
    let state = |port: &str| deps.iter().find(|d| d["port"] == port).unwrap().clone();
    assert_eq!(state("cache")["status"], "down");
    assert_eq!(state("events")["status"], "down");
    assert_eq!(
        state("store")["status"],
        "up",
        "the in-memory store is always up"
    );
    assert_eq!(state("provider:finnhub")["status"], "not_configured");
}

#[tokio::test]
async fn health_answers_without_touching_dependencies() {
    let app = TestApp::builder()
        .redis_at(&format!("redis://127.0.0.1:{}", free_port()))
        .build()
        .await;
    let health = app.get("/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json["status"], "ok");
}
