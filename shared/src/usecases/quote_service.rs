//! The latest price of a symbol: cache first, then one provider call per symbol at a time,
//! whose result is stored, published and cached before anyone is answered.
//!
//! Order of a miss: provider → raw row (marked undelivered) → event → mark delivered →
//! both cache tiers. Writing the row first means an event the broker never confirmed is
//! still on record, for the re-publisher to send later; nothing fetched is lost.
//!
//! Which providers are asked, in which order, and what each answered is the failover
//! chain's business (`quote_service/failover.rs`); many symbols at once is `batch.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{error, warn};
use uuid::Uuid;

mod batch;
mod failover;

pub use failover::{Attempt, AttemptOutcome};

use crate::cache::{CacheTier, TieredCache};
use crate::domain::{FetchedQuote, PriceEvent, ProviderId, Quote, Symbol};
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
    /// The providers asked for it, in order, and what each answered (empty from the cache).
    pub route: Vec<Attempt>,
    /// Why the quote fetched for this answer is not on record (its raw row could not be
    /// written, so no event was published either); `None` when it is, or came from the cache.
    /// The API still serves such a quote; a poller counts its symbol as failed.
    pub not_stored: Option<String>,
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

/// No usable quote: every provider asked failed and nothing usable was cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} could not quote {symbol}: {source}")]
pub struct QuoteError {
    /// The provider asked (the first that failed for a reason other than an unknown symbol).
    pub provider: ProviderId,
    /// The symbol asked for.
    pub symbol: Symbol,
    /// What went wrong (`NotFound` only when every provider asked said so).
    #[source]
    pub source: ProviderError,
    /// Every provider tried or skipped, in order, with its outcome.
    pub attempts: Vec<Attempt>,
}

type FlightKey = (ProviderId, Symbol);

/// A quote a provider gave, and why it is not on record if it is not.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    quote: Quote,
    not_stored: Option<String>,
}

impl Recorded {
    /// The answer it makes, fetched for this request (or a joined one) along `route`.
    fn answer(self, joined: bool, route: Vec<Attempt>) -> LatestPrice {
        LatestPrice {
            quote: self.quote,
            origin: Origin::Provider { joined },
            route,
            not_stored: self.not_stored,
        }
    }
}

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
    flights: SingleFlight<FlightKey, Result<Recorded, failover::Miss>>,
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

    /// The latest quote of `symbol` from `provider`, or through the failover chain when
    /// no provider is named: from the cache when fresh, else from the first provider that
    /// answers; a stale cached quote if every provider fails.
    pub async fn latest(
        &self,
        symbol: &Symbol,
        provider: Option<ProviderId>,
    ) -> Result<LatestPrice, QuoteError> {
        failover::latest(self, symbol, provider).await
    }

    /// Asks the provider regardless of the cache (through its quota and circuit breaker),
    /// then stores, publishes and caches the quote as a miss would. For pollers, which want
    /// a new quote every tick (and must check [`LatestPrice::not_stored`]).
    pub async fn refresh(
        &self,
        symbol: &Symbol,
        provider: ProviderId,
    ) -> Result<LatestPrice, QuoteError> {
        failover::refresh(self, symbol, &[provider]).await
    }

    /// The latest quotes of many symbols at once: cache hits from the cache, misses fetched
    /// together through the chain (or `provider`), in batch calls where the provider has a
    /// batch endpoint. One result per symbol, in the order given.
    pub async fn latest_many(
        &self,
        symbols: &[Symbol],
        provider: Option<ProviderId>,
    ) -> Vec<Result<LatestPrice, QuoteError>> {
        batch::latest_many(self, symbols, provider).await
    }

    /// Asks for many symbols regardless of the cache, through the chain (or `provider`) in
    /// batch calls where possible, then stores, publishes and caches each quote. For the
    /// poller: a 50-symbol tick is a few calls, not 50.
    pub async fn refresh_many(
        &self,
        symbols: &[Symbol],
        provider: Option<ProviderId>,
    ) -> Vec<Result<LatestPrice, QuoteError>> {
        batch::refresh_many(self, symbols, provider).await
    }

    fn provider(
        &self,
        id: ProviderId,
        symbol: &Symbol,
    ) -> Result<Arc<dyn QuoteProvider>, QuoteError> {
        self.inner.providers.get(id).map_err(|e| QuoteError {
            provider: id,
            symbol: symbol.clone(),
            attempts: vec![Attempt::failed(id, e.clone())],
            source: e,
        })
    }

    /// One provider call per (provider, symbol) at a time; concurrent callers share it.
    async fn fetch(
        &self,
        provider: Arc<dyn QuoteProvider>,
        symbol: &Symbol,
    ) -> (Result<Recorded, failover::Miss>, bool) {
        let key = (provider.id(), symbol.clone());
        let inner = Arc::clone(&self.inner);
        let symbol = symbol.clone();
        let (result, leader) = self
            .inner
            .flights
            .run(key, move || {
                failover::guarded_quote(inner, provider, symbol)
            })
            .await;
        let result = result.unwrap_or_else(|aborted| {
            error!(error = %aborted, "quote fetch aborted");
            Err(failover::Miss::failed(ProviderError::Unavailable(
                "the quote fetch was aborted".into(),
            )))
        });
        (result, leader)
    }
}

async fn record_fresh_quote(
    inner: Arc<Inner>,
    provider: Arc<dyn QuoteProvider>,
    symbol: Symbol,
) -> Result<Recorded, ProviderError> {
    let metrics = &inner.metrics;
    let provider_dim = || vec![("Provider", provider.id().to_string())];
    let started = Instant::now();
    let result = provider.quote(&symbol).await.and_then(plausible);
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
    Ok(record_fetched(&inner, &symbol, fetched).await)
}

/// The domain's rules hold for every provider and every path (single, batch, poll): an
/// implausible quote is the provider's error, and goes no further than this.
fn plausible(fetched: FetchedQuote) -> Result<FetchedQuote, ProviderError> {
    match fetched.quote.check_plausible(Utc::now()) {
        Ok(()) => Ok(fetched),
        Err(e) => Err(ProviderError::Implausible(e.to_string())),
    }
}

/// Stores, publishes and caches a quote a provider just gave. A quote whose raw row cannot
/// be written is still cached and returned (the provider gave it), but says why it is not on
/// record, is logged at `error` and counted (`QuoteNotStored`): nothing is published for it.
async fn record_fetched(inner: &Inner, symbol: &Symbol, fetched: FetchedQuote) -> Recorded {
    let metrics = &inner.metrics;
    let id = Uuid::now_v7();
    let republish_after = Utc::now() + inner.republish_grace;
    let mut not_stored = None;
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
            // Without a stored row there is nothing for an event to refer to: publish
            // nothing. The next fetch of the symbol records anew.
            metrics.count(
                "QuoteNotStored",
                vec![("Provider", fetched.quote.provider.to_string())],
            );
            error!(%symbol, error = %e, "raw quote not stored; no event published");
            not_stored = Some(e.to_string());
        }
    }
    inner.cache.store(&fetched.quote).await;
    Recorded {
        quote: fetched.quote,
        not_stored,
    }
}
