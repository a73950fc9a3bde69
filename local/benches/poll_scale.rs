//! Polling at scale: 10,000 active 10 s jobs in DynamoDB Local, ticks through an SQS queue on
//! moto.
//!
//! ```sh
//! local/stack.sh up
//! AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   cargo bench -p market-data-local --bench poll_scale
//! ```
//!
//! It measures, with the simulated provider and the embedded price store and bus (so the
//! figures are the scheduler's, not PostgreSQL's or Kafka's):
//! - one wake-up: reading the due jobs through the sharded index and claiming their coming
//!   minute with one conditional write each (`claim_ms`), then sending the shared ticks to SQS
//!   with their delays (total);
//! - the delay from a tick's due time to its fetch, receiving from the queue as an event source
//!   mapping does (four receivers; short polls every 100 ms, or moto's long polls with
//!   `POLL_SCALE_RECEIVE=long`), p50 and p99;
//! - billed time per job-minute: a steady-state wake-up (the next one, which also counts the
//!   first minute's tick outcomes into the jobs) plus every tick due in the minute, each
//!   message run as its own invocation, divided by the jobs;
//! - provider calls per minute for 100 jobs polling the same 5 symbols every 10 s.
//!
//! The table and the queue are its own, deleted at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use market_data::Services;
use market_data::domain::{Job, JobStatus, ProviderId, Symbol, next_grid_point};
use market_data::jobs::DynamoJobStore;
use market_data::scheduler::{SqsTickQueue, Tick};
use tokio::sync::Mutex;
use uuid::Uuid;

// Shared with the other benches; only its `config` is used here.
#[allow(dead_code)]
mod scratch;

const JOBS: usize = 10_000;
const DYNAMODB: &str = "http://127.0.0.1:8001";
const MOTO: &str = "http://127.0.0.1:5000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let table = format!("mdb-bench-jobs-{}", Uuid::now_v7().simple());
    let sdk = market_data::aws_sdk::load().await;
    let store = DynamoJobStore::connect(&sdk, &table, Some(DYNAMODB));
    store.create_table().await?;
    let sqs_conf = aws_sdk_sqs::config::Builder::from(&sdk)
        .endpoint_url(MOTO)
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(sqs_conf);
    let url = sqs
        .create_queue()
        .queue_name(format!("mdb-bench-ticks-{}", Uuid::now_v7().simple()))
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let result = run(&table, &url).await;
    sqs.delete_queue().queue_url(&url).send().await?;
    store.delete_table().await?;
    result
}

