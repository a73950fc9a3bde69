//! Rate limiting: the port, its adapters, and the fallback between them.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! timestamp per client). With Redis, each decision is one server-side script, so a limit
//! holds across every concurrent Lambda container. Without Redis (not configured, or not
//! answering), each process limits on its own with the same algorithm, and says so in its
//! logs: limits then hold per container rather than failing open or closed silently.

mod gcra;
mod local;
mod redis;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

pub use gcra::{Decision, MAX_PER_MINUTE, Quota, QuotaError};
pub use local::LocalRateLimiter;
pub use redis::RedisRateLimiter;

/// A limiter that could not decide.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct RateLimitError(#[source] pub crate::cause::Cause);

/// The rate-limiter port: may the client `key` make one more request under `quota`?
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `key` and says whether it is allowed.
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, RateLimitError>;
}

/// The limiter the API uses: Redis when it answers, the in-process limiter when it does not.
pub struct RateLimiting {
    shared: Option<RedisRateLimiter>,
    local: LocalRateLimiter,
    on_local: AtomicBool,
}

impl RateLimiting {
    /// Limits through `shared` (Redis) when given, else in this process only.
    pub fn new(shared: Option<RedisRateLimiter>) -> Self {
        Self {
            on_local: AtomicBool::new(shared.is_none()),
            shared,
            local: LocalRateLimiter::new(),
        }
    }

    /// Whether decisions are currently made in-process.
    pub fn is_local(&self) -> bool {
        self.on_local.load(Ordering::Relaxed)
    }

    /// Counts one request of `key`. Never fails: without Redis, the in-process limiter decides.
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        if let Some(shared) = &self.shared {
            match shared.check(key, quota).await {
                Ok(decision) => {
                    if self.on_local.swap(false, Ordering::Relaxed) {
                        info!("rate limiting back on Redis: limits hold across containers");
                    }
                    return decision;
                }
                Err(e) => {
                    if !self.on_local.swap(true, Ordering::Relaxed) {
                        warn!(error = %e, "Redis unreachable: rate limiting falls back to in-process limits, per container");
                    }
                }
            }
        }
        self.local.decide(key, quota)
    }
}

/// Seconds for a header: rounded up, so a client that waits that long is allowed.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}
