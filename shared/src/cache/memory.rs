//! The in-process tier: a bounded map in this container's memory.
//!
//! On Lambda it lives as long as the warm container; in the local runner, as long as the
//! process. It is also the whole cache when no Redis is configured.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::{CacheError, QuoteCache};
use crate::domain::{ProviderId, Quote, Symbol};

/// A bounded, time-limited map of quotes by provider and symbol.
pub struct MemoryCache {
    entries: Mutex<HashMap<(ProviderId, Symbol), Quote>>,
    capacity: usize,
    retention: chrono::Duration,
}

impl MemoryCache {
    /// A cache of at most `capacity` quotes, each kept `retention` after it was fetched.
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            retention: chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// The kept quote, if any.
    pub fn get_now(&self, provider: ProviderId, symbol: &Symbol) -> Option<Quote> {
        let cutoff = Utc::now() - self.retention;
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(provider, symbol.clone()))
            .filter(|q| q.fetched_at > cutoff)
            .cloned()
    }

    /// Keeps `quote` unless a newer quote of the same key is already kept.
    pub fn put_now(&self, quote: &Quote) {
        let key = (quote.provider, quote.symbol.clone());
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = entries.get(&key) {
            // The Redis tier's order: provider time first, then fetch time.
            if (existing.quote_time, existing.fetched_at) > (quote.quote_time, quote.fetched_at) {
                return;
            }
        } else if entries.len() >= self.capacity {
            self.make_room(&mut entries);
        }
        entries.insert(key, quote.clone());
    }

    /// Drops expired quotes, then, if still full, the oldest tenth: one sweep pays for many
    /// inserts, so a full cache costs no scan per insert.
    fn make_room(&self, entries: &mut HashMap<(ProviderId, Symbol), Quote>) {
        let cutoff = Utc::now() - self.retention;
        entries.retain(|_, q| q.fetched_at > cutoff);
        if entries.len() < self.capacity {
            return;
        }
        let mut times: Vec<_> = entries.values().map(|q| q.fetched_at).collect();
        let nth = (self.capacity / 10).min(times.len() - 1);
        let (_, oldest_kept, _) = times.select_nth_unstable(nth);
        let oldest_kept = *oldest_kept;
        entries.retain(|_, q| q.fetched_at > oldest_kept);
    }

    /// How many quotes are kept, expired ones included until they are swept.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl QuoteCache for MemoryCache {
    async fn get(
        &self,
        provider: ProviderId,
        symbol: &Symbol,
    ) -> Result<Option<Quote>, CacheError> {
        Ok(self.get_now(provider, symbol))
    }

    async fn put(&self, quote: &Quote) -> Result<(), CacheError> {
        self.put_now(quote);
        Ok(())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Simulated;

    fn quote(sym: &str, age_secs: i64) -> Quote {
        let s = Symbol::parse(sym).unwrap();
        let mut q = Simulated.quote_at(&s, Utc::now()).quote;
        q.fetched_at = Utc::now() - chrono::Duration::seconds(age_secs);
        q
    }

    #[test]
    fn returns_what_was_put_until_retention_ends() {
        let cache = MemoryCache::new(10, Duration::from_secs(60));
        let fresh = quote("AAPL", 1);
        cache.put_now(&fresh);
        assert_eq!(
            cache.get_now(ProviderId::Simulated, &fresh.symbol),
            Some(fresh)
        );
        let old = quote("MSFT", 61);
        cache.put_now(&old);
        assert_eq!(cache.get_now(ProviderId::Simulated, &old.symbol), None);
        assert_eq!(
            cache.get_now(ProviderId::Finnhub, &Symbol::parse("AAPL").unwrap()),
            None
        );
    }

    #[test]
    fn an_older_quote_never_replaces_a_newer_one() {
        let cache = MemoryCache::new(10, Duration::from_secs(60));
        let newer = quote("AAPL", 1);
        cache.put_now(&newer);
        cache.put_now(&quote("AAPL", 5));
        assert_eq!(
            cache.get_now(ProviderId::Simulated, &newer.symbol),
            Some(newer)
        );
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let cache = MemoryCache::new(2, Duration::from_secs(60));
        cache.put_now(&quote("A", 3));
        cache.put_now(&quote("B", 2));
        cache.put_now(&quote("C", 1));
        assert!(cache.len() <= 2);
        assert_eq!(
            cache.get_now(ProviderId::Simulated, &Symbol::parse("A").unwrap()),
            None
        );
        assert!(
            cache
                .get_now(ProviderId::Simulated, &Symbol::parse("C").unwrap())
                .is_some()
        );
    }

    #[test]
    fn a_full_cache_stays_within_capacity_and_keeps_the_newest() {
        let cache = MemoryCache::new(100, Duration::from_secs(600));
        for i in 0..1_000 {
            cache.put_now(&quote(&format!("S{i}"), 1_000 - i));
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        let newest = Symbol::parse("S999").unwrap();
        assert!(cache.get_now(ProviderId::Simulated, &newest).is_some());
    }
}
