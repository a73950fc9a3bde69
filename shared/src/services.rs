//! The one way to build a process's shared state from its configuration.
//!
//! Which adapter serves each port is decided here, once, at start-up. Nothing connects
//! yet (pools, Redis and Kafka clients are lazy), so a cold start does not wait on, or
//! fail for, a dependency that is briefly away; readiness reports each one's state.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::api_keys::ApiKeys;
use crate::cache::{QuoteCache, RedisCache, TieredCache};
use crate::config::{Config, HttpConfig, MetricsMode};
use crate::domain::ProviderId;
use crate::events::{EventBus, InProcessBus, KafkaBus, PublishError};
use crate::jobs::{DynamoJobStore, JobStore, MemoryJobStore};
use crate::providers::Providers;
use crate::ratelimit::{Quota, RateLimiting, RedisRateLimiter};
use crate::redis_connection::{RedisConnection, RedisFailure};
use crate::scheduler::{EventBridgeScheduler, LocalScheduler, Scheduler};
use crate::store::{
    MemoryPointStore, MemoryStore, PointStore, PostgresStore, PriceStore, StoreError,
};
use crate::telemetry::{EmfMetrics, LogMetrics, Metrics};
use crate::usecases::polling::{PollSettings, PollingService};
use crate::usecases::{PriceConsumer, PriceHistory, QuoteService, Republisher};

/// Longest a readiness check waits for any one dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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
    Config(#[from] crate::config::ConfigError),
    /// An adapter could not be set up.
    #[error("could not set up the adapters: {0}")]
    Wiring(#[from] WiringError),
}

/// What the HTTP edge needs: who may call, how often, from where, for how long.
pub struct Edge {
    /// The accepted API keys; `None` when the API is open.
    pub api_keys: Option<ApiKeys>,
    /// The limit of clients without their own; `None` when rate limiting is off.
    pub default_quota: Option<Quota>,
    /// The limiter (Redis, falling back to in-process).
    pub limiter: RateLimiting,
    /// CORS and request timeout.
    pub http: HttpConfig,
}

/// Which adapter serves a port, for the start-up banner and readiness.
#[derive(Debug, Clone, Serialize)]
pub struct PortAdapter {
    /// The port (`store`, `cache`, `events`, `provider:finnhub`, ...).
    pub port: &'static str,
    /// The adapter serving it, with its non-secret settings.
    pub adapter: String,
}

/// The state of one dependency.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyState {
    /// The port it serves.
    pub port: &'static str,
    /// The adapter serving it.
    pub adapter: String,
    /// `up`, `down` or `not_configured`.
    pub status: &'static str,
    /// Why it is down, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DependencyState {
    /// Whether the dependency is usable.
    pub fn is_up(&self) -> bool {
        self.status == "up"
    }
}

/// Everything a function or the local runner needs, built once per process.
#[derive(Clone)]
pub struct Services {
    /// The latest-price use case.
    pub quotes: QuoteService,
    /// The re-publisher of undelivered events.
    pub republisher: Republisher,
    /// The consumer of price events (points, moving averages, dead letters).
    pub consumer: PriceConsumer,
    /// The reader of what the consumer stored.
    pub history: PriceHistory,
    /// Polling jobs: the API's `/prices/poll` routes and the poller.
    pub polling: PollingService,
    /// Where measurements go.
    pub metrics: Metrics,
    /// The HTTP edge's settings and limiter.
    pub edge: Arc<Edge>,
    store: Arc<dyn PriceStore>,
    bus: Arc<dyn EventBus>,
    shared_cache: Option<Arc<dyn QuoteCache>>,
    postgres: Option<PostgresStore>,
    in_process_bus: Option<InProcessBus>,
    local_scheduler: Option<Arc<LocalScheduler>>,
    // Shared, not copied: the state is cloned for every request.
    ports: Arc<[PortAdapter]>,
}

