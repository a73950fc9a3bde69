//! The embedded job store: a map in this process, for running with nothing configured.

use std::collections::BTreeMap;
use std::ops::Bound;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::domain::{Job, JobId, JobPage, encode_cursor};
use crate::jobs::{JobStore, JobStoreError, decode_cursor};

/// Jobs in memory, ordered by id (so by creation time); lost when the process ends.
#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<JobId, Job>>,
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: &Job) -> Result<(), JobStoreError> {
        let mut jobs = self.jobs.lock().await;
        if jobs.contains_key(&job.id) {
            return Err(JobStoreError::Conflict);
        }
        jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError> {
        Ok(self.jobs.lock().await.get(id).cloned())
    }

    async fn list(&self, limit: usize, cursor: Option<&str>) -> Result<JobPage, JobStoreError> {
        let start = match cursor {
            Some(c) => Bound::Excluded(decode_cursor(c)?),
            None => Bound::Unbounded,
        };
        let jobs = self.jobs.lock().await;
        let mut page: Vec<Job> = jobs
            .range((start, Bound::Unbounded))
            .take(limit + 1)
            .map(|(_, j)| j.clone())
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next_cursor = if more {
            page.last().map(|j| encode_cursor(&j.id))
        } else {
            None
        };
        Ok(JobPage {
            jobs: page,
            next_cursor,
        })
    }

    async fn replace(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        let mut jobs = self.jobs.lock().await;
        match jobs.get_mut(&job.id) {
            Some(stored) if stored.version == expected_version => {
                *stored = job.clone();
                Ok(())
            }
            _ => Err(JobStoreError::Conflict),
        }
    }

    async fn delete(&self, id: &JobId) -> Result<bool, JobStoreError> {
        Ok(self.jobs.lock().await.remove(id).is_some())
    }

    async fn ping(&self) -> Result<(), JobStoreError> {
        Ok(())
    }
}
