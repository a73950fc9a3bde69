//! The process's one connection to Redis, shared by the cache and the rate limiter.
//!
//! The connection is made lazily and re-made by the connection manager, and every
//! operation is bounded by a short timeout: a slow or absent Redis costs a request at most
//! that long, and the callers then carry on without it.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::cause::Cause;

mod config;
mod tls;

pub use config::RedisConfig;

/// A Redis operation that did not complete, or a URL that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RedisFailure(#[source] pub Cause);

/// A shared, lazily connected, time-bounded Redis connection with the deployment's key prefix.
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    key_prefix: String,
    timeout: Duration,
}

impl RedisConnection {
    /// A connection to the server of `config`. Does not connect yet; fails only on a
    /// malformed URL (without quoting it: it may hold a password).
    pub fn open(config: &RedisConfig) -> Result<Self, RedisFailure> {
        let client = tls::client(config)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.timeout);
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| RedisFailure(Cause::new(e)))?;
        Ok(Self {
            manager,
            key_prefix: config.key_prefix.clone(),
            timeout: config.timeout,
        })
    }

    /// `name` under the deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.key_prefix)
    }

    /// Runs `op` on the connection, bounded by the timeout.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.timeout, op(self.manager.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisFailure(Cause::new(e))),
            Err(_) => Err(RedisFailure(Cause::msg(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::time::Duration;

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: SecretString::from(url.to_owned()),
            key_prefix: "t:".into(),
            timeout: Duration::from_millis(100),
            ca_file: None,
        }
    }

    #[tokio::test]
    async fn a_tls_url_is_accepted_as_elasticache_with_encryption_in_transit_needs() {
        // Lazy: nothing connects, so an address that does not exist is fine here.
        assert!(RedisConnection::open(&config("rediss://cache.example.invalid:6379")).is_ok());
        assert!(RedisConnection::open(&config("redis://127.0.0.1:6379")).is_ok());
    }
}
