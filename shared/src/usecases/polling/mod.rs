//! Polling jobs: their rules, and the use cases built on them.
//!
//! - [`JobAdmin`] (`admin.rs`): creating, inspecting, pausing, resuming and deleting jobs,
//!   for the API, each change one conditional write;
//! - [`WakeUp`] (`wakeup.rs`): once a minute, claims the ticks due in the coming minute and
//!   hands them to the tick queue, then re-publishes undelivered events;
//! - [`TickRunner`] (`ticks.rs`): runs one shared tick from the queue.
//!
//! The job store is the schedule: an active job is due through the store's index, a paused
//! or deleted one is not, so there is nothing else to keep consistent. A tick is claimed
//! before it is sent, by a write conditional on the job's version that moves `next_run_at`
//! past the claimed window; a wake-up that loses the race skips the job, and a pause that
//! loses it retries on the new version.

mod admin;
mod plan;
mod ticks;
mod wakeup;

use std::time::Duration;

use crate::config::{ConfigError, Env};
use crate::domain::bounded::check_bounded;
use crate::domain::{JobId, ProviderId, Symbol};
use crate::jobs::JobStoreError;
use crate::scheduler::SchedulerError;

pub use admin::{JobAdmin, Scope};
pub use plan::{Lanes, MAX_JOBS_PER_TICK, Plan, group_ticks, plan};
pub use ticks::{RunOutcome, SymbolFailure, TickReport, TickRunner};
pub use wakeup::{WakeUp, WakeUpReport};

/// Shortest interval between two ticks, in seconds.
pub const MIN_INTERVAL_SECS: u32 = 10;
/// Longest interval between two ticks, in seconds (a day).
pub const MAX_INTERVAL_SECS: u32 = 86_400;
/// Most symbols one job may poll.
pub const MAX_SYMBOLS: usize = 50;
/// Most jobs one page of a listing holds.
pub const MAX_PAGE: usize = 100;

/// How many times a read-modify-write is retried when a concurrent writer wins.
const WRITE_ATTEMPTS: usize = 5;

/// How long the wake-up claims ahead: one period of the `rate(1 minute)` rule.
pub const TICK_WINDOW: Duration = Duration::from_secs(60);
/// Extra look-ahead of a wake-up beyond [`TICK_WINDOW`], so a rule that fires a little late
/// does not leave a tick to be claimed late by the next one.
pub const WINDOW_OVERLAP: Duration = Duration::from_secs(5);

/// What a new job asks for, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The symbols, already parsed; duplicates are removed.
    pub symbols: Vec<Symbol>,
    /// Seconds between ticks.
    pub interval_secs: u32,
    /// The provider to ask.
    pub provider: ProviderId,
}

/// How polling uses the providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    /// Most provider calls of one tick in flight at once.
    pub concurrency: usize,
    /// Finnhub calls per minute all pollers together may make (its free tier allows 60).
    pub finnhub_calls_per_minute: u32,
    /// How far ahead a wake-up claims ticks ([`TICK_WINDOW`]; shorter only in tests).
    pub tick_window: Duration,
    /// How long before its invocation's deadline the poller starts nothing more.
    pub deadline_margin: Duration,
    /// How far beyond the coming window a wake-up claims: with a minute of lead, each
    /// wake-up claims the minute after next, so however long its claims take (10,000 jobs
    /// are 10,000 conditional writes), the ticks are in the queue before they are due.
    pub claim_lead: Duration,
}

impl PollSettings {
    /// `POLL_CONCURRENCY`, `POLL_FINNHUB_CALLS_PER_MINUTE` (Finnhub's free tier allows 60),
    /// `POLL_TICK_WINDOW_SECONDS` (default 60: the period of a `rate(1 minute)` rule; shorter
    /// only in tests), `POLL_DEADLINE_MARGIN_MS` (default 2000: what an invocation keeps
    /// in hand before its deadline), `POLL_CLAIM_LEAD_SECONDS` (default 0; the stack sets 60).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            concurrency: env.number("POLL_CONCURRENCY", 8, 1..=64)?,
            finnhub_calls_per_minute: env.number(
                "POLL_FINNHUB_CALLS_PER_MINUTE",
                60,
                1..=100_000,
            )?,
            tick_window: Duration::from_secs(env.number("POLL_TICK_WINDOW_SECONDS", 60, 1..=60)?),
            deadline_margin: Duration::from_millis(env.number(
                "POLL_DEADLINE_MARGIN_MS",
                2_000,
                100..=60_000,
            )?),
            // SQS delays messages by at most 15 minutes: lead and window stay well inside.
            claim_lead: Duration::from_secs(env.number("POLL_CLAIM_LEAD_SECONDS", 0, 0..=600)?),
        })
    }
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            finnhub_calls_per_minute: 60,
            tick_window: TICK_WINDOW,
            deadline_margin: Duration::from_secs(2),
            claim_lead: Duration::ZERO,
        }
    }
}

/// Why a polling operation did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollingError {
    /// The request breaks a rule of jobs (symbol count, interval range).
    #[error("{0}")]
    Invalid(String),
    /// There is no job with that id.
    #[error("no polling job {0}")]
    NotFound(JobId),
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] JobStoreError),
    /// The tick queue failed.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

/// The rules of a job: 1 to [`MAX_SYMBOLS`] distinct symbols, an interval of
/// [`MIN_INTERVAL_SECS`] to [`MAX_INTERVAL_SECS`] seconds. Returns the distinct symbols.
pub fn validate(new: &NewJob) -> Result<Vec<Symbol>, PollingError> {
    let mut symbols: Vec<Symbol> = Vec::with_capacity(new.symbols.len());
    for s in &new.symbols {
        if !symbols.contains(s) {
            symbols.push(s.clone());
        }
    }
    if symbols.is_empty() {
        return Err(PollingError::Invalid(
            "`symbols` must hold at least one symbol".into(),
        ));
    }
    if symbols.len() > MAX_SYMBOLS {
        return Err(PollingError::Invalid(format!(
            "`symbols` may hold at most {MAX_SYMBOLS} distinct symbols, got {}",
            symbols.len()
        )));
    }
    check_bounded(new.interval_secs, MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS)
        .map_err(|e| PollingError::Invalid(format!("invalid `interval` (seconds): {e}")))?;
    Ok(symbols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(symbols: &[&str], interval: u32) -> NewJob {
        NewJob {
            symbols: symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
            interval_secs: interval,
            provider: ProviderId::Simulated,
        }
    }

    #[test]
    fn symbols_are_deduplicated_in_order() {
        let s = validate(&new(&["msft", "AAPL", "MSFT"], 10)).unwrap();
        assert_eq!(
            s.iter().map(Symbol::as_str).collect::<Vec<_>>(),
            ["MSFT", "AAPL"]
        );
    }

    #[test]
    fn limits_are_enforced() {
        assert!(validate(&new(&[], 10)).is_err());
        assert!(validate(&new(&["A"], 9)).is_err());
        assert!(validate(&new(&["A"], 86_401)).is_err());
        assert!(validate(&new(&["A"], 86_400)).is_ok());
        let many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(validate(&new(&refs, 60)).is_err());
        assert!(validate(&new(&refs[..50], 60)).is_ok());
    }
}
