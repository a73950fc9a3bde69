//! GCRA, the arithmetic shared by the in-process limiter and the Redis script.
//!
//! Each client has a "theoretical arrival time" (TAT): when its bucket would be empty again
//! if requests kept coming at the sustained rate. A request moves the TAT one emission
//! interval (a minute divided by the per-minute limit) into the future, and is allowed if
//! the TAT stays within `burst` intervals of now. Times are whole microseconds.

use std::time::Duration;

/// A limit: `per_minute` sustained, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

/// Why a limit cannot be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// A zero rate or burst would refuse everything; say so rather than lock a client out.
    #[error("a limit must be at least 1 per minute with a burst of at least 1")]
    Zero,
    /// Faster than one request per microsecond: the emission interval would round to zero.
    #[error(
        "a limit may be at most {MAX_PER_MINUTE} per minute (one request per microsecond), not {0}"
    )]
    TooFast(u32),
}

/// The highest countable rate: times are whole microseconds, so one request per microsecond.
pub const MAX_PER_MINUTE: u32 = 60_000_000;

impl Quota {
    /// A limit that can be counted: both numbers at least 1, and at most [`MAX_PER_MINUTE`]
    /// (a faster rate would make the emission interval zero). Built at load, so a bad limit
    /// is a start-up error rather than a failure of every request that uses it.
    pub fn new(per_minute: u32, burst: u32) -> Result<Self, QuotaError> {
        if per_minute == 0 || burst == 0 {
            return Err(QuotaError::Zero);
        }
        if per_minute > MAX_PER_MINUTE {
            return Err(QuotaError::TooFast(per_minute));
        }
        Ok(Self { per_minute, burst })
    }

    /// Microseconds between two requests at the sustained rate.
    pub fn interval_us(&self) -> i64 {
        60_000_000 / i64::from(self.per_minute.max(1))
    }

    /// How far ahead of now the TAT may be.
    pub fn tolerance_us(&self) -> i64 {
        self.interval_us() * i64::from(self.burst.max(1))
    }
}

/// The outcome of one request, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The quota's burst: requests allowed at once.
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Until the client's quota is whole again.
    pub reset_after: Duration,
    /// For a refusal: until one more request is allowed.
    pub retry_after: Option<Duration>,
}

/// One step: the decision for a request at `now_us` given the stored TAT, and the TAT to
/// store (`None` when refused: a refusal does not use up quota).
pub fn step(stored_tat: Option<i64>, now_us: i64, quota: Quota) -> (Decision, Option<i64>) {
    let interval = quota.interval_us();
    let tolerance = quota.tolerance_us();
    let tat = stored_tat.unwrap_or(now_us).max(now_us);
    let new_tat = tat + interval;
    let used = new_tat - now_us;
    if used > tolerance {
        let decision = Decision {
            allowed: false,
            limit: quota.burst,
            remaining: 0,
            reset_after: micros(tat - now_us),
            retry_after: Some(micros(used - tolerance)),
        };
        return (decision, None);
    }
    let decision = Decision {
        allowed: true,
        limit: quota.burst,
        remaining: u32::try_from((tolerance - used) / interval).unwrap_or(0),
        reset_after: micros(used),
        retry_after: None,
    };
    (decision, Some(new_tat))
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        per_minute: 60,
        burst: 3,
    };

    fn run(times_s: &[f64]) -> Vec<bool> {
        let mut tat = None;
        times_s
            .iter()
            .map(|t| {
                let (d, new_tat) = step(tat, (t * 1e6) as i64, Q);
                if new_tat.is_some() {
                    tat = new_tat;
                }
                d.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        assert_eq!(run(&[0.0, 0.0, 0.0, 0.0]), [true, true, true, false]);
        // One more per second (60 a minute) once the burst is spent.
        assert_eq!(
            run(&[0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]),
            [true, true, true, false, true, false, true]
        );
    }

    #[test]
    fn a_quiet_period_refills_the_bucket() {
        assert_eq!(
            run(&[0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0]),
            [true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn only_countable_limits_are_built() {
        assert_eq!(Quota::new(0, 1), Err(QuotaError::Zero));
        assert_eq!(Quota::new(1, 0), Err(QuotaError::Zero));
        assert_eq!(
            Quota::new(MAX_PER_MINUTE + 1, 1),
            Err(QuotaError::TooFast(MAX_PER_MINUTE + 1))
        );
        // The fastest and the slowest limits both decide without dividing by zero.
        for quota in [
            Quota::new(MAX_PER_MINUTE, u32::MAX).unwrap(),
            Quota::new(1, 1).unwrap(),
        ] {
            assert!(quota.interval_us() >= 1);
            let (decision, tat) = step(None, 0, quota);
            assert!(decision.allowed && tat.is_some());
        }
    }

    #[test]
    fn headers_count_down_and_tell_when_to_retry() {
        let (first, tat) = step(None, 0, Q);
        assert_eq!((first.remaining, first.limit), (2, 3));
        assert_eq!(first.reset_after, Duration::from_secs(1));
        let (_, tat) = step(tat, 0, Q);
        let (third, tat) = step(tat, 0, Q);
        assert_eq!(third.remaining, 0);
        let (refused, none) = step(tat, 0, Q);
        assert!(!refused.allowed && none.is_none());
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(refused.reset_after, Duration::from_secs(3));
    }
}
