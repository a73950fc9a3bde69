//! The local stand-in for the MSK event source mapping, on the real broker and PostgreSQL:
//! events produced to the topic end up as points and averages; a database cut off mid-run
//! makes the batch fail and be handed over again, with nothing lost or doubled.

use std::time::Duration;

use harness::event_source::RunningSource;
use harness::postgres::{TestDb, server_address};
use harness::price_events::{assert_averages_match_recomputation, event, stored_points};
use harness::proxy::Proxy;
use harness::{TestApp, kafka, unique_name};
use market_data::domain::{AverageSpec, PriceEvent};
use market_data::events::{EventBus, KafkaBus};
use market_data_local::event_source::BatchSettings;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;

const WINDOWS: &str = "sma:5,ema:4";

fn settings(group: &str) -> BatchSettings {
    BatchSettings {
        max_records: 50,
        max_wait: Duration::from_millis(200),
        group_id: group.to_owned(),
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
    }
}

fn events(symbols: &[&str], per_symbol: i64, from: i64) -> Vec<PriceEvent> {
    symbols
        .iter()
        .flat_map(|s| {
            (from..from + per_symbol)
                .map(move |i| event(s, i * 15, Decimal::new(10_000 + (i * 37) % 500, 2)))
        })
        .collect()
}

/// Publishes through the producer the functions use.
async fn publish(app: &TestApp, events: &[PriceEvent]) {
    let bus = KafkaBus::new(app.config.kafka.as_ref().unwrap()).unwrap();
    for e in events {
        bus.publish(e).await.expect("the broker takes the event");
    }
}

/// Waits until `count` points are stored.
async fn await_points(db: &tokio_postgres::Client, count: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let stored: i64 = db
            .query_one("SELECT count(*) FROM price_points", &[])
            .await
            .unwrap()
            .get(0);
        if usize::try_from(stored).unwrap() >= count {
            assert_eq!(usize::try_from(stored).unwrap(), count, "no point twice");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {stored} of {count} points stored within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group's committed offsets, summed over the topic's partitions.
fn committed(topic: &str, group: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka::bootstrap())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(5))
        .unwrap()
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn events_on_the_broker_become_points_and_averages_and_offsets_are_committed() {
    let app = TestApp::builder()
        .postgres()
        .kafka()
        .env("MA_WINDOWS", WINDOWS)
        .build()
        .await;
    let topic = app.topic.clone().unwrap();
    let group = unique_name("mdb_t_group");
    let source = RunningSource::start(&app, settings(&group));

    let sent = events(&["AAPL", "MSFT", "NVDA"], 20, 0);
    publish(&app, &sent).await;
    let db = app.db.as_ref().unwrap().client().await;
    await_points(&db, sent.len(), Duration::from_secs(30)).await;
    assert_averages_match_recomputation(&db, &AverageSpec::parse_list(WINDOWS).unwrap()).await;

    // Offsets are committed once the batches are stored: the group resumes after them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while committed(&topic, &group, 3) < i64::try_from(sent.len()).unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offsets not committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    source.stop().await;
}

#[tokio::test]
async fn a_database_cut_off_mid_run_delays_batches_but_loses_and_doubles_nothing() {
    // The consumer reaches its database through a proxy this test can cut.
    let db = TestDb::create().await;
    let proxy = Proxy::start(&server_address()).await;
    let through_proxy = db.url_via(proxy.addr());
    let app = TestApp::builder()
        .kafka()
        .env("DATABASE_URL", &through_proxy)
        .env("DATABASE_MIGRATE_ON_START", "true")
        .env("MA_WINDOWS", WINDOWS)
        .build()
        .await;
    let source = RunningSource::start(&app, settings(&unique_name("mdb_t_group")));
    let direct = db.client().await;

    let first = events(&["AAPL", "MSFT"], 10, 0);
    publish(&app, &first).await;
    await_points(&direct, first.len(), Duration::from_secs(30)).await;

    proxy.cut();
    let second = events(&["AAPL", "MSFT"], 10, 10);
    publish(&app, &second).await;
    // Batches fail while the database is away (and are handed over again, and again).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored: i64 = direct
        .query_one("SELECT count(*) FROM price_points", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(usize::try_from(stored).unwrap(), first.len());

    proxy.restore();
    await_points(&direct, first.len() + second.len(), Duration::from_secs(30)).await;
    let points = stored_points(&direct).await;
    assert_eq!(points["AAPL"].len(), 20);
    assert_averages_match_recomputation(&direct, &AverageSpec::parse_list(WINDOWS).unwrap()).await;
    source.stop().await;
}
