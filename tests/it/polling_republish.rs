//! The re-publisher runs on the one-minute wake-up whether or not any polling job exists:
//! events whose publish failed while the broker was down reach the topic, the price points
//! and the averages once it is back, with no job and no API traffic to carry them.

use std::time::Duration;

use harness::TestApp;
use harness::broker::PrivateBroker;
use harness::event_source::RunningSource;
use market_data_local::event_source::BatchSettings;
use market_data_local::poller_clock;

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "NVDA"];

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn with_no_job_undelivered_events_reach_the_topic_and_the_averages_within_two_minutes() {
    let broker = PrivateBroker::start().await;
    let topic = broker.create_topic(1).await;
    let app = TestApp::builder()
        .postgres()
        .finnhub()
        .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap())
        .env("KAFKA_TOPIC", &topic)
        .env("KAFKA_DELIVERY_TIMEOUT_MS", "2000")
        .env("MA_WINDOWS", "sma:1")
        .build()
        .await;
    let db = app.db.as_ref().unwrap().client().await;
    // The local runner's stand-in for the stack's rate(1 minute) rule, on its real period.
    let clock = tokio::spawn(poller_clock::run_wake_ups(
        app.services.wake_up.clone(),
        app.services.ticks.clone(),
        poller_clock::WAKE_UP_PERIOD,
    ));

    broker.freeze();
    for s in SYMBOLS {
        let r = app.get(&format!("/prices/latest?symbol={s}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let undelivered = "SELECT count(*) FROM raw_market_data WHERE event_delivered_at IS NULL";
    assert_eq!(
        count(&db, undelivered).await,
        3,
        "three misses, none published"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM price_points").await, 0);
    broker.thaw();
    let back = tokio::time::Instant::now();

    // The consumer reads the topic as the MSK event source would.
    let source = RunningSource::start(
        &app,
        BatchSettings {
            max_records: 100,
            max_wait: Duration::from_millis(200),
            group_id: harness::unique_name("mdb_t_group"),
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        },
    );
    let averages = "SELECT count(DISTINCT symbol) FROM moving_averages";
    while count(&db, "SELECT count(*) FROM price_points").await < 3
        || count(&db, averages).await < 3
    {
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "after two minutes: {} undelivered, {} points, averages of {} symbols",
            count(&db, undelivered).await,
            count(&db, "SELECT count(*) FROM price_points").await,
            count(&db, averages).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(count(&db, undelivered).await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM price_points").await, 3);
    clock.abort();
    source.stop().await;
}

#[tokio::test]
async fn every_run_measures_how_long_the_oldest_undelivered_event_has_waited() {
    use market_data::domain::Symbol;
    use market_data::providers::{QuoteProvider, Simulated};
    use market_data::store::PriceStore;

    let lines = harness::EmfLines::default();
    let app = TestApp::builder()
        .postgres()
        .kafka()
        .metrics(lines.metrics())
        .build()
        .await;
    let store = app.services.postgres().expect("the PostgreSQL store");
    let mut fetched = Simulated::new()
        .quote(&Symbol::parse("AAPL").unwrap())
        .await
        .unwrap();
    fetched.quote.fetched_at = chrono::Utc::now() - chrono::Duration::seconds(90);
    // Not yet due for re-publishing: it waits, as an event whose broker is down does.
    let due_later = chrono::Utc::now() + chrono::Duration::seconds(3_600);
    let id = uuid::Uuid::now_v7();
    store.insert_raw(id, &fetched, due_later).await.unwrap();

    let report = app.services.republisher.run(10).await.unwrap();
    assert_eq!(report.claimed, 0);
    let ages = lines.named("UndeliveredEventAgeSeconds");
    assert_eq!(ages.len(), 1);
    let age = ages[0]["UndeliveredEventAgeSeconds"].as_f64().unwrap();
    assert!((90.0..120.0).contains(&age), "waited about 90 s: {age}");
    assert_eq!(
        ages[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Seconds"
    );

    store.release(&[id], Duration::ZERO).await.unwrap();
    let report = app.services.republisher.run(10).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let ages = lines.named("UndeliveredEventAgeSeconds");
    assert_eq!(ages[1]["UndeliveredEventAgeSeconds"], 0.0, "none waits");
}
