//! Builds each adapter once, the first time a function asks for it, from the configuration.
//!
//! Which adapter serves a port is decided here. Nothing connects yet (pools, Redis and Kafka
//! clients are lazy), so a cold start does not wait on, or fail for, a dependency that is
//! briefly away. Every adapter built registers its readiness check and its banner line, so a
//! function reports exactly what it uses.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{QuoteCache, RedisCache, TieredCache};
use crate::config::Config;
use crate::domain::ProviderId;
use crate::events::{EventBus, InProcessBus, KafkaBus};
use crate::jobs::{DynamoJobStore, JobStore, MemoryJobStore};
use crate::providers::{ProviderGuards, Providers};
use crate::readiness::{Check, DependencyStatus, PortAdapter};
use crate::redis_connection::RedisConnection;
use crate::scheduler::{MemoryTickQueue, SqsTickQueue, TickQueue};
use crate::store::{MemoryPointStore, MemoryStore, PointStore, PostgresStore, PriceStore};
use crate::telemetry::Metrics;
use crate::usecases::{PriceConsumer, PriceHistory, QuoteService, Republisher};

use super::WiringError;

/// The adapters of one process, each built at most once.
pub(super) struct Wiring<'c> {
    config: &'c Config,
    metrics: Metrics,
    /// Readiness checks, in the order the adapters were built.
    pub checks: Vec<Check>,
    /// Banner lines of what has no readiness check (averages, scheduler).
    pub notes: Vec<PortAdapter>,
    store: Option<(Arc<dyn PriceStore>, Option<PostgresStore>)>,
    points: Option<Arc<dyn PointStore>>,
    redis: Option<Option<RedisConnection>>,
    bus: Option<WiredBus>,
    quotes: Option<QuoteService>,
    jobs: Option<Arc<dyn JobStore>>,
    queue: Option<WiredQueue>,
    sdk: Option<Option<aws_config::SdkConfig>>,
}

/// The tick queue as wired, and the same queue when it is the in-process one.
type WiredQueue = (Arc<dyn TickQueue>, Option<Arc<MemoryTickQueue>>);

/// The event bus as wired.
#[derive(Clone)]
pub(super) struct WiredBus {
    pub bus: Arc<dyn EventBus>,
    /// The same bus when it is the in-process one, for the local runner to consume.
    pub in_process: Option<InProcessBus>,
    /// How long a new raw row is left to its first delivery attempt before the
    /// re-publisher may take it.
    pub republish_grace: Duration,
}

impl<'c> Wiring<'c> {
    pub fn new(config: &'c Config, metrics: Metrics) -> Self {
        Self {
            config,
            metrics,
            checks: Vec::new(),
            notes: Vec::new(),
            store: None,
            points: None,
            redis: None,
            bus: None,
            quotes: None,
            jobs: None,
            queue: None,
            sdk: None,
        }
    }

    pub fn config_polling(&self) -> crate::usecases::PollSettings {
        self.config.polling
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The raw-quote store, and the PostgreSQL store behind it when there is one. Applies
    /// migrations first when `DATABASE_MIGRATE_ON_START` asks (a failure is logged, not fatal).
    pub async fn store(
        &mut self,
    ) -> Result<(Arc<dyn PriceStore>, Option<PostgresStore>), WiringError> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        let store: (Arc<dyn PriceStore>, Option<PostgresStore>) = match &self.config.database {
            None => {
                self.checks
                    .push(Check::probe("store", "in-memory".into(), || async {
                        Ok::<(), String>(())
                    }));
                (Arc::new(MemoryStore::new()), None)
            }
            Some(db) => {
                let pg = PostgresStore::new(db)?;
                if db.migrate_on_start {
                    // Not fatal: a database that is briefly away must not fail every cold
                    // start. Writes fail (and are logged) until a later start migrates.
                    match pg.migrate().await {
                        Ok(applied) => tracing::info!(?applied, "migrations checked at start-up"),
                        Err(e) => tracing::error!(error = %e, "migrations at start-up failed"),
                    }
                }
                let probe = pg.clone();
                self.checks
                    .push(Check::probe("store", db.describe(), move || {
                        let pg = probe.clone();
                        async move { pg.ping().await }
                    }));
                (Arc::new(pg.clone()), Some(pg))
            }
        };
        self.store = Some(store.clone());
        Ok(store)
    }

