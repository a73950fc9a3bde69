//! Redis adapter of the cache port: the tier shared by every container.
//!
//! Connections are made lazily and re-made by the connection manager, and every operation
//! is bounded by a short timeout: a slow or absent Redis costs a request at most that long
//! and is then treated as a miss, so the service keeps answering from the provider.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use super::{CacheError, QuoteCache};
use crate::config::RedisConfig;
use crate::domain::{ProviderId, Quote, Symbol};

/// The Redis tier.
pub struct RedisCache {
    connection: ConnectionManager,
    key_prefix: String,
    timeout: Duration,
    retention: Duration,
}

impl RedisCache {
    /// A cache on the server of `config`, keeping each quote `retention` after it was
    /// fetched. Does not connect yet; fails only on a malformed URL.
    pub fn new(config: &RedisConfig, retention: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(config.url.expose_secret())
            .map_err(|e| CacheError::Unavailable(format!("invalid REDIS_URL: {:?}", e.kind())))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.timeout);
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| CacheError::Unavailable(e.to_string()))?;
        Ok(Self {
            connection,
            key_prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            retention,
        })
    }

    fn key(&self, provider: ProviderId, symbol: &Symbol) -> String {
        format!(
            "{}quote:{}:{}",
            self.key_prefix,
            provider.as_str(),
            symbol.as_str()
        )
    }

    async fn bounded<T>(
        &self,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CacheError::Unavailable(e.to_string())),
            Err(_) => Err(CacheError::Unavailable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

#[async_trait]
impl QuoteCache for RedisCache {
    async fn get(
        &self,
        provider: ProviderId,
        symbol: &Symbol,
    ) -> Result<Option<Quote>, CacheError> {
        let mut conn = self.connection.clone();
        let key = self.key(provider, symbol);
        let raw: Option<Vec<u8>> = self.bounded(conn.get(&key)).await?;
        raw.map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| CacheError::Corrupt(format!("{key}: {e}")))
        })
        .transpose()
    }

    async fn put(&self, quote: &Quote) -> Result<(), CacheError> {
        let age = (Utc::now() - quote.fetched_at).to_std().unwrap_or_default();
        let Some(remaining) = self.retention.checked_sub(age).filter(|d| !d.is_zero()) else {
            return Ok(());
        };
        let value = serde_json::to_vec(quote).map_err(|e| CacheError::Corrupt(e.to_string()))?;
        let key = self.key(quote.provider, &quote.symbol);
        let millis = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut conn = self.connection.clone();
        self.bounded(conn.pset_ex::<_, _, ()>(&key, value, millis))
            .await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.connection.clone();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(|_| ())
    }
}
