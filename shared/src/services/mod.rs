//! What each function builds from its configuration, and nothing more.
//!
//! - [`ApiServices`] for `price-api`: latest prices, history, job administration;
//! - [`PollerServices`] for `poller`: the one-minute wake-up (claims, re-publishing) and
//!   tick running;
//! - [`PriceConsumer`] for `ma-consumer`: points and averages only (no Kafka producer, no
//!   Redis);
//! - [`Services`] for the local runner and the tests: all of them in one process, sharing
//!   one pool, one producer and one Redis connection.
//!
//! The adapters themselves are picked and built by `wiring.rs`.

mod wiring;

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::events::{InProcessBus, PublishError};
use crate::ratelimit::{RateLimiting, RedisRateLimiter};
use crate::readiness::{PortAdapter, Readiness};
use crate::redis_connection::{RedisConnection, RedisFailure};
use crate::scheduler::MemoryTickQueue;
use crate::store::{PostgresStore, StoreError};
use crate::telemetry::Metrics;
use crate::usecases::{
    JobAdmin, PriceConsumer, PriceHistory, QuoteService, Republisher, TickRunner, WakeUp,
};

use wiring::Wiring;

/// Why the shared state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The PostgreSQL store could not be set up or migrated.
    #[error("PostgreSQL (DATABASE_URL): {0}")]
    Store(#[from] StoreError),
    /// The Redis connection could not be set up.
    #[error("Redis (REDIS_URL): {0}")]
    Redis(#[from] RedisFailure),
    /// The Kafka producer could not be set up.
    #[error("Kafka (KAFKA_BOOTSTRAP_SERVERS): {0}")]
    Bus(#[from] PublishError),
    /// The HTTP client for a provider could not be built.
    #[error("provider HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// An adapter could not be set up.
    #[error("could not set up the adapters: {0}")]
    Wiring(#[from] WiringError),
}

/// What `price-api` uses.
#[derive(Clone)]
pub struct ApiServices {
    /// The latest-price use case.
    pub quotes: QuoteService,
    /// The reader of what the consumer stored.
    pub history: PriceHistory,
    /// Polling jobs: the `/prices/poll` routes.
    pub jobs: JobAdmin,
    /// Where measurements go.
    pub metrics: Metrics,
    /// The dependencies `/ready` checks.
    pub readiness: Readiness,
    /// The process's Redis connection, for the HTTP edge's rate limiter.
    pub redis: Option<RedisConnection>,
}

/// What `poller` uses.
#[derive(Clone)]
pub struct PollerServices {
    /// Runs one shared tick from the queue.
    pub ticks: TickRunner,
    /// The one-minute wake-up: claims due ticks, re-publishes undelivered events.
    pub wake_up: WakeUp,
    /// The dependencies of the poller.
    pub readiness: Readiness,
}

impl ApiServices {
    /// The API's adapters, from `config`, measurements to where `METRICS` says.
    pub async fn from_config(config: &Config) -> Result<Self, WiringError> {
        let mut wiring = Wiring::new(config, config.metrics.build());
        let (api, _) = api(&mut wiring).await?;
        log_ports(&wiring.ports());
        Ok(api)
    }
}

impl PollerServices {
    /// The poller's adapters: the job store, the tick queue, the fetch path.
    pub async fn from_config(config: &Config) -> Result<Self, WiringError> {
        let mut wiring = Wiring::new(config, config.metrics.build());
        let poller = Self {
            ticks: ticks(&mut wiring).await?,
            wake_up: wake_up(&mut wiring).await?,
            readiness: Readiness::new(wiring.checks.clone()),
        };
        log_ports(&wiring.ports());
        Ok(poller)
    }
}

/// The consumer's adapters: the point store alone.
pub async fn consumer_from_config(config: &Config) -> Result<PriceConsumer, WiringError> {
    let mut wiring = Wiring::new(config, config.metrics.build());
    let consumer = wiring.consumer().await?;
    log_ports(&wiring.ports());
    Ok(consumer)
}

/// Everything, in one process: the local runner and the tests.
#[derive(Clone)]
pub struct Services {
    /// What the API serves.
    pub api: ApiServices,
    /// Runs shared ticks (the poller's part).
    pub ticks: TickRunner,
    /// The one-minute wake-up (the poller's other part).
    pub wake_up: WakeUp,
    /// The re-publisher of undelivered events.
    pub republisher: Republisher,
    /// The consumer of price events (points, moving averages, dead letters).
    pub consumer: PriceConsumer,
    postgres: Option<PostgresStore>,
    in_process_bus: Option<InProcessBus>,
    memory_queue: Option<Arc<MemoryTickQueue>>,
    // Shared, not copied: the state is cloned for every request.
    ports: Arc<[PortAdapter]>,
}

impl Services {
    /// Picks and builds every adapter from `config`; applies migrations first when
    /// `DATABASE_MIGRATE_ON_START` asks for it (a failure there is logged, not fatal).
    pub async fn from_config(config: &Config) -> Result<Self, WiringError> {
        Self::with_metrics(config, config.metrics.build()).await
    }

    /// As [`from_config`](Self::from_config), recording measurements to `metrics` instead of
    /// where `METRICS` says: for embedding, and for tests that read what is recorded.
    pub async fn with_metrics(config: &Config, metrics: Metrics) -> Result<Self, WiringError> {
        let mut wiring = Wiring::new(config, metrics);
        let api = api(&mut wiring).await?;
        let ticks = ticks(&mut wiring).await?;
        let wake_up = wake_up(&mut wiring).await?;
        let (_, postgres) = wiring.store().await?;
        Ok(Self {
            ticks,
            wake_up,
            republisher: wiring.republisher().await?,
            consumer: wiring.consumer().await?,
            postgres,
            in_process_bus: wiring.bus()?.in_process,
            memory_queue: api.1,
            api: api.0,
            ports: wiring.ports().into(),
        })
    }

    /// Which adapter serves each port.
    pub fn ports(&self) -> &[PortAdapter] {
        &self.ports
    }

    /// The PostgreSQL store, when one is configured (for `migrate` and later adapters).
    pub fn postgres(&self) -> Option<&PostgresStore> {
        self.postgres.as_ref()
    }

    /// The in-process bus, when Kafka is not configured, so the local runner can consume it.
    pub fn in_process_bus(&self) -> Option<&InProcessBus> {
        self.in_process_bus.as_ref()
    }

    /// The embedded tick queue, when SQS is not configured, so the local runner (and the
    /// tests) can deliver its ticks to the poller.
    pub fn memory_queue(&self) -> Option<&Arc<MemoryTickQueue>> {
        self.memory_queue.as_ref()
    }
}

/// The API's use cases, and the embedded tick queue when there is one.
async fn api(
    wiring: &mut Wiring<'_>,
) -> Result<(ApiServices, Option<Arc<MemoryTickQueue>>), WiringError> {
    let quotes = wiring.quotes().await?;
    let history = wiring.history().await?;
    let jobs = wiring.jobs().await;
    let (queue, memory) = wiring.queue().await;
    let api = ApiServices {
        jobs: JobAdmin::new(
            jobs,
            queue,
            quotes.providers().default_id(),
            wiring.config_polling(),
            wiring.metrics(),
        ),
        quotes,
        history,
        metrics: wiring.metrics(),
        readiness: Readiness::new(wiring.checks.clone()),
        redis: wiring.redis()?,
    };
    Ok((api, memory))
}

async fn ticks(wiring: &mut Wiring<'_>) -> Result<TickRunner, WiringError> {
    let quotes = wiring.quotes().await?;
    let jobs = wiring.jobs().await;
    // Provider calls are paced across pollers through Redis when there is one.
    let limiter = Arc::new(RateLimiting::new(
        wiring.redis()?.map(RedisRateLimiter::new),
    ));
    Ok(TickRunner::new(
        jobs,
        quotes,
        limiter,
        wiring.config_polling(),
        wiring.metrics(),
    ))
}

async fn wake_up(wiring: &mut Wiring<'_>) -> Result<WakeUp, WiringError> {
    let jobs = wiring.jobs().await;
    let (queue, _) = wiring.queue().await;
    Ok(WakeUp::new(
        jobs,
        queue,
        wiring.republisher().await?,
        wiring.config_polling(),
        wiring.metrics(),
    ))
}

fn log_ports(ports: &[PortAdapter]) {
    for p in ports {
        tracing::info!(port = p.port, adapter = %p.adapter, "adapter");
    }
}
