//! Many symbols at once: cache hits from the cache, misses fetched together through the
//! chain, in batch calls where the provider has a batch endpoint (Twelve Data, Tiingo) and
//! a few concurrent single calls where it has not.
//!
//! Each provider of the order gets the symbols still missing, split into its batch size;
//! each call passes its guards first (a Twelve Data call costs one credit per symbol). The
//! batch path does not join concurrent single requests' calls (single-flight is per
//! symbol); every quote fetched is stored, published and cached as a single miss would be.

use std::time::Instant;

use futures::{StreamExt, stream};

use super::failover::{self, Attempt, AttemptOutcome};
use super::{LatestPrice, QuoteError, QuoteService, Recorded, plausible, record_fetched};
use crate::domain::{FetchedQuote, ProviderId, Symbol};
use crate::providers::ProviderError;

/// Provider calls of one batch in flight at once (for providers without a batch endpoint).
const CONCURRENT_CALLS: usize = 4;

/// One result per symbol, in order.
pub(super) async fn latest_many(
    service: &QuoteService,
    symbols: &[Symbol],
    pinned: Option<ProviderId>,
) -> Vec<Result<LatestPrice, QuoteError>> {
    if let Some(e) = not_configured(service, symbols, pinned) {
        return e;
    }
    let order = failover::order(service, pinned);
    let mut out: Vec<Option<Result<LatestPrice, QuoteError>>> = Vec::with_capacity(symbols.len());
    let mut stale = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        let (fresh, old) = failover::cached(service, symbol, &order).await;
        out.push(fresh.map(Ok));
        stale.push(old);
    }
    let misses: Vec<usize> = (0..symbols.len()).filter(|i| out[*i].is_none()).collect();
    let wanted: Vec<Symbol> = misses.iter().map(|i| symbols[*i].clone()).collect();
    let fetched = fetch_many(service, &wanted, &order).await;
    for (i, result) in misses.into_iter().zip(fetched) {
        out[i] = Some(match result {
            Ok((recorded, route)) => Ok(recorded.answer(false, route)),
            Err(e) => failover::serve_stale(&service.inner.metrics, e, stale[i].take()),
        });
    }
    out.into_iter()
        .zip(symbols)
        .map(|(r, s)| r.unwrap_or_else(|| Err(failover::give_up(s, Vec::new()))))
        .collect()
}

/// One result per symbol, in order, without looking at the cache.
pub(super) async fn refresh_many(
    service: &QuoteService,
    symbols: &[Symbol],
    pinned: Option<ProviderId>,
) -> Vec<Result<LatestPrice, QuoteError>> {
    if let Some(e) = not_configured(service, symbols, pinned) {
        return e;
    }
    let order = failover::order(service, pinned);
    fetch_many(service, symbols, &order)
        .await
        .into_iter()
        .map(|r| r.map(|(recorded, route)| recorded.answer(false, route)))
        .collect()
}

fn not_configured(
    service: &QuoteService,
    symbols: &[Symbol],
    pinned: Option<ProviderId>,
) -> Option<Vec<Result<LatestPrice, QuoteError>>> {
    let id = pinned?;
    let first = symbols.first()?;
    service.provider(id, first).err().map(|e| {
        symbols
            .iter()
            .map(|s| {
                Err(QuoteError {
                    symbol: s.clone(),
                    ..e.clone()
                })
            })
            .collect()
    })
}

/// A call's symbols (their indexes) and what it gave: one result per symbol, or the skip.
type CallResult = (
    Vec<usize>,
    Result<Vec<Result<FetchedQuote, ProviderError>>, ProviderError>,
);

/// Walks `order` for `symbols`; each provider gets only the symbols still missing.
async fn fetch_many(
    service: &QuoteService,
    symbols: &[Symbol],
    order: &[ProviderId],
) -> Vec<Result<(Recorded, Vec<Attempt>), QuoteError>> {
    let inner = &service.inner;
    let mut routes: Vec<Vec<Attempt>> = vec![Vec::new(); symbols.len()];
    let mut done: Vec<Option<Recorded>> = vec![None; symbols.len()];
    for id in order {
        let pending: Vec<usize> = (0..symbols.len()).filter(|i| done[*i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let provider = match inner.providers.get(*id) {
            Ok(p) => p,
            Err(e) => {
                for i in pending {
                    routes[i].push(Attempt::failed(*id, e.clone()));
                }
                continue;
            }
        };
        let size = provider.max_batch().max(1);
        let calls: Vec<CallResult> = stream::iter(pending.chunks(size).map(<[usize]>::to_vec))
            .map(|chunk| {
                let provider = std::sync::Arc::clone(&provider);
                async move {
                    let asked: Vec<Symbol> = chunk.iter().map(|i| symbols[*i].clone()).collect();
                    let guards = inner.providers.guards();
                    if let Some(skip) = guards
                        .admit(*id, provider.cost(asked.len()))
                        .await
                        .as_error()
                    {
                        return (chunk, Err(skip));
                    }
                    let started = Instant::now();
                    let results: Vec<_> = provider
                        .quotes(&asked)
                        .await
                        .into_iter()
                        .map(|r| r.and_then(plausible))
                        .collect();
                    inner.metrics.millis(
                        "ProviderLatency",
                        started.elapsed().as_secs_f64() * 1000.0,
                        vec![("Provider", id.to_string())],
                    );
                    guards.record(*id, call_outcome(&results)).await;
                    (chunk, Ok(results))
                }
            })
            .buffer_unordered(CONCURRENT_CALLS)
            .collect()
            .await;
        let mut fetched = Vec::new();
        for (chunk, call) in calls {
            match call {
                Err(skip) => {
                    for i in chunk {
                        routes[i].push(Attempt {
                            provider: *id,
                            outcome: AttemptOutcome::Skipped(skip.clone()),
                        });
                    }
                }
                Ok(results) => {
                    for (i, result) in chunk.into_iter().zip(results) {
                        match result {
                            Ok(quote) => fetched.push((i, quote)),
                            Err(e) => {
                                inner.metrics.count(
                                    "ProviderError",
                                    vec![("Provider", id.to_string()), ("Kind", e.kind().into())],
                                );
                                routes[i].push(Attempt::failed(*id, e));
                            }
                        }
                    }
                }
            }
        }
        let recorded = futures::future::join_all(
            fetched
                .into_iter()
                .map(|(i, q)| async move { (i, record_fetched(inner, &symbols[i], q).await) }),
        )
        .await;
        for (i, quote) in recorded {
            routes[i].push(Attempt {
                provider: *id,
                outcome: AttemptOutcome::Served,
            });
            done[i] = Some(quote);
        }
        if order.len() > 1 {
            for route in &routes {
                if let Some(last) = route
                    .last()
                    .filter(|a| a.provider == *id && a.error().is_some())
                {
                    failover::count_failover(&inner.metrics, last);
                }
            }
        }
    }
    done.into_iter()
        .zip(routes)
        .zip(symbols)
        .map(|((quote, route), symbol)| match quote {
            Some(q) => Ok((q, route)),
            None => Err(failover::give_up(symbol, route)),
        })
        .collect()
}

/// How a batch call went for the provider's guards: fine if any symbol was answered (or
/// every symbol was unknown), else its first failure.
fn call_outcome(results: &[Result<FetchedQuote, ProviderError>]) -> Result<(), &ProviderError> {
    if results.iter().any(Result::is_ok) {
        return Ok(());
    }
    match results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .find(|e| **e != ProviderError::NotFound)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
