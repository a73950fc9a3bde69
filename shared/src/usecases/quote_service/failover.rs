//! The failover chain for one symbol: the providers are asked in order (the chain, or the
//! one provider a request pins) until one answers.
//!
//! A provider whose quota is used up, that is cooling down or whose circuit is open is
//! skipped without a call (`providers::guard`). An unknown symbol moves on to the next
//! provider too; the answer is "unknown symbol" only when every provider asked said so.
//! Every provider tried or skipped is recorded in the route, which the answer, the access
//! log and the `ProviderFailover` metric (by provider and reason) carry.

use std::sync::Arc;

use super::{Inner, QuoteError, QuoteService, Recorded, record_fresh_quote};
use crate::cache::CacheLookup;
use crate::domain::{ProviderId, Quote, Symbol};
use crate::providers::{ProviderError, QuoteProvider};
use crate::telemetry::Metrics;

use super::{LatestPrice, Origin};

/// What one provider did for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// It answered with the quote.
    Served,
    /// It was asked and failed.
    Failed(ProviderError),
    /// It was not asked: its quota, cool-down or circuit said the call would fail.
    Skipped(ProviderError),
}

/// One provider of a request's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The provider.
    pub provider: ProviderId,
    /// What it did.
    pub outcome: AttemptOutcome,
}

impl Attempt {
    /// `provider` was asked and failed with `error`.
    pub fn failed(provider: ProviderId, error: ProviderError) -> Self {
        Self {
            provider,
            outcome: AttemptOutcome::Failed(error),
        }
    }

    /// The failure, when it was one (asked or skipped).
    pub fn error(&self) -> Option<&ProviderError> {
        match &self.outcome {
            AttemptOutcome::Served => None,
            AttemptOutcome::Failed(e) | AttemptOutcome::Skipped(e) => Some(e),
        }
    }

    /// `served`, or the failure's kind (`rate_limited`, `not_found`, …).
    pub fn reason(&self) -> &'static str {
        self.error().map_or("served", ProviderError::kind)
    }
}

/// A provider that did not give a quote, and whether it was asked at all.
#[derive(Debug, Clone)]
pub(super) struct Miss {
    pub error: ProviderError,
    pub skipped: bool,
}

impl Miss {
    pub fn failed(error: ProviderError) -> Self {
        Self {
            error,
            skipped: false,
        }
    }

    fn attempt(self, provider: ProviderId) -> Attempt {
        Attempt {
            provider,
            outcome: if self.skipped {
                AttemptOutcome::Skipped(self.error)
            } else {
                AttemptOutcome::Failed(self.error)
            },
        }
    }
}

/// One provider call behind its guards: skipped when they say it would fail, counted and
/// recorded (breaker, cool-downs) when made.
pub(super) async fn guarded_quote(
    inner: Arc<Inner>,
    provider: Arc<dyn QuoteProvider>,
    symbol: Symbol,
) -> Result<Recorded, Miss> {
    let id = provider.id();
    if let Some(error) = inner
        .providers
        .guards()
        .admit(id, provider.cost(1))
        .await
        .as_error()
    {
        return Err(Miss {
            error,
            skipped: true,
        });
    }
    let result = record_fresh_quote(Arc::clone(&inner), provider, symbol).await;
    inner
        .providers
        .guards()
        .record(id, result.as_ref().map(|_| ()))
        .await;
    result.map_err(Miss::failed)
}

/// The providers to ask: the pinned one, else the chain.
pub(super) fn order(service: &QuoteService, pinned: Option<ProviderId>) -> Vec<ProviderId> {
    match pinned {
        Some(id) => vec![id],
        None => service.inner.providers.chain().to_vec(),
    }
}

/// The latest quote of `symbol`: cache (each provider of the order), then the walk.
pub(super) async fn latest(
    service: &QuoteService,
    symbol: &Symbol,
    pinned: Option<ProviderId>,
) -> Result<LatestPrice, QuoteError> {
    if let Some(id) = pinned {
        service.provider(id, symbol)?;
    }
    let order = order(service, pinned);
    let (fresh, stale) = cached(service, symbol, &order).await;
    if let Some(hit) = fresh {
        return Ok(hit);
    }
    match walk(service, symbol, &order).await {
        Ok((recorded, joined, route)) => Ok(recorded.answer(joined, route)),
        Err(e) => serve_stale(&service.inner.metrics, e, stale),
    }
}

