//! Logs: one access line per request with its ids and outcome, and never a secret.
//!
//! The test installs the process's log subscriber, capturing every event at every level,
//! from this code and from every library, so it needs a process of its own
//! ([`harness::in_own_process`]).

use harness::app::{TEST_FINNHUB_KEY, apigw_v2_event};
use harness::log_capture::Capture;
use harness::postgres::TestDb;
use harness::{Reply, TestApp};
use tracing_subscriber::EnvFilter;

/// Status, cache outcome, provider and caller of one access line.
type Outcome<'a> = (u64, Option<&'a str>, Option<&'a str>, Option<&'a str>);

const API_KEY: &str = "ops-key-s3cr3t-0123456789";
const WRONG_KEY: &str = "guess-key-s3cr3t-9876543210";
const DB_PASSWORD: &str = "db-pa55word-s3cr3t";

#[tokio::test]
async fn logs_carry_request_ids_and_outcomes_and_never_a_secret() {
    if !harness::in_own_process(
        "observability::logs_carry_request_ids_and_outcomes_and_never_a_secret",
    ) {
        return;
    }
    let capture = Capture::default();
    market_data::telemetry::init_json(EnvFilter::new("trace"), capture.clone());

    let db = TestDb::create().await;
    let db_url = db
        .url
        .replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1);
    let app = TestApp::builder()
        .redis()
        .kafka()
        .finnhub()
        .env("DATABASE_URL", &db_url)
        .env("DATABASE_MIGRATE_ON_START", "true")
        .env("API_KEYS", &format!(r#"{{"ops":"{API_KEY}"}}"#))
        .env("METRICS", "log")
        .build()
        .await;
    // A premium symbol (403): 502, and unlike a refused key no cool-down for the others.
    app.finnhub.reply("DENIED", Reply::Status(403, vec![]));

    let key = [("x-api-key", API_KEY)];
    assert_eq!(
        app.get_with("/prices/latest?symbol=AAPL", &key)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get_with("/prices/latest?symbol=AAPL", &key)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get_with("/prices/latest?symbol=DENIED", &key)
            .await
            .status,
        502
    );
    assert_eq!(
        app.get_with("/prices/latest?symbol=AAPL", &[("x-api-key", WRONG_KEY)])
            .await
            .status,
        401
    );
    let event = apigw_v2_event(&[("symbol", "MSFT")], &key, "198.51.100.7");
    let apigw_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.invoke_apigw_v2(event).await["statusCode"], 200);

    let logs = capture.text();
    for secret in [API_KEY, WRONG_KEY, TEST_FINNHUB_KEY, DB_PASSWORD] {
        assert!(
            !logs.contains(secret),
            "a secret leaked into the logs: {secret}"
        );
    }

    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "access")
        .collect();
    assert_eq!(access.len(), 5, "one access line per request");
    for line in &access {
        assert!(
            line["span"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert_eq!(line["route"], "/prices/latest", "{line}");
        assert!(line["latency_ms"].as_f64().is_some(), "{line}");
        assert!(line["status"].as_u64().is_some(), "{line}");
    }
    let outcomes: Vec<Outcome> = access
        .iter()
        .map(|l| {
            (
                l["status"].as_u64().unwrap(),
                l["cache"].as_str(),
                l["provider"].as_str(),
                l["caller"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        outcomes[0],
        (200, Some("miss"), Some("finnhub"), Some("ops"))
    );
    assert_eq!(
        outcomes[1],
        (200, Some("hit-local"), Some("finnhub"), Some("ops"))
    );
    assert_eq!(outcomes[2].0, 502);
    assert_eq!(outcomes[3], (401, None, None, None));
    let lambda_line = &access[4];
    assert_eq!(lambda_line["span"]["apigw_request_id"], apigw_id.as_str());
    assert_eq!(lambda_line["span"]["request_id"], apigw_id.as_str());

    // Lines logged inside a request carry its id too.
    let inner = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["metric"] == "ProviderLatency")
        .expect("metrics are logged with METRICS=log");
    assert!(inner["span"]["request_id"].as_str().is_some(), "{inner}");
}
