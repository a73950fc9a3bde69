//! The latest price of a symbol: cache first, then one provider call per symbol at a time,
//! whose result is stored, published and cached before anyone is answered.
//!
//! Order of a miss: provider → raw row (marked undelivered) → event → mark delivered →
//! both cache tiers. Writing the row first means an event the broker never confirmed is
//! still on record, for the re-publisher to send later; nothing fetched is lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{error, warn};
use uuid::Uuid;

use crate::cache::{CacheLookup, CacheTier, TieredCache};
use crate::domain::{PriceEvent, ProviderId, Quote, Symbol};
use crate::events::EventBus;
use crate::providers::{ProviderError, Providers, QuoteProvider};
use crate::single_flight::SingleFlight;
use crate::store::PriceStore;
use crate::telemetry::Metrics;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A fresh cached quote.
    Cache(CacheTier),
    /// The provider, asked by this request or by a concurrent one it joined.
    Provider {
        /// True when another request's provider call answered this one too.
        joined: bool,
    },
    /// A cached quote past its fresh lifetime, because the provider failed.
    Stale,
}

/// A quote and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestPrice {
    /// The quote, exactly as the provider gave it.
    pub quote: Quote,
    /// Where it came from.
    pub origin: Origin,
}

impl LatestPrice {
    /// Whether the answer came from the cache (fresh or stale).
    pub fn cached(&self) -> bool {
        matches!(self.origin, Origin::Cache(_) | Origin::Stale)
    }

    /// Whether the answer is older than the fresh lifetime.
    pub fn stale(&self) -> bool {
        self.origin == Origin::Stale
    }
}

/// No usable quote: the provider failed and nothing usable was cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} could not quote {symbol}: {source}")]
pub struct QuoteError {
    /// The provider asked.
    pub provider: ProviderId,
    /// The symbol asked for.
    pub symbol: Symbol,
    /// What went wrong.
    #[source]
    pub source: ProviderError,
}

type FlightKey = (ProviderId, Symbol);

/// The latest-price use case, shared by every request of a process.
#[derive(Clone)]
pub struct QuoteService {
    inner: Arc<Inner>,
}

struct Inner {
    providers: Providers,
    cache: TieredCache,
    store: Arc<dyn PriceStore>,
    bus: Arc<dyn EventBus>,
    flights: SingleFlight<FlightKey, Result<Quote, ProviderError>>,
    republish_grace: chrono::Duration,
    metrics: Metrics,
}