/// A fresh cached quote from any provider of `order` (the first found), else the first
/// stale one.
pub(super) async fn cached(
    service: &QuoteService,
    symbol: &Symbol,
    order: &[ProviderId],
) -> (Option<LatestPrice>, Option<Quote>) {
    let metrics = &service.inner.metrics;
    let mut stale = None;
    for id in order {
        match service.inner.cache.lookup(*id, symbol).await {
            CacheLookup::Fresh(quote, tier) => {
                metrics.count("CacheHit", vec![("Tier", tier.as_str().into())]);
                let hit = LatestPrice {
                    quote,
                    origin: Origin::Cache(tier),
                    route: Vec::new(),
                    not_stored: None,
                };
                return (Some(hit), None);
            }
            CacheLookup::Miss { stale: s } => {
                if stale.is_none() {
                    stale = s;
                }
            }
        }
    }
    metrics.count("CacheMiss", vec![]);
    (None, stale)
}

/// The failure, or a stale quote when the failure is not "unknown symbol".
pub(super) fn serve_stale(
    metrics: &Metrics,
    e: QuoteError,
    stale: Option<Quote>,
) -> Result<LatestPrice, QuoteError> {
    match stale {
        // "Unknown symbol" is an answer, not a failure: an old price must not hide it.
        Some(quote) if e.source != ProviderError::NotFound => {
            metrics.count(
                "StaleServed",
                vec![("Provider", quote.provider.to_string())],
            );
            tracing::warn!(symbol = %e.symbol, error = %e, "no provider answered; serving a stale quote");
            Ok(LatestPrice {
                quote,
                origin: Origin::Stale,
                route: e.attempts,
                not_stored: None,
            })
        }
        _ => Err(e),
    }
}

/// Asks `order` regardless of the cache.
pub(super) async fn refresh(
    service: &QuoteService,
    symbol: &Symbol,
    order: &[ProviderId],
) -> Result<LatestPrice, QuoteError> {
    walk(service, symbol, order)
        .await
        .map(|(recorded, joined, route)| recorded.answer(joined, route))
}

/// Asks each provider of `order` in turn until one gives a quote.
async fn walk(
    service: &QuoteService,
    symbol: &Symbol,
    order: &[ProviderId],
) -> Result<(Recorded, bool, Vec<Attempt>), QuoteError> {
    let mut route = Vec::with_capacity(order.len());
    for id in order {
        let source = match service.inner.providers.get(*id) {
            Ok(source) => source,
            Err(e) => {
                route.push(Attempt::failed(*id, e));
                continue;
            }
        };
        let (result, leader) = service.fetch(source, symbol).await;
        match result {
            Ok(recorded) => {
                route.push(Attempt {
                    provider: *id,
                    outcome: AttemptOutcome::Served,
                });
                return Ok((recorded, !leader, route));
            }
            Err(miss) => {
                let attempt = miss.attempt(*id);
                if order.len() > 1 {
                    count_failover(&service.inner.metrics, &attempt);
                }
                route.push(attempt);
            }
        }
    }
    Err(give_up(symbol, route))
}

/// Counts a provider the chain moved past.
pub(super) fn count_failover(metrics: &Metrics, attempt: &Attempt) {
    metrics.count(
        "ProviderFailover",
        vec![
            ("Provider", attempt.provider.to_string()),
            ("Reason", attempt.reason().into()),
        ],
    );
}

/// The error of a route where no provider answered: "unknown symbol" only when every
/// provider asked said so; else the first other failure.
pub(super) fn give_up(symbol: &Symbol, route: Vec<Attempt>) -> QuoteError {
    let asked: Vec<&Attempt> = route
        .iter()
        .filter(|a| matches!(a.outcome, AttemptOutcome::Failed(_)))
        .collect();
    let all_unknown = !asked.is_empty()
        && asked
            .iter()
            .all(|a| a.error() == Some(&ProviderError::NotFound));
    let (provider, source) = if all_unknown {
        (asked[0].provider, ProviderError::NotFound)
    } else {
        route
            .iter()
            .find_map(|a| {
                a.error()
                    .filter(|e| **e != ProviderError::NotFound)
                    .map(|e| (a.provider, e.clone()))
            })
            .unwrap_or((
                ProviderId::Simulated,
                ProviderError::Unavailable("no provider is in the chain".into()),
            ))
    };
    QuoteError {
        provider,
        symbol: symbol.clone(),
        source,
        attempts: route,
    }
}
