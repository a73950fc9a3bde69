//! The two tiers together, and the freshness rules.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::warn;

use super::CacheConfig;
use super::{MemoryCache, QuoteCache};
use crate::domain::{ProviderId, Quote, Symbol};

/// Which tier answered a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTier {
    /// This container's memory.
    Local,
    /// The shared tier (Redis).
    Shared,
}

impl CacheTier {
    /// `local` or `shared`, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheTier::Local => "local",
            CacheTier::Shared => "shared",
        }
    }
}

/// What the cache knows of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup {
    /// A quote young enough to answer with.
    Fresh(Quote, CacheTier),
    /// Nothing fresh; possibly a stale quote to fall back on if the provider fails.
    Miss {
        /// The newest kept quote older than the fresh lifetime, if any.
        stale: Option<Quote>,
    },
}

/// The in-process tier in front of an optional shared one.
pub struct TieredCache {
    local: MemoryCache,
    shared: Option<Arc<dyn QuoteCache>>,
    fresh_ttl: chrono::Duration,
}

impl TieredCache {
    /// Tiers sized and timed by `config`; `shared` is `None` when Redis is not configured.
    pub fn new(config: &CacheConfig, shared: Option<Arc<dyn QuoteCache>>) -> Self {
        Self {
            local: MemoryCache::new(config.l1_capacity, config.stale_ttl),
            shared,
            fresh_ttl: to_chrono(config.fresh_ttl),
        }
    }

    /// The shared tier, if there is one.
    pub fn shared(&self) -> Option<&Arc<dyn QuoteCache>> {
        self.shared.as_ref()
    }

    /// Looks in the local tier, then the shared one. A failing shared tier counts as a miss.
    pub async fn lookup(&self, provider: ProviderId, symbol: &Symbol) -> CacheLookup {
        let local = self.local.get_now(provider, symbol);
        if let Some(q) = local.as_ref().filter(|q| self.is_fresh(q)) {
            return CacheLookup::Fresh(q.clone(), CacheTier::Local);
        }
        let shared = match &self.shared {
            None => None,
            Some(tier) => match tier.get(provider, symbol).await {
                Ok(found) => found,
                Err(e) => {
                    warn!(error = %e, %symbol, "shared cache read failed; treating as a miss");
                    None
                }
            },
        };
        if let Some(q) = shared.as_ref().filter(|q| self.is_fresh(q)) {
            self.local.put_now(q);
            return CacheLookup::Fresh(q.clone(), CacheTier::Shared);
        }
        let stale = [local, shared]
            .into_iter()
            .flatten()
            .max_by_key(|q| q.fetched_at);
        CacheLookup::Miss { stale }
    }

    /// Stores a newly fetched quote in both tiers. A failing shared tier is logged, not fatal.
    pub async fn store(&self, quote: &Quote) {
        self.local.put_now(quote);
        if let Some(tier) = &self.shared
            && let Err(e) = tier.put(quote).await
        {
            warn!(error = %e, symbol = %quote.symbol, "shared cache write failed");
        }
    }

    fn is_fresh(&self, quote: &Quote) -> bool {
        Utc::now() - quote.fetched_at < self.fresh_ttl
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Simulated;

    fn config() -> CacheConfig {
        CacheConfig {
            fresh_ttl: Duration::from_secs(10),
            stale_ttl: Duration::from_secs(100),
            l1_capacity: 100,
        }
    }

    fn quote_aged(secs: i64) -> Quote {
        let s = Symbol::parse("AAPL").unwrap();
        let mut q = Simulated.quote_at(&s, Utc::now()).quote;
        q.fetched_at = Utc::now() - chrono::Duration::seconds(secs);
        q
    }

    #[tokio::test]
    async fn young_entries_are_fresh_older_ones_stale_oldest_gone() {
        let cache = TieredCache::new(&config(), None);
        let sym = Symbol::parse("AAPL").unwrap();
        assert_eq!(
            cache.lookup(ProviderId::Simulated, &sym).await,
            CacheLookup::Miss { stale: None }
        );
        let fresh = quote_aged(2);
        cache.store(&fresh).await;
        assert_eq!(
            cache.lookup(ProviderId::Simulated, &sym).await,
            CacheLookup::Fresh(fresh, CacheTier::Local)
        );
        let cache = TieredCache::new(&config(), None);
        let stale = quote_aged(50);
        cache.store(&stale).await;
        assert_eq!(
            cache.lookup(ProviderId::Simulated, &sym).await,
            CacheLookup::Miss { stale: Some(stale) }
        );
        let cache = TieredCache::new(&config(), None);
        cache.store(&quote_aged(150)).await;
        assert_eq!(
            cache.lookup(ProviderId::Simulated, &sym).await,
            CacheLookup::Miss { stale: None }
        );
    }

    #[tokio::test]
    async fn a_fresh_shared_entry_fills_the_local_tier() {
        let shared = Arc::new(MemoryCache::new(10, Duration::from_secs(100)));
        let q = quote_aged(1);
        shared.put_now(&q);
        let cache = TieredCache::new(&config(), Some(shared));
        assert_eq!(
            cache.lookup(ProviderId::Simulated, &q.symbol).await,
            CacheLookup::Fresh(q.clone(), CacheTier::Shared)
        );
        assert_eq!(
            cache.lookup(ProviderId::Simulated, &q.symbol).await,
            CacheLookup::Fresh(q, CacheTier::Local)
        );
    }
}