    /// The store of points, averages and dead letters: the same database as the raw store.
    pub async fn points(&mut self) -> Result<Arc<dyn PointStore>, WiringError> {
        if let Some(points) = &self.points {
            return Ok(Arc::clone(points));
        }
        let points: Arc<dyn PointStore> = match self.store().await?.1 {
            Some(pg) => Arc::new(pg),
            None => Arc::new(MemoryPointStore::new()),
        };
        self.notes.push(PortAdapter {
            port: "averages",
            adapter: self
                .config
                .averages
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
        self.points = Some(Arc::clone(&points));
        Ok(points)
    }

    /// The process's one Redis connection, when Redis is configured.
    pub fn redis(&mut self) -> Result<Option<RedisConnection>, WiringError> {
        if let Some(redis) = &self.redis {
            return Ok(redis.clone());
        }
        let redis = self
            .config
            .redis
            .as_ref()
            .map(RedisConnection::open)
            .transpose()?;
        self.redis = Some(redis.clone());
        Ok(redis)
    }

    /// The shared cache tier (Redis), when Redis is configured.
    fn shared_cache(&mut self) -> Result<Option<Arc<dyn QuoteCache>>, WiringError> {
        let cache: Option<Arc<dyn QuoteCache>> = match (&self.config.redis, self.redis()?) {
            (Some(settings), Some(connection)) => {
                let cache: Arc<dyn QuoteCache> =
                    Arc::new(RedisCache::new(connection, self.config.cache.stale_ttl));
                let probe = Arc::clone(&cache);
                self.checks
                    .push(Check::probe("cache", settings.describe(), move || {
                        let cache = Arc::clone(&probe);
                        async move { cache.ping().await }
                    }));
                Some(cache)
            }
            _ => {
                // The in-process tier is always there.
                self.checks.push(Check::fixed(
                    "cache",
                    "in-process L1 only".into(),
                    DependencyStatus::Up,
                ));
                None
            }
        };
        Ok(cache)
    }

    /// The event bus: Kafka when configured, else the in-process channel.
    pub fn bus(&mut self) -> Result<WiredBus, WiringError> {
        if let Some(bus) = &self.bus {
            return Ok(bus.clone());
        }
        let (wired, adapter) = match &self.config.kafka {
            Some(kafka) => (
                WiredBus {
                    bus: Arc::new(KafkaBus::new(kafka)?),
                    in_process: None,
                    republish_grace: kafka.delivery_timeout + Duration::from_secs(5),
                },
                kafka.describe(),
            ),
            None => {
                let bus = InProcessBus::new(1024);
                (
                    WiredBus {
                        bus: Arc::new(bus.clone()),
                        in_process: Some(bus),
                        republish_grace: Duration::from_secs(5),
                    },
                    "in-process channel".into(),
                )
            }
        };
        let probe = Arc::clone(&wired.bus);
        self.checks.push(Check::probe("events", adapter, move || {
            let bus = Arc::clone(&probe);
            async move { bus.ping().await }
        }));
        self.bus = Some(wired.clone());
        Ok(wired)
    }

    /// The latest-price use case over the providers, both cache tiers, the store and the bus.
    pub async fn quotes(&mut self) -> Result<QuoteService, WiringError> {
        if let Some(quotes) = &self.quotes {
            return Ok(quotes.clone());
        }
        let (store, _) = self.store().await?;
        let shared_cache = self.shared_cache()?;
        let bus = self.bus()?;
        let limits = ProviderId::ALL
            .into_iter()
            .map(|id| (id, self.config.providers.quota(id)));
        let guards = ProviderGuards::new(limits, self.redis()?);
        let providers = Providers::from_config(&self.config.providers, guards)?;
        for (id, adapter) in Providers::describe(&self.config.providers) {
            let status = if providers.is_configured(id) {
                DependencyStatus::Up
            } else {
                DependencyStatus::NotConfigured
            };
            self.checks
                .push(Check::fixed(id.port_name(), adapter, status));
        }
        let quotes = QuoteService::new(
            providers,
            TieredCache::new(&self.config.cache, shared_cache),
            store,
            bus.bus,
            bus.republish_grace,
            self.metrics.clone(),
        );
        self.quotes = Some(quotes.clone());
        Ok(quotes)
    }

    /// The re-publisher of events the bus never confirmed.
    pub async fn republisher(&mut self) -> Result<Republisher, WiringError> {
        let (store, _) = self.store().await?;
        let bus = self.bus()?;
        Ok(Republisher::new(store, bus.bus, self.metrics.clone()))
    }

    /// The consumer of price events.
    pub async fn consumer(&mut self) -> Result<PriceConsumer, WiringError> {
        let points = self.points().await?;
        Ok(PriceConsumer::new(
            points,
            &self.config.averages,
            self.metrics.clone(),
        ))
    }

    /// The reader of points and averages.
    pub async fn history(&mut self) -> Result<PriceHistory, WiringError> {
        let points = self.points().await?;
        Ok(PriceHistory::new(points, &self.config.averages))
    }

    /// The AWS SDK configuration, loaded once and only when an AWS adapter is configured.
    async fn sdk(&mut self) -> Option<aws_config::SdkConfig> {
        if let Some(sdk) = &self.sdk {
            return sdk.clone();
        }
        let sdk = if self.config.jobs.is_some() || self.config.queue.is_some() {
            Some(crate::aws_sdk::load().await)
        } else {
            None
        };
        self.sdk = Some(sdk.clone());
        sdk
    }

    /// The job store: DynamoDB when configured, else in memory.
    pub async fn jobs(&mut self) -> Arc<dyn JobStore> {
        if let Some(jobs) = &self.jobs {
            return Arc::clone(jobs);
        }
        let sdk = self.sdk().await;
        let (jobs, adapter): (Arc<dyn JobStore>, String) = match (&self.config.jobs, sdk) {
            (Some(dynamo), Some(sdk)) => (
                Arc::new(DynamoJobStore::connect(
                    &sdk,
                    &dynamo.table,
                    dynamo.endpoint.as_deref(),
                )),
                dynamo.describe(),
            ),
            _ => (Arc::new(MemoryJobStore::new()), "in-memory".into()),
        };
        let probe = Arc::clone(&jobs);
        self.checks.push(Check::probe("jobs", adapter, move || {
            let jobs = Arc::clone(&probe);
            async move { jobs.ping().await }
        }));
        self.jobs = Some(Arc::clone(&jobs));
        jobs
    }

    /// The tick queue: SQS when configured, else in this process (returned too, so the
    /// local runner can deliver its ticks to the poller).
    pub async fn queue(&mut self) -> WiredQueue {
        if let Some(queue) = &self.queue {
            return queue.clone();
        }
        let sdk = self.sdk().await;
        let (queue, memory): (Arc<dyn TickQueue>, _) = match (&self.config.queue, sdk) {
            (Some(sqs), Some(sdk)) => (
                Arc::new(SqsTickQueue::connect(
                    &sdk,
                    &sqs.queue_url,
                    sqs.endpoint.as_deref(),
                )),
                None,
            ),
            _ => {
                let memory = Arc::new(MemoryTickQueue::new());
                (Arc::clone(&memory) as Arc<dyn TickQueue>, Some(memory))
            }
        };
        self.notes.push(PortAdapter {
            port: "scheduler",
            adapter: format!("rate(1 minute) wake-up, {}", queue.describe()),
        });
        self.queue = Some((Arc::clone(&queue), memory.clone()));
        (queue, memory)
    }

    /// What the banner shows: every checked dependency, then the notes.
    pub fn ports(&self) -> Vec<PortAdapter> {
        self.checks
            .iter()
            .map(|c| c.port().clone())
            .chain(self.notes.iter().cloned())
            .collect()
    }
}