impl QuoteService {
    /// A service over the given ports. `republish_grace` is how long the re-publisher
    /// leaves a new row alone: longer than the bus takes to confirm or give up.
    pub fn new(
        providers: Providers,
        cache: TieredCache,
        store: Arc<dyn PriceStore>,
        bus: Arc<dyn EventBus>,
        republish_grace: Duration,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                providers,
                cache,
                store,
                bus,
                flights: SingleFlight::new(),
                republish_grace: chrono::Duration::from_std(republish_grace)
                    .unwrap_or(chrono::Duration::MAX),
                metrics,
            }),
        }
    }

    /// The providers this service can ask.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// The latest quote of `symbol` from `provider` (or the default one), from the cache
    /// when fresh, else from the provider; a stale cached quote if the provider fails.
    pub async fn latest(
        &self,
        symbol: &Symbol,
        provider: Option<ProviderId>,
    ) -> Result<LatestPrice, QuoteError> {
        let id = provider.unwrap_or(self.inner.providers.default_id());
        let source = self.provider(id, symbol)?;
        let metrics = &self.inner.metrics;
        let stale = match self.inner.cache.lookup(id, symbol).await {
            CacheLookup::Fresh(quote, tier) => {
                metrics.count("CacheHit", vec![("Tier", tier.as_str().into())]);
                return Ok(LatestPrice {
                    quote,
                    origin: Origin::Cache(tier),
                });
            }
            CacheLookup::Miss { stale } => {
                metrics.count("CacheMiss", vec![]);
                stale
            }
        };
        let (result, leader) = self.fetch(source, symbol).await;
        match (result, stale) {
            (Ok(quote), _) => Ok(LatestPrice {
                quote,
                origin: Origin::Provider { joined: !leader },
            }),
            // "Unknown symbol" is an answer, not a failure: an old price must not hide it.
            (Err(e @ ProviderError::NotFound), _) | (Err(e), None) => Err(QuoteError {
                provider: id,
                symbol: symbol.clone(),
                source: e,
            }),
            (Err(e), Some(quote)) => {
                metrics.count("StaleServed", vec![("Provider", id.to_string())]);
                warn!(%symbol, provider = %id, error = %e, "provider failed; serving a stale quote");
                Ok(LatestPrice {
                    quote,
                    origin: Origin::Stale,
                })
            }
        }
    }

    /// Asks the provider regardless of the cache, then stores, publishes and caches the
    /// quote as a miss would. For pollers, which want a new quote every tick.
    pub async fn refresh(
        &self,
        symbol: &Symbol,
        provider: ProviderId,
    ) -> Result<Quote, QuoteError> {
        let source = self.provider(provider, symbol)?;
        self.fetch(source, symbol).await.0.map_err(|e| QuoteError {
            provider,
            symbol: symbol.clone(),
            source: e,
        })
    }

    fn provider(
        &self,
        id: ProviderId,
        symbol: &Symbol,
    ) -> Result<Arc<dyn QuoteProvider>, QuoteError> {
        self.inner.providers.get(id).map_err(|e| QuoteError {
            provider: id,
            symbol: symbol.clone(),
            source: e,
        })
    }

    /// One provider call per (provider, symbol) at a time; concurrent callers share it.
    async fn fetch(
        &self,
        provider: Arc<dyn QuoteProvider>,
        symbol: &Symbol,
    ) -> (Result<Quote, ProviderError>, bool) {
        let key = (provider.id(), symbol.clone());
        let inner = Arc::clone(&self.inner);
        let symbol = symbol.clone();
        let (result, leader) = self
            .inner
            .flights
            .run(key, move || record_fresh_quote(inner, provider, symbol))
            .await;
        let result = result.unwrap_or_else(|aborted| {
            error!(error = %aborted, "quote fetch aborted");
            Err(ProviderError::Unavailable(
                "the quote fetch was aborted".into(),
            ))
        });
        (result, leader)
    }
}

async fn record_fresh_quote(
    inner: Arc<Inner>,
    provider: Arc<dyn QuoteProvider>,
    symbol: Symbol,
) -> Result<Quote, ProviderError> {
    let metrics = &inner.metrics;
    let provider_dim = || vec![("Provider", provider.id().to_string())];
    let started = Instant::now();
    let result = provider.quote(&symbol).await.and_then(|fetched| {
        // The domain's rules hold for every provider: an implausible quote is the
        // provider's error, and goes no further than this.
        match fetched.quote.check_plausible(Utc::now()) {
            Ok(()) => Ok(fetched),
            Err(e) => Err(ProviderError::Garbage(e.to_string())),
        }
    });
    metrics.millis(
        "ProviderLatency",
        started.elapsed().as_secs_f64() * 1000.0,
        provider_dim(),
    );
    let fetched = result.inspect_err(|e| {
        let mut dims = provider_dim();
        dims.push(("Kind", e.kind().into()));
        metrics.count("ProviderError", dims);
    })?;
    let id = Uuid::now_v7();
    let republish_after = Utc::now() + inner.republish_grace;
    match inner.store.insert_raw(id, &fetched, republish_after).await {
        Ok(()) => {
            let event = PriceEvent::from_quote(&fetched.quote, id);
            match inner.bus.publish(&event).await {
                Ok(()) => {
                    metrics.count("EventPublished", vec![]);
                    if let Err(e) = inner.store.mark_delivered(id).await {
                        // The re-publisher will send it again; consumers are idempotent.
                        warn!(%symbol, raw_response_id = %id, error = %e, "event delivered but not marked");
                    }
                }
                Err(e) => {
                    metrics.count("EventNotDelivered", vec![]);
                    warn!(%symbol, raw_response_id = %id, error = %e, "event not delivered; left for the re-publisher");
                }
            }
        }
        Err(e) => {
            // Without a stored row there is nothing for an event to refer to: answer the
            // client, but publish nothing. The next fetch of the symbol records anew.
            error!(%symbol, error = %e, "raw quote not stored; no event published");
        }
    }
    inner.cache.store(&fetched.quote).await;
    Ok(fetched.quote)
}
