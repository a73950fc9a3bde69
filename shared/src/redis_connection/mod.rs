//! The process's one connection to Redis, shared by the cache and the rate limiter.
//!
//! The connection is made lazily and re-made by the connection manager, and every
//! operation is bounded by a short timeout: a slow or absent Redis costs a request at most
//! that long, and the callers then carry on without it.
//!
//! The manager reconnects only when the connection reports itself broken. A connection
//! whose network silently died never does: every command on it times out, for ever. So an
//! operation that times out replaces the manager with a fresh (lazy) one; the next
//! operation connects anew. A timed-out request may also still be queued on the old
//! multiplexed connection, whose late answer must not be read as another command's.

use std::future::Future;
use std::sync::{Arc, Mutex};
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
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    current: Arc<Mutex<Current>>,
    key_prefix: String,
    timeout: Duration,
}

/// The manager in use, numbered so that many operations timing out on the same one replace
/// it once.
struct Current {
    manager: ConnectionManager,
    generation: u64,
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
        let manager =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .map_err(|e| RedisFailure(Cause::new(e)))?;
        Ok(Self {
            client,
            manager_config,
            current: Arc::new(Mutex::new(Current {
                manager,
                generation: 0,
            })),
            key_prefix: config.key_prefix.clone(),
            timeout: config.timeout,
        })
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces manager number `generation` (if still in use) by a new, lazily connecting one.
    fn replace(&self, generation: u64) {
        let mut current = self.current();
        if current.generation != generation {
            return;
        }
        match ConnectionManager::new_lazy_with_config(
            self.client.clone(),
            self.manager_config.clone(),
        ) {
            Ok(manager) => {
                current.manager = manager;
                current.generation += 1;
                tracing::warn!("redis timed out; the next operation reconnects");
            }
            Err(e) => tracing::warn!(error = %e, "redis timed out and could not be replaced"),
        }
    }

    /// `name` under the deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.key_prefix)
    }

    /// Runs `op` on the connection, bounded by the timeout; a timeout replaces the connection.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let (manager, generation) = {
            let current = self.current();
            (current.manager.clone(), current.generation)
        };
        match tokio::time::timeout(self.timeout, op(manager)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_timeout() {
                    self.replace(generation);
                }
                Err(RedisFailure(Cause::new(e)))
            }
            Err(_) => {
                self.replace(generation);
                Err(RedisFailure(Cause::msg(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                ))))
            }
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
