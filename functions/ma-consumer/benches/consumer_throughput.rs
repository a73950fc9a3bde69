//! Events per second through the `ma-consumer` handler into PostgreSQL.
//!
//! ```sh
//! cargo bench -p ma-consumer --bench consumer_throughput
//! ```
//!
//! Uses the server at `MDB_BENCH_DATABASE_URL` (default: the local stack's
//! `postgres://postgres@127.0.0.1:5432/postgres`), in a database of its own that it drops
//! at the end. For batches of 100, 1,000 and 10,000 events over 50 symbols, each batch of
//! new events in quote-time order (as a partition delivers them), it times the handler
//! alone: decoding the MSK event, storing the points and upserting the default averages
//! (SMA-5 and EMA-12), one transaction per batch. Building the events is not timed.

use std::time::{Duration, Instant};

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use market_data::domain::{PriceEvent, Symbol};
use market_data::{Config, Services};
use rust_decimal::Decimal;
use tokio_postgres::NoTls;
use uuid::Uuid;

const SYMBOLS: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("MDB_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("mdb_bench_{}", Uuid::now_v7().simple());
    let (client, connection) = tokio_postgres::connect(&admin, NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => anyhow::bail!("MDB_BENCH_DATABASE_URL needs a database name"),
    };

    let result = run(&url).await;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}

async fn run(url: &str) -> anyhow::Result<()> {
    let vars = [("DATABASE_URL", url), ("DATABASE_MIGRATE_ON_START", "true")];
    let config = Config::load(
        |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        },
        None,
    )
    .await?;
    let services = Services::from_config(&config).await?;
    let symbols: Vec<Symbol> = (0..SYMBOLS)
        .map(|i| Symbol::parse(&format!("SYM{i:02}")))
        .collect::<Result<_, _>>()?;
    let mut clock = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
    let mut offset = 0i64;

    println!("batch size | batches | events/s (median) | events/s (mean) | ms/batch (median)");
    println!("---:|---:|---:|---:|---:");
    for (size, batches) in [(100, 50), (1_000, 20), (10_000, 10)] {
        // One warm-up batch: statements prepared, pool filled.
        let warm = batch(&symbols, size, &mut clock, &mut offset);
        ma_consumer::handle(&services.consumer, &warm).await?;

        let mut times = Vec::with_capacity(batches);
        for _ in 0..batches {
            let event = batch(&symbols, size, &mut clock, &mut offset);
            let started = Instant::now();
            let report = ma_consumer::handle(&services.consumer, &event).await?;
            times.push(started.elapsed());
            anyhow::ensure!(report.points_added == size, "every event stored");
        }
        times.sort_unstable();
        let median = times[times.len() / 2];
        let total: Duration = times.iter().sum();
        let rate = |d: Duration| size as f64 / d.as_secs_f64();
        println!(
            "{size} | {batches} | {:.0} | {:.0} | {:.1}",
            rate(median),
            (size * batches) as f64 / total.as_secs_f64(),
            median.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// `size` new events spread over the symbols, quote times moving forward.
fn batch(
    symbols: &[Symbol],
    size: usize,
    clock: &mut DateTime<Utc>,
    offset: &mut i64,
) -> KafkaEvent {
    let mut records = Vec::with_capacity(size);
    for i in 0..size {
        let symbol = &symbols[i % symbols.len()];
        if i % symbols.len() == 0 {
            *clock += chrono::Duration::seconds(1);
        }
        let event = PriceEvent {
            symbol: symbol.clone(),
            price: Decimal::new(10_000 + i64::try_from(i % 977).unwrap_or(0), 2),
            timestamp: *clock,
            source: "simulated".into(),
            raw_response_id: Uuid::now_v7(),
        };
        let mut record = KafkaRecord::default();
        record.topic = Some("price-events".into());
        record.offset = *offset;
        record.key = Some(STANDARD.encode(symbol.as_str()));
        record.value = event.to_json().ok().map(|v| STANDARD.encode(v));
        *offset += 1;
        records.push(record);
    }
    let mut event = KafkaEvent::default();
    event.records.insert("price-events-0".into(), records);
    event
}
