//! The in-process limiter: GCRA over a map in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use super::gcra::{self, Decision, Quota};
use super::{RateLimitError, RateLimiter};

/// Clients tracked before idle ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

/// Limits within this process.
pub struct LocalRateLimiter {
    started: Instant,
    tats: Mutex<HashMap<String, i64>>,
}

impl Default for LocalRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `key`.
    pub fn decide(&self, key: &str, quota: Quota) -> Decision {
        let now = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() > SWEEP_ABOVE {
            // A client whose TAT has passed has a full bucket: forgetting it changes nothing.
            tats.retain(|_, tat| *tat > now);
        }
        let (decision, new_tat) = gcra::step(tats.get(key).copied(), now, quota);
        if let Some(tat) = new_tat {
            tats.insert(key.to_owned(), tat);
        }
        decision
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, RateLimitError> {
        Ok(self.decide(key, quota))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_have_separate_buckets() {
        let limiter = LocalRateLimiter::new();
        let q = Quota {
            per_minute: 1,
            burst: 2,
        };
        let a: Vec<bool> = (0..3).map(|_| limiter.decide("a", q).allowed).collect();
        assert_eq!(a, [true, true, false]);
        assert!(limiter.decide("b", q).allowed);
    }
}
