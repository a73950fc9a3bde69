//! How long the poller takes to fetch 500 symbols from a provider answering in 50 ms.
//!
//! ```sh
//! local/stack.sh up
//! cargo bench -p market-data-local --bench poller_tick
//! ```
//!
//! A stand-in for Finnhub's `GET /api/v1/quote?symbol=` runs in this process and answers a
//! realistic quote after sleeping 50 ms. The service is wired as the poller Lambda is, on the
//! local stack: raw responses in a PostgreSQL database of its own
//! (`MDB_BENCH_DATABASE_URL`), events to a topic of its own on the broker
//! (`MDB_BENCH_KAFKA_BOOTSTRAP`), the cache and the provider's call budget in Redis
//! (`MDB_BENCH_REDIS_URL`) under a key prefix of its own; jobs in the in-memory job store.
//! `POLL_FINNHUB_CALLS_PER_MINUTE` is set to its maximum, 100,000, so the budget does not
//! hold the calls back (the real free tier, 60 a minute, would make 500 symbols take over
//! eight minutes).
//!
//! For `POLL_CONCURRENCY` 8 (the default) and 64 (the maximum), it times, three times each:
//! - one tick of a single job of 500 symbols through `TickRunner::run`. A job may hold at
//!   most 50 symbols when created through the API, so this job is written into the job store
//!   directly, past that validation;
//! - ten ticks of one job of 50 symbols each, run at once, as ten queue messages delivered
//!   together would be.
//!
//! Each symbol of a tick is a provider call, a raw row, an event delivered with `acks=all`,
//! the delivered mark and two cache writes. The topic and the database are deleted at the
//! end; the Redis keys expire with their TTLs.

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use chrono::Utc;
use market_data::Services;
use market_data::domain::{Job, JobStatus};
use market_data::domain::{ProviderId, Symbol};
use market_data::usecases::polling::{Lanes, group_ticks};
use serde_json::json;

mod scratch;
use scratch::Scratch;
use uuid::Uuid;

/// The provider stand-in's answer time.
const PROVIDER_LATENCY: Duration = Duration::from_millis(50);
const SYMBOLS: usize = 500;
const REPEATS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let redis =
        std::env::var("MDB_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let scratch = Scratch::create().await?;
    let provider = start_provider().await?;
    let env = Env {
        database: scratch.database_url.clone(),
        bootstrap: scratch.bootstrap.clone(),
        redis,
        topic: scratch.name.clone(),
        provider,
    };
    let result = run(&env).await;
    scratch.remove().await?;
    result
}

/// Where the service's dependencies are.
struct Env {
    database: String,
    bootstrap: String,
    redis: String,
    topic: String,
    provider: String,
}

async fn run(env: &Env) -> anyhow::Result<()> {
    let symbols: Vec<Symbol> = (0..SYMBOLS)
        .map(|i| Symbol::parse(&format!("SYM{i:03}")))
        .collect::<Result<_, _>>()?;

    println!(
        "POLL_CONCURRENCY | shape | runs (s) | median (s) | floor: 500 x 50 ms / in flight (s)"
    );
    println!("---:|---|---|---:|---:");
    for concurrency in [8usize, 64] {
        let services = services(env, concurrency).await?;
        // One small warm-up run: connections opened, statements prepared.
        let warm = store_job(&services, &symbols[..concurrency]).await?;
        run_ticks(&services, &[warm]).await;

        let mut single = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let job = store_job(&services, &symbols).await?;
            let started = Instant::now();
            let fetched = run_ticks(&services, &[job]).await;
            single.push(started.elapsed());
            anyhow::ensure!(fetched == SYMBOLS, "{fetched} of {SYMBOLS} symbols fetched");
        }
        print_row(concurrency, "1 job of 500", &mut single, concurrency);

        let mut split = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let mut jobs = Vec::with_capacity(10);
            for chunk in symbols.chunks(SYMBOLS / 10) {
                jobs.push(store_job(&services, chunk).await?);
            }
            let started = Instant::now();
            let fetched = run_ticks(&services, &jobs).await;
            split.push(started.elapsed());
            anyhow::ensure!(fetched == SYMBOLS, "{fetched} of {SYMBOLS} symbols fetched");
        }
        print_row(concurrency, "10 jobs of 50", &mut split, concurrency * 10);
    }
    Ok(())
}

