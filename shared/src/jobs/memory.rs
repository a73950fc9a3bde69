//! The embedded job store: a map in this process, for running with nothing configured.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::domain::{Job, JobId, JobPage, TickId, TickOutcome, encode_cursor};
use crate::jobs::{
    JobStore, JobStoreError, OUTCOME_KEPT, OwnerLimits, OwnerUsage, broken_limit, decode_cursor,
};

/// Jobs in memory, ordered by id (so by creation time); lost when the process ends.
#[derive(Default)]
pub struct MemoryJobStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<JobId, Job>,
    usage: HashMap<String, OwnerUsage>,
    outcomes: BTreeMap<TickId, TickOutcome>,
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: &Job, limits: Option<OwnerLimits>) -> Result<(), JobStoreError> {
        let mut state = self.state.lock().await;
        if state.jobs.contains_key(&job.id) {
            return Err(JobStoreError::Conflict);
        }
        if let Some(owner) = &job.owner {
            let usage = state.usage.get(owner).copied().unwrap_or_default();
            if let Some(limits) = limits
                && let Some(kind) = broken_limit(job, usage, limits)
            {
                return Err(JobStoreError::LimitReached {
                    kind,
                    usage,
                    limits,
                });
            }
            let entry = state.usage.entry(owner.clone()).or_default();
            entry.jobs += 1;
            entry.symbol_ticks_milli += job.symbol_ticks_milli();
        }
        state.jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobStoreError> {
        Ok(self.state.lock().await.jobs.get(id).cloned())
    }

    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage, JobStoreError> {
        let end = match cursor {
            Some(c) => Bound::Excluded(decode_cursor(c)?),
            None => Bound::Unbounded,
        };
        let state = self.state.lock().await;
        let mut page: Vec<Job> = state
            .jobs
            .range((Bound::Unbounded, end))
            .rev()
            .map(|(_, j)| j)
            .filter(|j| owner.is_none() || j.owner.as_deref() == owner)
            .take(limit + 1)
            .cloned()
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
        let mut state = self.state.lock().await;
        match state.jobs.get_mut(&job.id) {
            Some(stored) if stored.version == expected_version => {
                *stored = job.clone();
                Ok(())
            }
            _ => Err(JobStoreError::Conflict),
        }
    }

    async fn record_outcome(&self, outcome: &TickOutcome) -> Result<(), JobStoreError> {
        let mut state = self.state.lock().await;
        let ran = state
            .outcomes
            .get(&outcome.id)
            .is_some_and(|o| o.ran_at.is_some());
        if outcome.ran_at.is_some() || !ran {
            state.outcomes.insert(outcome.id.clone(), outcome.clone());
        }
        // Kept as long as DynamoDB's time to live keeps them; older ones are of no use.
        let horizon = Utc::now() - OUTCOME_KEPT;
        while let Some(entry) = state.outcomes.first_entry() {
            if entry.key().due_at() >= horizon {
                break;
            }
            entry.remove();
        }
        Ok(())
    }

    async fn outcomes(
        &self,
        ids: &[TickId],
    ) -> Result<HashMap<TickId, TickOutcome>, JobStoreError> {
        let state = self.state.lock().await;
        Ok(ids
            .iter()
            .filter_map(|id| state.outcomes.get(id).map(|o| (id.clone(), o.clone())))
            .collect())
    }

    async fn delete(&self, job: &Job, expected_version: u64) -> Result<(), JobStoreError> {
        let mut state = self.state.lock().await;
        match state.jobs.get(&job.id) {
            Some(stored) if stored.version == expected_version => {}
            _ => return Err(JobStoreError::Conflict),
        }
        if let Some(gone) = state.jobs.remove(&job.id)
            && let Some(owner) = &gone.owner
            && let Some(usage) = state.usage.get_mut(owner)
        {
            usage.jobs = usage.jobs.saturating_sub(1);
            usage.symbol_ticks_milli = usage
                .symbol_ticks_milli
                .saturating_sub(gone.symbol_ticks_milli());
        }
        Ok(())
    }

    async fn due(&self, before: DateTime<Utc>) -> Result<Vec<Job>, JobStoreError> {
        let state = self.state.lock().await;
        Ok(state
            .jobs
            .values()
            .filter(|j| j.wake_at().is_some_and(|t| t < before))
            .cloned()
            .collect())
    }

    async fn usage(&self, owner: &str) -> Result<OwnerUsage, JobStoreError> {
        Ok(self
            .state
            .lock()
            .await
            .usage
            .get(owner)
            .copied()
            .unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), JobStoreError> {
        Ok(())
    }
}
