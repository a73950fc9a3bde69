//! Records PostgreSQL would refuse, given to the `ma-consumer` handler as MSK events on the
//! real database: each is kept as a dead letter and the rest of its batch is stored, so a
//! partition never stalls on one record retried forever.

use harness::TestApp;
use harness::price_events::{RawRecord, event, msk_event, records_of, t0};
use market_data::domain::PriceEvent;
use market_data::usecases::ConsumeReport;
use rust_decimal::Decimal;
use serde_json::json;

const TOPIC: &str = "price-events";

async fn app(windows: &str) -> TestApp {
    TestApp::builder()
        .postgres()
        .env("MA_WINDOWS", windows)
        .build()
        .await
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Two good events around a bad one (offset 1), as one batch.
fn batch_around(bad: &str) -> Vec<RawRecord> {
    let good = [event("AAPL", 0, d("100.5")), event("AAPL", 60, d("101.5"))];
    let mut records = records_of(&good, 0);
    records[1].1 = 2;
    records.insert(1, (0, 1, bad.as_bytes().to_vec()));
    records
}

/// A price event's JSON with one field replaced by raw JSON text.
fn with_field(name: &str, raw: &str) -> String {
    let mut value = json!({
        "symbol": "AAPL",
        "price": 100.25,
        "timestamp": (t0() + chrono::Duration::seconds(30)).to_rfc3339(),
        "source": "simulated",
        "raw_response_id": uuid::Uuid::now_v7().to_string(),
    });
    value[name] = json!("__raw__");
    value.to_string().replace("\"__raw__\"", raw)
}

async fn consume(
    app: &TestApp,
    records: &[RawRecord],
) -> Result<ConsumeReport, ma_consumer::HandlerError> {
    ma_consumer::handle(&app.services.consumer, &msk_event(TOPIC, records)).await
}

/// The dead letters stored: offset and reason.
async fn dead_letters(app: &TestApp) -> Vec<(i64, String)> {
    let client = app.db.as_ref().unwrap().client().await;
    client
        .query(
            "SELECT \"offset\", reason FROM dead_letters ORDER BY \"offset\"",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn assert_the_rest_was_stored(app: &TestApp, report: ConsumeReport, reason_has: &str) {
    assert_eq!(report.records, 3, "{report:?}");
    assert_eq!(report.points_added, 2, "{report:?}");
    assert_eq!(report.dead_letters, 1, "{report:?}");
    let letters = dead_letters(app).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, 1);
    assert!(
        letters[0].1.contains(reason_has),
        "reason {:?} should mention {reason_has:?}",
        letters[0].1
    );
    assert!(!letters[0].1.contains('\0'));
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=2").await;
    assert_eq!(ma.status, 200, "{}", ma.text);
    assert_eq!(ma.json["value"], json!(101.0));
}

#[tokio::test]
async fn a_source_with_a_nul_byte_is_a_dead_letter_and_the_batch_goes_on() {
    let app = app("sma:2").await;
    let records = batch_around(&with_field("source", r#""simu\u0000lated""#));
    let report = consume(&app, &records)
        .await
        .expect("the batch is consumed");
    assert_the_rest_was_stored(&app, report, "source").await;
}

#[tokio::test]
async fn a_time_postgres_cannot_hold_is_a_dead_letter_and_the_batch_goes_on() {
    let app = app("sma:2").await;
    let records = batch_around(&with_field("timestamp", r#""-5000-01-01T00:00:00Z""#));
    let report = consume(&app, &records)
        .await
        .expect("the batch is consumed");
    assert_the_rest_was_stored(&app, report, "1990").await;
}

#[tokio::test]
async fn a_nul_the_reason_quotes_from_the_input_is_escaped_and_the_batch_goes_on() {
    let app = app("sma:2").await;
    // uuid's error quotes the offending character as it is: the reason would hold a NUL.
    let bad = with_field(
        "raw_response_id",
        r#""0\u00009ac6a2-6b1e-7c3d-9a52-0c6f1d2e3b4a""#,
    );
    let records = batch_around(&bad);
    let report = consume(&app, &records)
        .await
        .expect("the batch is consumed");
    assert_the_rest_was_stored(&app, report, "invalid character").await;
}

#[tokio::test]
async fn a_price_that_does_not_fit_is_a_dead_letter_and_the_batch_goes_on() {
    let app = app("sma:2").await;
    // Two prices whose sum no decimal holds (the average would overflow), one with more digits
    // than a decimal holds (it would be stored rounded), and two good events.
    let good = [event("AAPL", 0, d("100.5")), event("AAPL", 60, d("101.5"))];
    let records = vec![
        (0, 0, good[0].to_json().unwrap()),
        (0, 1, with_field("price", "5e28").into_bytes()),
        (0, 2, with_field("price", "5e28").into_bytes()),
        (
            0,
            3,
            with_field("price", "1.00000000000000000000000000001").into_bytes(),
        ),
        (0, 4, good[1].to_json().unwrap()),
    ];
    let report = consume(&app, &records)
        .await
        .expect("the batch is consumed");
    assert_eq!(report.points_added, 2, "{report:?}");
    assert_eq!(report.dead_letters, 3, "{report:?}");
    let offsets: Vec<i64> = dead_letters(&app).await.iter().map(|l| l.0).collect();
    assert_eq!(offsets, [1, 2, 3]);
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=2").await;
    assert_eq!(ma.json["value"], json!(101.0), "{}", ma.text);
}

#[tokio::test]
async fn a_record_the_database_still_refuses_is_set_aside_and_the_rest_commit() {
    let app = app("sma:2").await;
    // A refusal decoding cannot foresee: a constraint of this database only.
    let client = app.db.as_ref().unwrap().client().await;
    client
        .batch_execute(
            "ALTER TABLE price_points ADD CONSTRAINT refuses_one_source \
             CHECK (source <> 'refused-here')",
        )
        .await
        .unwrap();
    let mut events: Vec<PriceEvent> = (0..7)
        .map(|i| event("AAPL", i * 60, Decimal::from(100 + i)))
        .collect();
    events[3].source = "refused-here".into();
    let report = consume(&app, &records_of(&events, 0))
        .await
        .expect("the batch is consumed");
    assert_eq!(report.points_added, 6, "{report:?}");
    assert_eq!(report.dead_letters, 1, "{report:?}");
    let letters = dead_letters(&app).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, 3);
    assert!(
        letters[0].1.contains("refuses_one_source"),
        "{:?}",
        letters[0].1
    );
    // (105 + 106) / 2: the points after the refused one are stored and averaged.
    let ma = app.get("/prices/moving-average?symbol=AAPL&window=2").await;
    assert_eq!(ma.json["value"], json!(105.5), "{}", ma.text);

    // Delivered again, the batch changes nothing and sets nothing more aside.
    let again = consume(&app, &records_of(&events, 0)).await.unwrap();
    assert_eq!(again.points_added, 0, "{again:?}");
    assert_eq!(again.duplicates, 6, "{again:?}");
    assert_eq!(dead_letters(&app).await.len(), 1);
}

#[tokio::test]
async fn an_unavailable_database_fails_the_invocation_for_a_retry() {
    let db = harness::postgres::TestDb::create().await;
    let proxy = harness::proxy::Proxy::start(&harness::postgres::server_address()).await;
    let app = TestApp::builder()
        .env("DATABASE_URL", &db.url_via(proxy.addr()))
        .env("DATABASE_MIGRATE_ON_START", "true")
        .env("MA_WINDOWS", "sma:2")
        .build()
        .await;
    let events = [event("AAPL", 0, d("100.5")), event("AAPL", 60, d("101.5"))];
    proxy.cut();
    let error = consume(&app, &records_of(&events, 0))
        .await
        .expect_err("no database, no batch");
    assert!(error.is_retryable(), "{error}");

    proxy.restore();
    let report = consume(&app, &records_of(&events, 0))
        .await
        .expect("consumed once the database is back");
    assert_eq!(report.points_added, 2, "{report:?}");
    assert_eq!(report.dead_letters, 0, "{report:?}");
}
