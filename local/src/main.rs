//! The one-process local runner.
//!
//! `serve` runs the same router as the `price-api` Lambda function on a local address, and
//! the `ma-consumer` handler behind a local stand-in for its MSK event source (or fed by the
//! in-process bus). It also plays the poller's event sources: the one-minute wake-up rule,
//! and the tick queue (in process, or a real SQS queue with `POLL_QUEUE_URL`). Each port uses the adapter
//! its configuration names; with nothing configured, the embedded defaults (simulated
//! provider, in-memory store, in-process cache and bus), so it serves on a fresh machine.
//! `migrate` applies the SQL migrations; `republish` sends the events whose delivery was
//! never confirmed; `create-jobs-table` creates the DynamoDB table of polling jobs
//! (`JOBS_TABLE`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use market_data::config::ProcessEnv;
use market_data::jobs::DynamoJobStore;
use market_data::scheduler::SqsTickQueue;
use market_data::{Config, Services, telemetry};
use market_data_local::event_source::{self, BatchSettings};
use market_data_local::poller_clock;
use price_api::AppState;
use price_api::edge::EdgeConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

#[derive(Parser)]
#[command(
    name = "market-data-local",
    version,
    about = "Run the market-data backend in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and consume price events (the default).
    Serve(ServeArgs),
    /// Apply the SQL migrations to DATABASE_URL.
    Migrate,
    /// Publish the events whose delivery was never confirmed.
    Republish {
        /// Rows taken per batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Create the DynamoDB table of polling jobs named by JOBS_TABLE (if missing).
    CreateJobsTable,
}

/// Where to serve, and how to consume.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LOCAL_ADDR", default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    #[command(flatten)]
    consumer: ConsumerArgs,
}

/// `serve` with no arguments: its defaults and environment variables.
#[derive(Parser)]
struct DefaultServe {
    #[command(flatten)]
    serve: ServeArgs,
}

/// How the local stand-in for the MSK event source mapping batches.
#[derive(clap::Args)]
struct ConsumerArgs {
    /// Do not consume price events in this process.
    #[arg(long, env = "LOCAL_CONSUMER_OFF")]
    no_consumer: bool,
    /// Most records per batch.
    #[arg(long, env = "LOCAL_CONSUMER_BATCH_SIZE", default_value_t = 1_000)]
    batch_size: usize,
    /// Longest a batch waits for more records, in milliseconds.
    #[arg(long, env = "LOCAL_CONSUMER_BATCH_WAIT_MS", default_value_t = 500)]
    batch_wait_ms: u64,
    /// The consumer group.
    #[arg(
        long,
        env = "LOCAL_CONSUMER_GROUP",
        default_value = "market-data-ma-consumer"
    )]
    group: String,
}

