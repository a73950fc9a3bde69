//! Polling jobs: what to poll, how often, and what happened on the last run.
//!
//! What a shared tick did is recorded once, as its outcome ([`JobStore::record_outcome`]),
//! not on each of its jobs; a job counts the outcomes of its ticks when it is next claimed
//! (see `domain::tick_outcome`).
//!
//! A job is stored through the [`JobStore`] port (DynamoDB on AWS and on the local stack,
//! in memory when nothing is configured). The store is also the schedule: an active job is
//! found by its next due time ([`JobStore::due`]), so there is nothing to create elsewhere
//! and nothing to keep consistent with it.
//!
//! Every change of a job (claiming its ticks, pausing, resuming, deleting) is one write
//! conditional on the job's `version`, so two writers that race cannot both win: the
//! second one gets [`JobStoreError::Conflict`]. Creating and deleting also keep the owner's
//! usage (jobs, symbol-ticks per minute) in the same atomic write, so a limit holds under
//! concurrent requests.

pub mod dynamodb;
mod memory;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::cause::Cause;
use crate::domain::{Job, JobId, JobPage, TickId, TickOutcome};

pub use dynamodb::{DynamoJobStore, DynamoJobsConfig, JOBS_TABLE_KEY};
pub use memory::MemoryJobStore;

/// How long a tick's outcome is kept: long enough that a paused job's uncounted ticks are
/// still there when it is read or resumed within a week.
pub const OUTCOME_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// What one owner may hold: checked atomically when a job is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerLimits {
    /// Most jobs (active or paused).
    pub max_jobs: u32,
    /// Most symbol-ticks per minute across its jobs, in thousandths
    /// ([`Job::symbol_ticks_milli`]).
    pub max_symbol_ticks_milli: u64,
}

/// What one owner holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnerUsage {
    /// Jobs (active or paused).
    pub jobs: u64,
    /// Symbol-ticks per minute across them, in thousandths.
    pub symbol_ticks_milli: u64,
}

/// Which limit a new job would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// [`OwnerLimits::max_jobs`].
    MaxJobs,
    /// [`OwnerLimits::max_symbol_ticks_milli`].
    SymbolTicksPerMinute,
}

/// A job store operation that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobStoreError {
    /// The job changed (or appeared, or went) since it was read: the write was not made.
    #[error("the job was changed by someone else")]
    Conflict,
    /// The listing cursor was not issued by this store.
    #[error("invalid cursor")]
    BadCursor,
    /// The owner's usage plus the new job would break a limit: nothing was written.
    #[error("limit {kind:?} reached: {usage:?} of {limits:?}")]
    LimitReached {
        /// The limit broken.
        kind: LimitKind,
        /// The owner's usage without the new job.
        usage: OwnerUsage,
        /// The owner's limits.
        limits: OwnerLimits,
    },
    /// The store could not be reached or refused the request.
    #[error("job store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// A stored item could not be read as a job.
    #[error("stored job is malformed: {0}")]
    Malformed(#[source] Cause),
}

/// The job store port.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores a new job and adds it to its owner's usage, in one atomic write, refused with
    /// [`JobStoreError::LimitReached`] when `limits` would be broken;
    /// [`JobStoreError::Conflict`] if its id is taken.
    async fn create(&self, job: &Job, limits: Option<OwnerLimits>) -> Result<(), JobStoreError>;

    /// The job with `id`, if there is one.
    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError>;

    /// Up to `limit` jobs of `owner` (every job when `None`), newest first, after `cursor`
    /// (from a previous page).
    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage, JobStoreError>;

    /// Writes `job` whole (status, schedule, counted statistics, pending ticks) if the
    /// stored version is still `expected_version`; else [`JobStoreError::Conflict`] (also
    /// when it is gone). Whether the job is due follows its status and `next_run_at`.
    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError>;

    /// Records what a shared tick did: one write however many jobs it served. An outcome of
    /// a tick that did not run never replaces one of a run of the same tick.
    async fn record_outcome(&self, outcome: &TickOutcome) -> Result<(), JobStoreError>;

    /// The recorded outcomes of `ids` (those that have one), in one read per hundred.
    async fn outcomes(&self, ids: &[TickId])
    -> Result<HashMap<TickId, TickOutcome>, JobStoreError>;

    /// Deletes `job` if its stored version is still `expected_version`, taking it off its
    /// owner's usage in the same write; else [`JobStoreError::Conflict`].
    async fn delete(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError>;

    /// Every job the wake-up has something to do for before `before` ([`Job::wake_at`]
    /// earlier: an active job's next tick, a paused job's last ticks to count), read through
    /// an index of due jobs, never a scan of all jobs.
    async fn due(&self, before: DateTime<Utc>) -> Result<Vec<Job>, JobStoreError>;

    /// What `owner` holds now.
    async fn usage(&self, owner: &str) -> Result<OwnerUsage, JobStoreError>;

    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), JobStoreError>;
}

/// The id `cursor` names, or [`JobStoreError::BadCursor`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<JobId, JobStoreError> {
    crate::domain::decode_cursor(cursor).ok_or(JobStoreError::BadCursor)
}

/// Which limit `job` would break on top of `usage`, if any.
pub(crate) fn broken_limit(job: &Job, usage: OwnerUsage, limits: OwnerLimits) -> Option<LimitKind> {
    if usage.jobs >= u64::from(limits.max_jobs) {
        Some(LimitKind::MaxJobs)
    } else if usage.symbol_ticks_milli + job.symbol_ticks_milli() > limits.max_symbol_ticks_milli {
        Some(LimitKind::SymbolTicksPerMinute)
    } else {
        None
    }
}
