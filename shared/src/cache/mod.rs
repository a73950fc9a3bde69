//! The quote cache: an in-process first tier in front of an optional shared second tier.
//!
//! A cached entry is the whole [`Quote`], provider time included, so a hit answers exactly
//! what the provider said. Entries are kept for the *stale* lifetime; whether one is fresh
//! enough to answer without asking the provider is decided from its `fetched_at`
//! ([`TieredCache`]), so a stale entry can still stand in when the provider fails.

mod config;
mod memory;
mod redis;
mod tiered;

use async_trait::async_trait;

use crate::cause::Cause;
use crate::domain::{ProviderId, Quote, Symbol};

pub use config::CacheConfig;
pub use memory::MemoryCache;
pub use redis::RedisCache;
pub use tiered::{CacheLookup, CacheTier, TieredCache};

/// A cache operation that did not complete. Callers treat it as a miss and go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The server could not be reached, or did not answer in time.
    #[error("cache unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// A stored entry could not be read back.
    #[error("cache entry unreadable: {0}")]
    Corrupt(#[source] Cause),
}

/// The cache port, one tier of it.
#[async_trait]
pub trait QuoteCache: Send + Sync {
    /// The stored quote of `symbol` from `provider`, if any is still kept.
    async fn get(&self, provider: ProviderId, symbol: &Symbol)
    -> Result<Option<Quote>, CacheError>;

    /// Stores `quote`, replacing any older one of the same symbol and provider.
    async fn put(&self, quote: &Quote) -> Result<(), CacheError>;

    /// Whether the tier answers at all (for readiness).
    async fn ping(&self) -> Result<(), CacheError>;
}