impl ConsumerArgs {
    fn settings(&self) -> BatchSettings {
        BatchSettings {
            max_records: self.batch_size.max(1),
            max_wait: Duration::from_millis(self.batch_wait_ms),
            group_id: self.group.clone(),
            ..BatchSettings::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    let process = ProcessEnv::read().await;
    let config = Config::read(&process.env())
        .await
        .context("invalid configuration")?;
    let edge = EdgeConfig::from_env(&process.env())
        .await
        .context("invalid configuration")?;
    let services = Services::from_config(&config)
        .await
        .context("could not set up the adapters")?;

    let command = match cli.command {
        Some(command) => command,
        None => Command::Serve(
            DefaultServe::try_parse_from(["market-data-local"])
                .context("invalid LOCAL_* settings")?
                .serve,
        ),
    };
    match command {
        Command::Serve(args) => serve(&config, services, edge, args.addr, &args.consumer).await,
        Command::Migrate => {
            let Some(pg) = services.postgres() else {
                bail!("DATABASE_URL (or DATABASE_SECRET_ID) is not set: nothing to migrate");
            };
            let applied = pg.migrate().await.context("migration failed")?;
            if applied.is_empty() {
                println!("database is up to date");
            } else {
                println!("applied: {}", applied.join(", "));
            }
            Ok(())
        }
        Command::Republish { batch } => {
            let report = services
                .republisher
                .run(batch.max(1))
                .await
                .context("re-publishing failed")?;
            println!(
                "claimed {}, delivered {}, still undelivered {}",
                report.claimed, report.delivered, report.failed
            );
            Ok(())
        }
        Command::CreateJobsTable => {
            let Some(jobs) = &config.jobs else {
                bail!("JOBS_TABLE is not set: jobs are kept in memory, no table to create");
            };
            let table = &jobs.table;
            let sdk = market_data::aws_sdk::load().await;
            let store = DynamoJobStore::connect(&sdk, table, jobs.endpoint.as_deref());
            store
                .create_table()
                .await
                .context("could not create the jobs table")?;
            println!("jobs table {table} is ready");
            Ok(())
        }
    }
}

/// Completes on the first SIGTERM (what `kill`, systemd and container runtimes send) or
/// Ctrl-C; `stopping` then tells every part of the runner to stop.
async fn stop_signal(stopping: watch::Sender<bool>) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    info!("stopping");
    let _ = stopping.send(true);
}

/// Completes once the runner is told to stop.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can ask for a stop any more.
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Longest a stopping runner waits for its event source to leave cleanly (the batch in
/// hand is given up, not committed: the next start reads it again).
const CONSUMER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the consumer of price events the way the configuration allows; says which, and
/// hands back the task to await on the way out (the Kafka event source stops on `stopping`).
fn start_consumer(
    config: &Config,
    services: &Services,
    args: &ConsumerArgs,
    stopping: watch::Receiver<bool>,
) -> (String, Option<JoinHandle<()>>) {
    if args.no_consumer {
        return ("off (LOCAL_CONSUMER_OFF)".into(), None);
    }
    let settings = args.settings();
    let consumer = services.consumer.clone();
    if let Some(bus) = services.in_process_bus() {
        let events = bus.subscribe();
        tokio::spawn(
            async move { event_source::run_in_process(events, &settings, consumer).await },
        );
        return (
            "ma-consumer handler, fed by the in-process bus".into(),
            None,
        );
    }
    let Some(kafka) = config.kafka.clone() else {
        return ("off (no event bus)".into(), None);
    };
    let described = format!(
        "ma-consumer handler behind an emulated MSK event source (group {}, batches of up to {} \
         records or {} ms)",
        settings.group_id,
        settings.max_records,
        settings.max_wait.as_millis()
    );
    let task = tokio::spawn(async move {
        if let Err(e) =
            event_source::run_kafka(&kafka, &settings, consumer, stopped(stopping)).await
        {
            error!(error = %e, "the event source stopped");
        }
    });
    (described, Some(task))
}

/// Plays the poller's event sources: the one-minute wake-up rule, and the tick queue
/// (in process, or received from SQS when `POLL_QUEUE_URL` is set); says which.
async fn start_poller_clock(config: &Config, services: &Services) -> String {
    let (wake_up, ticks) = (services.wake_up.clone(), services.ticks.clone());
    tokio::spawn(poller_clock::run_wake_ups(
        wake_up.clone(),
        ticks.clone(),
        poller_clock::WAKE_UP_PERIOD,
    ));
    if let Some(queue) = services.memory_queue() {
        tokio::spawn(poller_clock::run_memory_queue(
            Arc::clone(queue),
            wake_up,
            ticks,
        ));
        return "wake-up every minute; ticks from the in-process queue".into();
    }
    match &config.queue {
        Some(sqs) => {
            let sdk = market_data::aws_sdk::load().await;
            let queue = SqsTickQueue::connect(&sdk, &sqs.queue_url, sqs.endpoint.as_deref());
            tokio::spawn(poller_clock::run_sqs_queue(queue, wake_up, ticks));
            format!(
                "wake-up every minute; ticks received from {}",
                sqs.queue_url
            )
        }
        None => "wake-up every minute".into(),
    }
}

async fn serve(
    config: &Config,
    services: Services,
    edge: EdgeConfig,
    addr: SocketAddr,
    consumer: &ConsumerArgs,
) -> anyhow::Result<()> {
    let state = AppState::new(services.api.clone(), edge);
    let (stopping, stop_seen) = watch::channel(false);
    println!("market-data local runner");
    for p in services.ports().iter().chain(&state.edge.describe()) {
        println!("  {:<20} {}", p.port, p.adapter);
    }
    // The failover chain as it stands: who the next request goes to, and what each has left.
    for (i, link) in services
        .api
        .quotes
        .providers()
        .chain_state()
        .await
        .iter()
        .enumerate()
    {
        let configured = if link.configured {
            String::new()
        } else {
            "not configured, skipped; ".into()
        };
        println!(
            "  {:<20} {} ({configured}{})",
            format!("chain #{}", i + 1),
            link.provider,
            link.state
        );
    }
    let (described, consumer_task) = start_consumer(config, &services, consumer, stop_seen.clone());
    println!("  {:<20} {}", "consumer", described);
    println!(
        "  {:<20} {}",
        "poller",
        start_poller_clock(config, &services).await
    );
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("listening on http://{addr}  (try /prices/latest?symbol=AAPL, docs at /docs)");
    info!(%addr, "serving");
    // With the peer address, so the rate limit can tell clients apart.
    let app = price_api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(stop_signal(stopping));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stopped(stop_seen))
        .await
        .context("server failed");
    if let Some(task) = consumer_task {
        // Leaves the consumer group's offsets as committed: a restart resumes from them.
        if tokio::time::timeout(CONSUMER_STOP_TIMEOUT, task)
            .await
            .is_err()
        {
            error!("the event source did not stop in time");
        }
    }
    served
}
