//! Rate limiting: the port, its adapters, and the fallback between them.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! timestamp per client). With Redis, the quota lives in Redis (one server-side script takes
//! from it), so a limit holds across every concurrent Lambda container; each process leases a
//! few requests at a time and remembers refusals ([`lease`]), so most decisions cost no round
//! trip and a flood of refused requests costs none. Without Redis (not configured, or not
//! answering), each process limits on its own with the same algorithm, and says so in its
//! logs: limits then hold per container rather than failing open or closed silently.

mod gcra;
pub mod lease;
mod local;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

use crate::single_flight::SingleFlight;

pub use gcra::{Decision, MAX_PER_MINUTE, Quota, QuotaError};
pub use lease::Leases;
pub use local::LocalRateLimiter;
pub use redis::{Grant, RedisRateLimiter};

/// How many shared leases a request waits for before asking Redis for itself alone.
const JOINS: usize = 64;

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
    shared: Option<Arc<RedisRateLimiter>>,
    leases: Arc<Leases>,
    refills: SingleFlight<String, Result<Grant, RateLimitError>>,
    local: LocalRateLimiter,
    on_local: AtomicBool,
    shared_calls: Arc<AtomicU64>,
}

impl RateLimiting {
    /// Limits through `shared` (Redis) when given, else in this process only.
    pub fn new(shared: Option<RedisRateLimiter>) -> Self {
        Self {
            on_local: AtomicBool::new(shared.is_none()),
            shared: shared.map(Arc::new),
            leases: Arc::new(Leases::default()),
            refills: SingleFlight::new(),
            local: LocalRateLimiter::new(),
            shared_calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether decisions are currently made in-process.
    pub fn is_local(&self) -> bool {
        self.on_local.load(Ordering::Relaxed)
    }

    /// One lease of `key` from Redis, shared by every request of the same client waiting for
    /// one; recorded before the waiters wake. The flag says whether this request asked.
    async fn refill(
        &self,
        shared: &Arc<RedisRateLimiter>,
        key: &str,
        quota: Quota,
    ) -> Result<(Grant, bool), RateLimitError> {
        let shared = Arc::clone(shared);
        let leases = Arc::clone(&self.leases);
        let calls = Arc::clone(&self.shared_calls);
        let owned = key.to_owned();
        let (result, leader) = self
            .refills
            .run(key.to_owned(), move || async move {
                calls.fetch_add(1, Ordering::Relaxed);
                let wanted = leases.wanted(&owned, lease::lease_size(quota));
                let grant = shared.lease(&owned, quota, wanted).await?;
                leases.record(&owned, grant.granted, grant.decision);
                Ok(grant)
            })
            .await;
        let grant = result.map_err(|e| RateLimitError(crate::cause::Cause::new(e)))??;
        Ok((grant, leader))
    }

    fn back_on_redis(&self) {
        if self.on_local.swap(false, Ordering::Relaxed) {
            info!("rate limiting back on Redis: limits hold across containers");
        }
    }

    /// Round trips to Redis so far: what the leases save is visible (and tested).
    pub fn shared_calls(&self) -> u64 {
        self.shared_calls.load(Ordering::Relaxed)
    }

    /// Counts one request of `key`. Never fails: without Redis, the in-process limiter decides.
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        if let Some(shared) = &self.shared {
            if lease::lease_size(quota) == 1 {
                // Small quotas are exact: each request asks Redis, refusals are remembered.
                if let Some(decision) = self.leases.take(key, quota) {
                    return decision;
                }
                return self.alone(shared, key, quota).await;
            }
            let _waiting = self.leases.wait(key);
            for _ in 0..JOINS {
                if let Some(decision) = self.leases.take(key, quota) {
                    return decision;
                }
                match self.refill(shared, key, quota).await {
                    Ok((grant, true)) => {
                        self.back_on_redis();
                        if !grant.decision.allowed
                            && let Some(held) = self.leases.take(key, quota)
                        {
                            // Redis has nothing left, but a concurrent lease brought some here.
                            return held;
                        }
                        return grant.decision;
                    }
                    // Another request's lease: take from what it brought, or its refusal.
                    Ok((_, false)) => continue,
                    Err(e) => {
                        if !self.on_local.swap(true, Ordering::Relaxed) {
                            warn!(error = %e, "Redis unreachable: rate limiting falls back to in-process limits, per container");
                        }
                        return self.local.decide(key, quota);
                    }
                }
            }
            // Leases kept being drained by other requests: let Redis decide this one alone.
            return self.alone(shared, key, quota).await;
        }
        self.local.decide(key, quota)
    }

    /// One request decided by Redis on its own (exactly `gcra::step` there); a refusal is
    /// remembered until its `Retry-After`.
    async fn alone(&self, shared: &RedisRateLimiter, key: &str, quota: Quota) -> Decision {
        self.shared_calls.fetch_add(1, Ordering::Relaxed);
        match shared.lease(key, quota, 1).await {
            Ok(grant) => {
                self.back_on_redis();
                self.leases.record(key, grant.granted, grant.decision);
                grant.decision
            }
            Err(e) => {
                if !self.on_local.swap(true, Ordering::Relaxed) {
                    warn!(error = %e, "Redis unreachable: rate limiting falls back to in-process limits, per container");
                }
                self.local.decide(key, quota)
            }
        }
    }
}

/// Seconds for a header: rounded up, so a client that waits that long is allowed.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}
