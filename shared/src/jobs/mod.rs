//! Polling jobs: what to poll, how often, and what happened on the last run.
//!
//! A job is stored through the [`JobStore`] port (DynamoDB on AWS and on the local stack,
//! in memory when nothing is configured). Every write after the first is conditional on the
//! job's `version`, so two pollers that race for the same tick cannot both run it: the
//! second one's claim fails with [`JobStoreError::Conflict`].

pub mod dynamodb;
mod memory;

use async_trait::async_trait;

use crate::cause::Cause;
use crate::domain::{Job, JobId, JobPage};

pub use dynamodb::{DynamoJobStore, DynamoJobsConfig, JOBS_TABLE_KEY};
pub use memory::MemoryJobStore;

/// A job store operation that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobStoreError {
    /// The job changed (or appeared, or went) since it was read: the write was not made.
    #[error("the job was changed by someone else")]
    Conflict,
    /// The listing cursor was not issued by this store.
    #[error("invalid cursor")]
    BadCursor,
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
    /// Stores a new job; [`JobStoreError::Conflict`] if its id is taken.
    async fn create(&self, job: &Job) -> Result<(), JobStoreError>;

    /// The job with `id`, if there is one.
    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError>;

    /// Up to `limit` jobs after `cursor` (from a previous page).
    async fn list(&self, limit: usize, cursor: Option<&str>) -> Result<JobPage, JobStoreError>;

    /// Replaces the stored job with `job` if the stored version is still
    /// `expected_version`; else [`JobStoreError::Conflict`] (also when it is gone).
    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError>;

    /// Deletes the job; whether there was one.
    async fn delete(&self, id: &JobId) -> Result<bool, JobStoreError>;

    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), JobStoreError>;
}

/// The id `cursor` names, or [`JobStoreError::BadCursor`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<JobId, JobStoreError> {
    crate::domain::decode_cursor(cursor).ok_or(JobStoreError::BadCursor)
}