fn print_row(concurrency: usize, shape: &str, times: &mut [Duration], in_flight: usize) {
    let runs: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    times.sort_unstable();
    let floor = SYMBOLS.div_ceil(in_flight) as f64 * PROVIDER_LATENCY.as_secs_f64();
    println!(
        "{concurrency} | {shape} | {} | {:.2} | {floor:.2}",
        runs.join(", "),
        times[times.len() / 2].as_secs_f64()
    );
}

/// The services as the poller wires them, with `POLL_CONCURRENCY` = `concurrency`.
async fn services(env: &Env, concurrency: usize) -> anyhow::Result<Services> {
    let prefix = format!("mdb-bench-{}:", Uuid::now_v7().simple());
    let concurrency = concurrency.to_string();
    let vars = [
        ("DATABASE_URL", env.database.as_str()),
        ("DATABASE_MIGRATE_ON_START", "true"),
        ("KAFKA_BOOTSTRAP_SERVERS", env.bootstrap.as_str()),
        ("KAFKA_TOPIC", env.topic.as_str()),
        ("REDIS_URL", env.redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("FINNHUB_BASE_URL", env.provider.as_str()),
        ("FINNHUB_API_KEY", "bench"),
        ("POLL_CONCURRENCY", concurrency.as_str()),
        ("POLL_FINNHUB_CALLS_PER_MINUTE", "100000"),
    ];
    Ok(Services::from_config(&scratch::config(&vars).await?).await?)
}

/// Runs one tick of each of `jobs`, all at once; the symbols fetched.
async fn run_ticks(services: &Services, jobs: &[Job]) -> usize {
    let now = Utc::now();
    let ticks: Vec<_> = jobs
        .iter()
        .flat_map(|j| group_ticks(&[(j.clone(), vec![now])], &Lanes::new([j]), now))
        .collect();
    let reports =
        futures::future::join_all(ticks.iter().map(|t| services.ticks.run(&t.tick, None))).await;
    reports.iter().map(|r| r.fetched).sum()
}

/// Writes an active job for `symbols`, due now, into the job store.
async fn store_job(services: &Services, symbols: &[Symbol]) -> anyhow::Result<Job> {
    let job = Job::new(
        symbols.to_vec(),
        3_600,
        ProviderId::Finnhub,
        JobStatus::Active,
        Utc::now(),
    );
    services.api.jobs.jobs().create(&job, None).await?;
    Ok(job)
}

/// Starts the Finnhub stand-in on a free port; returns its `FINNHUB_BASE_URL`.
async fn start_provider() -> anyhow::Result<String> {
    let app = Router::new().route("/api/v1/quote", get(quote));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr().context("local address")?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("provider stand-in stopped: {e}");
        }
    });
    Ok(format!("http://{addr}/api/v1"))
}

/// Finnhub's quote shape, after [`PROVIDER_LATENCY`]; prices differ by symbol.
async fn quote(
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> axum::Json<serde_json::Value> {
    tokio::time::sleep(PROVIDER_LATENCY).await;
    let symbol = query.get("symbol").map(String::as_str).unwrap_or_default();
    let cents = symbol.bytes().map(u64::from).sum::<u64>() * 97 % 40_000 + 1_000;
    let dollars = |c: u64| c as f64 / 100.0;
    axum::Json(json!({
        "c": dollars(cents),
        "d": 1.25,
        "dp": 0.6,
        "h": dollars(cents + 200),
        "l": dollars(cents - 200),
        "o": dollars(cents - 100),
        "pc": dollars(cents - 125),
        "t": Utc::now().timestamp(),
    }))
}
