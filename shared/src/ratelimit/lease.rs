//! Leases: what this process holds of each client's quota in Redis, so most decisions cost
//! no round trip.
//!
//! When a client's lease is empty, one script call counts the request and takes more of its
//! quota (as many as requests of the client are waiting here, at least [`lease_size`], at most
//! [`MAX_LEASE`]), which this process then hands out locally for at
//! most [`LEASE_TTL`]; requests of the same client that arrive meanwhile wait for that call
//! (single-flight) instead of making their own. A refusal is remembered until its
//! `Retry-After` passes, so a client flooding a spent quota costs no Redis call per refused
//! request.
//!
//! Every request allowed was first taken from the quota in Redis, so the limit never
//! overshoots across containers: at most what one exact GCRA in Redis allows gets through.
//! What it costs is the other way: requests granted to this process whose waiting requests
//! gave up lapse unused after [`LEASE_TTL`] (at most `MAX_LEASE − 1` per client and process,
//! `L − 1` when no waiting request is cancelled), and a client may be refused meanwhile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gcra::{Decision, Quota};

/// Longest a leased request stays usable here; after it, it lapses unused.
pub const LEASE_TTL: Duration = Duration::from_secs(1);

/// Most requests one lease asks for, however many are waiting.
pub const MAX_LEASE: u32 = 50;

/// Clients tracked before lapsed entries are swept out.
const SWEEP_ABOVE: usize = 100_000;

/// Requests one lease takes: exact (1) for small quotas, where a request held elsewhere would
/// be a large share; then 1 % of the burst, at most 50.
pub fn lease_size(quota: Quota) -> u32 {
    if quota.burst < 200 {
        1
    } else {
        (quota.burst / 100).clamp(1, 50)
    }
}

/// What this process knows of one client.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Requests granted by Redis and not handed out yet, usable until `until`.
    tokens: u32,
    until: Instant,
    /// The client's quota left in Redis when the lease was taken.
    remaining: u32,
    reset_after: Duration,
    /// Refused by Redis: refused here too until then.
    refused: Option<(Instant, Decision)>,
    /// Requests of this client waiting for a decision in this process: a lease asks for as
    /// many (within [`MAX_LEASE`]), so a burst costs a few round trips, not one each.
    waiting: u32,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            tokens: 0,
            until: now,
            remaining: 0,
            reset_after: Duration::ZERO,
            refused: None,
            waiting: 0,
        }
    }

    fn lapsed(&self, now: Instant) -> bool {
        self.until <= now && self.refused.is_none_or(|(until, _)| until <= now) && self.waiting == 0
    }
}

/// The leases of this process.
#[derive(Default)]
pub struct Leases {
    entries: Mutex<HashMap<String, Entry>>,
}

/// One request of a client waiting for a decision; counted until dropped.
pub struct Waiting<'a> {
    leases: &'a Leases,
    key: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut entries = self
            .leases
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(self.key) {
            entry.waiting = entry.waiting.saturating_sub(1);
        }
    }
}

impl Leases {
    /// Counts a request of `key` as waiting until the guard is dropped.
    pub fn wait<'a>(&'a self, key: &'a str) -> Waiting<'a> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .entry(key.to_owned())
            .or_insert_with(|| Entry::new(now))
            .waiting += 1;
        Waiting { leases: self, key }
    }

    /// How many requests a lease of `key` should ask for: as many as are waiting, at least
    /// `size`, at most [`MAX_LEASE`].
    pub fn wanted(&self, key: &str, size: u32) -> u32 {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = entries.get(key).map_or(0, |e| e.waiting);
        waiting.clamp(size, MAX_LEASE.max(size))
    }

    /// The decision for one request of `key` from what this process holds, or `None` when it
    /// holds nothing usable (ask Redis).
    pub fn take(&self, key: &str, quota: Quota) -> Option<Decision> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(key)?;
        if entry.tokens > 0 && entry.until > now {
            entry.tokens -= 1;
            return Some(Decision {
                allowed: true,
                limit: quota.burst,
                remaining: entry.remaining + entry.tokens,
                reset_after: entry.reset_after,
                retry_after: None,
            });
        }
        match entry.refused {
            Some((until, decision)) if until > now => Some(Decision {
                retry_after: Some(until - now),
                ..decision
            }),
            _ => None,
        }
    }

    /// Records what Redis answered for `key`: `granted` requests, the first already the
    /// caller's.
    pub fn record(&self, key: &str, granted: u32, decision: Decision) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| !e.lapsed(now));
        }
        let entry = entries
            .entry(key.to_owned())
            .or_insert_with(|| Entry::new(now));
        if decision.allowed {
            // Concurrent grants of the same client add up rather than replace each other.
            let held = if entry.until > now { entry.tokens } else { 0 };
            entry.tokens = held + granted.saturating_sub(1);
            entry.until = now + LEASE_TTL;
            entry.remaining = decision.remaining;
            entry.reset_after = decision.reset_after;
            entry.refused = None;
        } else if let Some(retry) = decision.retry_after
            && !(entry.tokens > 0 && entry.until > now)
        {
            entry.refused = Some((now + retry.min(Duration::from_secs(60)), decision));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: Quota = Quota {
        per_minute: 60_000,
        burst: 1_000,
    };

    fn allowed(remaining: u32) -> Decision {
        Decision {
            allowed: true,
            limit: BIG.burst,
            remaining,
            reset_after: Duration::from_millis(10),
            retry_after: None,
        }
    }

    #[test]
    fn small_quotas_are_exact_and_large_ones_lease_a_few() {
        assert_eq!(
            lease_size(Quota {
                per_minute: 50,
                burst: 50
            }),
            1
        );
        assert_eq!(
            lease_size(Quota {
                per_minute: 600,
                burst: 600
            }),
            6
        );
        assert_eq!(
            lease_size(Quota {
                per_minute: 10_000_000,
                burst: 10_000_000
            }),
            50
        );
    }

    #[test]
    fn a_lease_hands_out_exactly_what_was_granted() {
        let leases = Leases::default();
        assert!(leases.take("k", BIG).is_none(), "nothing held: ask Redis");
        leases.record("k", 10, allowed(990));
        let handed: Vec<u32> = std::iter::from_fn(|| leases.take("k", BIG))
            .map(|d| d.remaining)
            .collect();
        assert_eq!(handed.len(), 9, "the first of the ten was the caller's own");
        assert_eq!(handed.first(), Some(&998));
        assert_eq!(handed.last(), Some(&990));
    }

    #[test]
    fn a_refusal_does_not_hide_requests_still_held() {
        let leases = Leases::default();
        leases.record("k", 10, allowed(0));
        let refused = Decision {
            allowed: false,
            limit: BIG.burst,
            remaining: 0,
            reset_after: Duration::from_secs(1),
            retry_after: Some(Duration::from_millis(1)),
        };
        leases.record("k", 0, refused);
        assert!(leases.take("k", BIG).is_some_and(|d| d.allowed));
    }

    #[test]
    fn a_refusal_is_remembered_until_retry_after() {
        let leases = Leases::default();
        let refused = Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: Duration::from_secs(60),
            retry_after: Some(Duration::from_secs(12)),
        };
        leases.record("k", 0, refused);
        let again = leases.take("k", BIG).expect("refused locally");
        assert!(!again.allowed);
        assert!(
            again
                .retry_after
                .is_some_and(|r| r <= Duration::from_secs(12))
        );
    }
}