impl Services {
    /// What every Lambda function does once per container: reads the configuration from the
    /// environment, builds every adapter, and logs which one serves each port.
    pub async fn from_env() -> Result<Self, StartupError> {
        let services = Self::from_config(&Config::from_env().await?).await?;
        for p in services.ports() {
            tracing::info!(port = p.port, adapter = %p.adapter, "adapter");
        }
        Ok(services)
    }

    /// Picks and builds every adapter from `config`; applies migrations first when
    /// `DATABASE_MIGRATE_ON_START` asks for it (a failure there is logged, not fatal).
    pub async fn from_config(config: &Config) -> Result<Self, WiringError> {
        Self::with_metrics(config, metrics(config)).await
    }

    /// As [`from_config`](Self::from_config), recording measurements to `metrics` instead of
    /// where `METRICS` says: for embedding, and for tests that read what is recorded.
    pub async fn with_metrics(config: &Config, metrics: Metrics) -> Result<Self, WiringError> {
        let mut ports = Vec::new();
        let (store, postgres) = store(config, &mut ports).await?;
        let points: Arc<dyn PointStore> = match &postgres {
            Some(pg) => Arc::new(pg.clone()),
            None => Arc::new(MemoryPointStore::new()),
        };
        ports.push(port(
            "averages",
            config
                .averages
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ));
        let redis = config
            .redis
            .as_ref()
            .map(RedisConnection::open)
            .transpose()?;
        let shared_cache = shared_cache(config, redis.as_ref(), &mut ports);
        let WiredBus {
            bus,
            in_process,
            republish_grace,
        } = bus(config, &mut ports)?;
        let providers = providers(config, &mut ports)?;
        let poll_limiter = Arc::new(RateLimiting::new(redis.clone().map(RedisRateLimiter::new)));
        let edge = edge(config, redis, &mut ports);

        let quotes = QuoteService::new(
            providers,
            TieredCache::new(&config.cache, shared_cache.clone()),
            Arc::clone(&store),
            Arc::clone(&bus),
            republish_grace,
            metrics.clone(),
        );
        let republisher = Republisher::new(Arc::clone(&store), Arc::clone(&bus), metrics.clone());
        let (jobs, scheduler, local_scheduler) = polling_ports(config, &mut ports).await;
        let polling = PollingService::new(
            jobs,
            scheduler,
            quotes.clone(),
            republisher.clone(),
            poll_limiter,
            PollSettings {
                concurrency: config.polling.concurrency,
                finnhub_calls_per_minute: config.polling.finnhub_calls_per_minute,
                tick_window: config.polling.tick_window,
            },
            metrics.clone(),
        );
        Ok(Self {
            quotes,
            republisher,
            consumer: PriceConsumer::new(Arc::clone(&points), &config.averages, metrics.clone()),
            history: PriceHistory::new(points, &config.averages),
            polling,
            metrics,
            edge: Arc::new(edge),
            store,
            bus,
            shared_cache,
            postgres,
            in_process_bus: in_process,
            local_scheduler,
            ports: ports.into(),
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

    /// The embedded scheduler, when EventBridge is not configured, so the local runner can
    /// point its timers at the poller.
    pub fn local_scheduler(&self) -> Option<&Arc<LocalScheduler>> {
        self.local_scheduler.as_ref()
    }

    /// Checks every dependency at once, each bounded by a short timeout.
    pub async fn readiness(&self) -> Vec<DependencyState> {
        let adapter = |name: &str| {
            self.ports
                .iter()
                .find(|p| p.port == name)
                .map(|p| p.adapter.clone())
                .unwrap_or_default()
        };
        let store = async { check(self.store.ping()).await };
        let cache = async {
            match &self.shared_cache {
                Some(c) => check(c.ping()).await,
                None => Ok(()),
            }
        };
        let bus = async { check(self.bus.ping()).await };
        let jobs = async { check(self.polling.jobs().ping()).await };
        let (store, cache, bus, jobs) = tokio::join!(store, cache, bus, jobs);
        let mut states = vec![
            state("store", adapter("store"), store),
            state("cache", adapter("cache"), cache),
            state("events", adapter("events"), bus),
            state("jobs", adapter("jobs"), jobs),
        ];
        let providers = self.quotes.providers();
        states.extend(ProviderId::ALL.into_iter().map(|id| DependencyState {
            port: provider_port(id),
            adapter: adapter(provider_port(id)),
            status: if providers.is_configured(id) {
                "up"
            } else {
                "not_configured"
            },
            detail: None,
        }));
        states
    }
}

fn metrics(config: &Config) -> Metrics {
    match config.metrics.mode {
        MetricsMode::Emf => Metrics::new(Arc::new(EmfMetrics::stdout(
            &config.metrics.namespace,
            &config.metrics.function,
        ))),
        MetricsMode::Log => Metrics::new(Arc::new(LogMetrics)),
        MetricsMode::Off => Metrics::none(),
    }
}

async fn store(
    config: &Config,
    ports: &mut Vec<PortAdapter>,
) -> Result<(Arc<dyn PriceStore>, Option<PostgresStore>), WiringError> {
    let Some(db) = &config.database else {
        ports.push(port("store", "in-memory".into()));
        return Ok((Arc::new(MemoryStore::new()), None));
    };
    let pg = PostgresStore::new(db)?;
    if db.migrate_on_start {
        // Not fatal: a database that is briefly away must not fail every cold start.
        // Writes fail (and are logged) until a later start migrates.
        match pg.migrate().await {
            Ok(applied) => tracing::info!(?applied, "migrations checked at start-up"),
            Err(e) => tracing::error!(error = %e, "migrations at start-up failed"),
        }
    }
    ports.push(port(
        "store",
        format!("postgres (pool of {})", db.pool_size),
    ));
    Ok((Arc::new(pg.clone()), Some(pg)))
}

/// The job store and scheduler: DynamoDB and EventBridge when configured, else in memory
/// and tokio timers (whose scheduler is also returned, for the local runner).
async fn polling_ports(
    config: &Config,
    ports: &mut Vec<PortAdapter>,
) -> (
    Arc<dyn JobStore>,
    Arc<dyn Scheduler>,
    Option<Arc<LocalScheduler>>,
) {
    let polling = &config.polling;
    // Loaded once, for both clients, and only when one of them is configured.
    let sdk = if polling.jobs_table.is_some() || polling.poller_function_arn.is_some() {
        Some(crate::aws_sdk::load().await)
    } else {
        None
    };
    let jobs: Arc<dyn JobStore> = match (&polling.jobs_table, &sdk) {
        (Some(table), Some(sdk)) => {
            ports.push(port("jobs", format!("dynamodb table {table}")));
            Arc::new(DynamoJobStore::connect(
                sdk,
                table,
                polling.dynamodb_endpoint.as_deref(),
            ))
        }
        _ => {
            ports.push(port("jobs", "in-memory".into()));
            Arc::new(MemoryJobStore::new())
        }
    };
    let (scheduler, local): (Arc<dyn Scheduler>, _) = match (&polling.poller_function_arn, &sdk) {
        (Some(arn), Some(sdk)) => (
            Arc::new(EventBridgeScheduler::connect(
                sdk,
                arn,
                &polling.rule_prefix,
                polling.eventbridge_endpoint.as_deref(),
            )),
            None,
        ),
        _ => {
            let local = Arc::new(LocalScheduler::new());
            (Arc::clone(&local) as Arc<dyn Scheduler>, Some(local))
        }
    };
    ports.push(port("scheduler", scheduler.describe()));
    (jobs, scheduler, local)
}

fn shared_cache(
    config: &Config,
    redis: Option<&RedisConnection>,
    ports: &mut Vec<PortAdapter>,
) -> Option<Arc<dyn QuoteCache>> {
    match (&config.redis, redis) {
        (Some(settings), Some(connection)) => {
            ports.push(port(
                "cache",
                format!("in-process L1 + redis (prefix {:?})", settings.key_prefix),
            ));
            Some(Arc::new(RedisCache::new(
                connection.clone(),
                config.cache.stale_ttl,
            )))
        }
        _ => {
            ports.push(port("cache", "in-process L1 only".into()));
            None
        }
    }
}

/// The event bus as wired.
struct WiredBus {
    bus: Arc<dyn EventBus>,
    /// The same bus when it is the in-process one, for the local runner to consume.
    in_process: Option<InProcessBus>,
    /// How long a new raw row is left to its first delivery attempt before the
    /// re-publisher may take it.
    republish_grace: Duration,
}

fn bus(config: &Config, ports: &mut Vec<PortAdapter>) -> Result<WiredBus, WiringError> {
    match &config.kafka {
        Some(kafka) => {
            ports.push(port(
                "events",
                format!("kafka {} topic {}", kafka.bootstrap_servers, kafka.topic),
            ));
            Ok(WiredBus {
                bus: Arc::new(KafkaBus::new(kafka)?),
                in_process: None,
                republish_grace: kafka.delivery_timeout + Duration::from_secs(5),
            })
        }
        None => {
            ports.push(port("events", "in-process channel".into()));
            let bus = InProcessBus::new(1024);
            Ok(WiredBus {
                bus: Arc::new(bus.clone()),
                in_process: Some(bus),
                republish_grace: Duration::from_secs(5),
            })
        }
    }
}

fn providers(config: &Config, ports: &mut Vec<PortAdapter>) -> Result<Providers, WiringError> {
    let providers = Providers::from_config(config)?;
    for id in ProviderId::ALL {
        let adapter = match (id, providers.is_configured(id)) {
            (ProviderId::Finnhub, true) => format!("finnhub at {}", config.finnhub.base_url),
            (ProviderId::Finnhub, false) => {
                "not configured (set FINNHUB_API_KEY or FINNHUB_API_KEY_SECRET_ID)".into()
            }
            (ProviderId::Simulated, _) => "built-in random walk".into(),
        };
        let default = if id == providers.default_id() {
            " [default]"
        } else {
            ""
        };
        ports.push(PortAdapter {
            port: provider_port(id),
            adapter: format!("{adapter}{default}"),
        });
    }
    Ok(providers)
}

fn edge(config: &Config, redis: Option<RedisConnection>, ports: &mut Vec<PortAdapter>) -> Edge {
    let shared_limiter = redis.map(RedisRateLimiter::new);
    ports.push(port(
        "rate-limit",
        match (&config.access.default_quota, &shared_limiter) {
            (None, _) => "off (RATE_LIMIT_PER_MINUTE=0)".into(),
            (Some(q), Some(_)) => format!("redis, {}/min, burst {}", q.per_minute, q.burst),
            (Some(q), None) => format!(
                "in-process (per process), {}/min, burst {}",
                q.per_minute, q.burst
            ),
        },
    ));
    ports.push(port(
        "api-keys",
        match &config.access.api_keys {
            Some(keys) => format!("required ({} keys)", keys.len()),
            None => "off (API_KEYS not set)".into(),
        },
    ));
    Edge {
        api_keys: config.access.api_keys.clone(),
        default_quota: config.access.default_quota,
        limiter: RateLimiting::new(shared_limiter),
        http: config.http.clone(),
    }
}

fn port(port: &'static str, adapter: String) -> PortAdapter {
    PortAdapter { port, adapter }
}

fn provider_port(id: ProviderId) -> &'static str {
    match id {
        ProviderId::Finnhub => "provider:finnhub",
        ProviderId::Simulated => "provider:simulated",
    }
}

async fn check<E: std::fmt::Display>(
    probe: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}

fn state(port: &'static str, adapter: String, result: Result<(), String>) -> DependencyState {
    match result {
        Ok(()) => DependencyState {
            port,
            adapter,
            status: "up",
            detail: None,
        },
        Err(detail) => DependencyState {
            port,
            adapter,
            status: "down",
            detail: Some(detail),
        },
    }
}