async fn services(table: &str) -> anyhow::Result<Services> {
    let vars = [
        ("JOBS_TABLE", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", DYNAMODB),
        ("DEFAULT_PROVIDER", "simulated"),
        ("METRICS", "off"),
        // As the stack runs it: each wake-up claims the minute after next.
        ("POLL_CLAIM_LEAD_SECONDS", "60"),
    ];
    Ok(Services::from_config(&scratch::config(&vars).await?).await?)
}

async fn store_jobs(
    services: &Services,
    count: usize,
    first_due_in: chrono::Duration,
    symbols: impl Fn(usize) -> Vec<Symbol>,
) -> anyhow::Result<()> {
    let store = Arc::clone(services.api.jobs.jobs());
    let now = Utc::now();
    let jobs: Vec<Job> = (0..count)
        .map(|i| {
            let mut j = Job::new(
                symbols(i),
                10,
                ProviderId::Simulated,
                JobStatus::Active,
                now,
            );
            j.next_run_at = next_grid_point(now + first_due_in, 10);
            j
        })
        .collect();
    let writes: Vec<_> = jobs.iter().map(|j| store.create(j, None)).collect();
    let results: Vec<_> = futures::stream::StreamExt::collect::<Vec<_>>(
        futures::stream::StreamExt::buffer_unordered(futures::stream::iter(writes), 64),
    )
    .await;
    for r in results {
        r?;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn run(table: &str, url: &str) -> anyhow::Result<()> {
    let services = services(table).await?;
    let sdk = market_data::aws_sdk::load().await;
    let queue = SqsTickQueue::connect(&sdk, url, Some(MOTO));
    let started = Instant::now();
    // Steady state: the previous wake-up claimed through the coming 65 s, so these jobs are
    // next due then, and this wake-up claims the minute after (its claim lead).
    store_jobs(&services, JOBS, chrono::Duration::seconds(65), |i| {
        vec![Symbol::parse(&format!("S{}", i % 500)).unwrap_or_else(|_| unreachable!())]
    })
    .await?;
    println!(
        "stored {JOBS} jobs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Wait for the grid point the jobs are due at, so the wake-up sees a steady-state minute.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let wake_up = services.wake_up.clone().with_queue(Arc::new(queue.clone()));
    let started_run = Instant::now();
    let report = wake_up.run(None).await?;
    let wake_ms = started_run.elapsed().as_secs_f64() * 1000.0;
    println!(
        "wake-up: {} due, {} claimed, {} job-ticks in {} messages; claim {} ms, total {:.0} ms",
        report.due_jobs,
        report.claimed_jobs,
        report.ticks,
        report.messages,
        report.claim_ms,
        wake_ms
    );

    // Receive as the event source mapping would; run each batch as one invocation. SQS
    // answers a long poll as soon as a message is visible; moto looks again only once a
    // second, which alone adds up to a second. `POLL_SCALE_RECEIVE=short` (the default)
    // polls every 100 ms instead, which is what the mapping sees on SQS itself; `long`
    // measures moto's long polling.
    let long = std::env::var("POLL_SCALE_RECEIVE").is_ok_and(|v| v == "long");
    let wait_secs = if long { 1 } else { 0 };
    println!(
        "receiving with {}",
        if long {
            "long polls of 1 s"
        } else {
            "short polls every 100 ms"
        }
    );
    let delays = Arc::new(Mutex::new(Vec::new()));
    let billed = Arc::new(Mutex::new(0.0f64));
    let seen = Arc::new(Mutex::new(0usize));
    let running = Arc::new(Mutex::new(Vec::new()));
    // The claimed minute ends about 125 s out.
    let deadline = Instant::now() + Duration::from_secs(200);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let (queue, ticks) = (queue.clone(), services.ticks.clone());
            let (delays, billed, seen, running) = (
                Arc::clone(&delays),
                Arc::clone(&billed),
                Arc::clone(&seen),
                Arc::clone(&running),
            );
            let messages = report.messages;
            tokio::spawn(async move {
                while Instant::now() < deadline && *seen.lock().await < messages {
                    let Ok(batch) = queue.receive(wait_secs).await else {
                        continue;
                    };
                    if batch.is_empty() && wait_secs == 0 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    // Each message its own invocation, as Lambda scales out on a queue.
                    let runs: Vec<_> = batch
                        .iter()
                        .filter_map(|m| serde_json::from_str::<Tick>(&m.body).ok())
                        .map(|tick| {
                            let (ticks, delays, billed, seen) = (
                                ticks.clone(),
                                Arc::clone(&delays),
                                Arc::clone(&billed),
                                Arc::clone(&seen),
                            );
                            tokio::spawn(async move {
                                let t = Instant::now();
                                let r = ticks.run(&tick, None).await;
                                let ms = t.elapsed().as_secs_f64() * 1000.0;
                                delays
                                    .lock()
                                    .await
                                    .push((r.started_at - tick.due_at).num_milliseconds() as f64);
                                // Every claimed tick is of the one minute claimed.
                                *billed.lock().await += ms;
                                *seen.lock().await += 1;
                            })
                        })
                        .collect();
                    let refs: Vec<_> = batch.iter().collect();
                    let _ = queue.delete(&refs).await;
                    // Not awaited here: Lambda runs each message in its own invocation while
                    // the mapping goes on receiving.
                    running.lock().await.extend(runs);
                }
            })
        })
        .collect();
    for r in receivers {
        r.await?;
    }
    let runs: Vec<_> = std::mem::take(&mut *running.lock().await);
    for r in runs {
        r.await?;
    }
    let mut d = delays.lock().await.clone();
    d.sort_by(f64::total_cmp);
    println!(
        "due-to-fetch delay over {} ticks: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        d.len(),
        percentile(&d, 0.5),
        percentile(&d, 0.99),
        d.last().copied().unwrap_or(f64::NAN)
    );
    let ticks_ms = *billed.lock().await;

    // The next steady-state wake-up: the first minute's ticks are final, so each claim also
    // counts their outcomes into its job (one batch read per hundred shared ticks).
    let wait = Duration::from_secs(200).saturating_sub(started_run.elapsed());
    tokio::time::sleep(wait).await;
    let t = Instant::now();
    let next = wake_up.run(None).await?;
    let next_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "next wake-up: {} due, {} claimed, {} outcomes counted, {} job-ticks in {} messages; claim {} ms, total {next_ms:.0} ms",
        next.due_jobs, next.claimed_jobs, next.counted, next.ticks, next.messages, next.claim_ms
    );
    println!(
        "billed per minute: wake-up {next_ms:.0} ms (the counting one) + ticks {ticks_ms:.0} ms = {:.0} ms for {JOBS} jobs: {:.2} ms per job-minute",
        next_ms + ticks_ms,
        (next_ms + ticks_ms) / JOBS as f64
    );

    // 100 jobs on the same five symbols, 10 s: provider calls in a minute of ticks.
    let small = services_small().await?;
    store_jobs(&small, 100, chrono::Duration::zero(), |_| {
        ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"]
            .iter()
            .map(|s| Symbol::parse(s).unwrap_or_else(|_| unreachable!()))
            .collect()
    })
    .await?;
    let r = small.wake_up.run(None).await?;
    let now = Utc::now();
    let minute: Vec<Tick> = small
        .memory_queue()
        .map(|q| q.drain())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.due_at < now + chrono::Duration::seconds(60))
        .collect();
    let mut calls = 0;
    for t in &minute {
        calls += small.ticks.run(t, None).await.calls;
    }
    println!(
        "100 jobs x 5 symbols at 10 s: {} job-ticks claimed, {} ticks due in the minute, {calls} provider calls ({} per symbol)",
        r.ticks,
        minute.len(),
        calls / 5
    );
    Ok(())
}

/// In-memory jobs and queue, for counting provider calls.
async fn services_small() -> anyhow::Result<Services> {
    let vars = [("DEFAULT_PROVIDER", "simulated"), ("METRICS", "off")];
    Ok(Services::from_config(&scratch::config(&vars).await?).await?)
}
