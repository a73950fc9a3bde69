//! Redis adapter of the cache port: the tier shared by every container.
//!
//! Entries are the whole quote as JSON under `{prefix}quote:{provider}:{symbol}`, expiring
//! at the end of their stale lifetime. A failing Redis is reported to the caller, which
//! treats it as a miss, so the service keeps answering from the provider.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use redis::AsyncCommands;

use super::{CacheError, QuoteCache};
use crate::cause::Cause;
use crate::domain::{ProviderId, Quote, Symbol};
use crate::redis_connection::RedisConnection;

/// The Redis tier.
pub struct RedisCache {
    connection: RedisConnection,
    retention: Duration,
}

impl RedisCache {
    /// A cache over `connection`, keeping each quote `retention` after it was fetched.
    pub fn new(connection: RedisConnection, retention: Duration) -> Self {
        Self {
            connection,
            retention,
        }
    }

    fn key(&self, provider: ProviderId, symbol: &Symbol) -> String {
        self.connection
            .key(&format!("quote:{}:{}", provider.as_str(), symbol.as_str()))
    }
}

#[async_trait]
impl QuoteCache for RedisCache {
    async fn get(
        &self,
        provider: ProviderId,
        symbol: &Symbol,
    ) -> Result<Option<Quote>, CacheError> {
        let key = self.key(provider, symbol);
        let raw: Option<Vec<u8>> = self
            .connection
            .run(|mut c| async move { c.get(&key).await })
            .await
            .map_err(|e| CacheError::Unavailable(e.0))?;
        raw.map(|bytes: Vec<u8>| {
            serde_json::from_slice(&bytes).map_err(|e| {
                CacheError::Corrupt(Cause::msg(format!("{}: {e}", self.key(provider, symbol))))
            })
        })
        .transpose()
    }

    async fn put(&self, quote: &Quote) -> Result<(), CacheError> {
        let age = (Utc::now() - quote.fetched_at).to_std().unwrap_or_default();
        let Some(remaining) = self.retention.checked_sub(age).filter(|d| !d.is_zero()) else {
            return Ok(());
        };
        let value = serde_json::to_vec(quote).map_err(|e| CacheError::Corrupt(Cause::new(e)))?;
        let key = self.key(quote.provider, &quote.symbol);
        let millis = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.connection
            .run(|mut c| async move { c.pset_ex::<_, _, ()>(&key, value, millis).await })
            .await
            .map_err(|e| CacheError::Unavailable(e.0))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.connection
            .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
            .map_err(|e| CacheError::Unavailable(e.0))
    }
}
