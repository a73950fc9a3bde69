//! Price events per second from the broker into PostgreSQL, through the local event-source
//! emulation and the real `ma-consumer` handler.
//!
//! ```sh
//! local/stack.sh up
//! cargo bench -p market-data-local --bench consumer_through_broker
//! ```
//!
//! For each batch size (the emulated mapping's `max_records`: 1,000 and 10,000), on the
//! local stack's broker (`MDB_BENCH_KAFKA_BOOTSTRAP`, default `127.0.0.1:9092`) and
//! PostgreSQL (`MDB_BENCH_DATABASE_URL`, default the stack's `postgres` database), it
//! creates a topic and a database of its own, produces 100,000 price events over 50
//! symbols with the service's own Kafka publisher (idempotent, `acks=all`), and only then
//! starts [`run_kafka`] on the topic, calling the handler into the fresh database. It
//! reports the produce rate, and for consuming: the time from the event source's start to
//! the last event stored (this includes joining the consumer group), and the rate from the
//! first stored batch to the last event stored, found by polling
//! `SELECT count(*) FROM price_points` every 10 ms. The topic and the database are deleted
//! at the end.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use market_data::Services;
use market_data::domain::{PriceEvent, Symbol};
use market_data::events::KafkaConfig;
use market_data::events::{EventBus, KafkaBus};
use market_data_local::event_source::{BatchSettings, run_kafka};
use rust_decimal::Decimal;
use tokio_postgres::NoTls;
use uuid::Uuid;

mod scratch;
use scratch::Scratch;

const EVENTS: usize = 100_000;
const SYMBOLS: usize = 50;
/// Publishes in flight at once while producing.
const IN_FLIGHT: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "max_records | produce events/s | start to last stored (s) | first stored to last (s) | consume events/s"
    );
    println!("---:|---:|---:|---:|---:");
    for max_records in [1_000, 10_000] {
        let scratch = Scratch::create().await?;
        let result = run(
            &scratch.database_url,
            &scratch.bootstrap,
            &scratch.name,
            max_records,
        )
        .await;
        scratch.remove().await?;
        let figures = result?;
        println!(
            "{max_records} | {:.0} | {:.2} | {:.2} | {:.0}",
            figures.produce_rate,
            figures.start_to_last.as_secs_f64(),
            figures.first_to_last.as_secs_f64(),
            figures.consume_rate
        );
    }
    Ok(())
}

/// What one run measured.
struct Figures {
    produce_rate: f64,
    start_to_last: Duration,
    first_to_last: Duration,
    consume_rate: f64,
}

async fn run(
    url: &str,
    bootstrap: &str,
    topic: &str,
    max_records: usize,
) -> anyhow::Result<Figures> {
    let vars = [
        ("DATABASE_URL", url),
        ("DATABASE_MIGRATE_ON_START", "true"),
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap),
        ("KAFKA_TOPIC", topic),
    ];
    let config = scratch::config(&vars).await?;
    let kafka = config.kafka.clone().context("Kafka is configured")?;
    let services = Services::from_config(&config).await?;

    let produce_rate = produce(&kafka).await?;

    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    let settings = BatchSettings {
        max_records,
        group_id: format!("{topic}_group"),
        ..BatchSettings::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let source = tokio::spawn({
        let consumer = services.consumer.clone();
        async move {
            run_kafka(&kafka, &settings, consumer, async {
                let _ = stopped.await;
            })
            .await
        }
    });

    let mut first: Option<(Instant, i64)> = None;
    let last = loop {
        let count: i64 = client
            .query_one("SELECT count(*) FROM price_points", &[])
            .await?
            .get(0);
        let now = Instant::now();
        if count > 0 && first.is_none() {
            first = Some((now, count));
        }
        if count >= EVENTS as i64 {
            break now;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {count} of {EVENTS} events stored after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = stop.send(());
    source.await??;

    let (first_at, first_count) = first.context("something was stored")?;
    let first_to_last = last - first_at;
    Ok(Figures {
        produce_rate,
        start_to_last: last - started,
        first_to_last,
        consume_rate: (EVENTS as i64 - first_count) as f64 / first_to_last.as_secs_f64(),
    })
}

/// Publishes the events, each symbol's in quote-time order; returns events per second.
async fn produce(kafka: &KafkaConfig) -> anyhow::Result<f64> {
    let bus = KafkaBus::new(kafka)?;
    // Fail early, and keep the metadata lookup out of the timing.
    bus.ping().await?;
    let symbols: Vec<Symbol> = (0..SYMBOLS)
        .map(|i| Symbol::parse(&format!("SYM{i:02}")))
        .collect::<Result<_, _>>()?;
    let start = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
    let events: Vec<PriceEvent> = (0..EVENTS).map(|i| event(&symbols, start, i)).collect();

    let started = Instant::now();
    let failures = futures::stream::iter(events.iter())
        .map(|e| bus.publish(e))
        .buffered(IN_FLIGHT)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    let elapsed = started.elapsed();
    anyhow::ensure!(failures == 0, "{failures} events not delivered");
    Ok(EVENTS as f64 / elapsed.as_secs_f64())
}

/// The `i`-th event: symbols in turn, a second apart per round.
fn event(symbols: &[Symbol], start: DateTime<Utc>, i: usize) -> PriceEvent {
    let round = i64::try_from(i / symbols.len()).unwrap_or(0);
    PriceEvent {
        symbol: symbols[i % symbols.len()].clone(),
        price: Decimal::new(10_000 + i64::try_from(i % 977).unwrap_or(0), 2),
        timestamp: start + chrono::Duration::seconds(round),
        source: "simulated".into(),
        raw_response_id: Uuid::now_v7(),
    }
}
