//! Job administration, for the API: create, get, list, pause, resume, delete.
//!
//! The order of the writes keeps the job store and the scheduler consistent whatever call
//! fails (see the module documentation of [`super`]).
//!
//! Not instrumented with spans of its own: it runs inside an API request, whose span (and
//! request id) every line logged here must keep.

use std::sync::Arc;

use chrono::Utc;
use tracing::{error, info, warn};

use super::{MAX_PAGE, NewJob, PollingError, update, validate};
use crate::domain::{Job, JobId, JobPage, JobStatus, ProviderId};
use crate::jobs::JobStore;
use crate::scheduler::Scheduler;

/// The job administration use case.
#[derive(Clone)]
pub struct JobAdmin {
    jobs: Arc<dyn JobStore>,
    scheduler: Arc<dyn Scheduler>,
    default_provider: ProviderId,
}

impl JobAdmin {
    /// Jobs kept in `jobs` and run by `scheduler`; a job that names no provider gets
    /// `default_provider`.
    pub fn new(
        jobs: Arc<dyn JobStore>,
        scheduler: Arc<dyn Scheduler>,
        default_provider: ProviderId,
    ) -> Self {
        Self {
            jobs,
            scheduler,
            default_provider,
        }
    }

    /// The same use case over other ports (tests inject failing adapters this way).
    pub fn with_ports(mut self, jobs: Arc<dyn JobStore>, scheduler: Arc<dyn Scheduler>) -> Self {
        self.jobs = jobs;
        self.scheduler = scheduler;
        self
    }

    /// The job store.
    pub fn jobs(&self) -> &Arc<dyn JobStore> {
        &self.jobs
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Arc<dyn Scheduler> {
        &self.scheduler
    }

    /// The provider used when a request names none.
    pub fn default_provider(&self) -> ProviderId {
        self.default_provider
    }

    /// Validates `new`, stores the job and schedules it; the job is active when this
    /// returns. On failure, nothing is left active or scheduled.
    pub async fn create(&self, new: NewJob) -> Result<Job, PollingError> {
        let symbols = validate(&new)?;
        let pending = Job::new(
            symbols,
            new.interval_secs,
            new.provider,
            JobStatus::Pending,
            Utc::now(),
        );
        self.jobs.create(&pending).await?;
        if let Err(e) = self.scheduler.schedule(&pending).await {
            // The scheduler removed any half-made rule; the job must go too.
            if let Err(d) = self.jobs.delete(&pending.id).await {
                error!(job_id = %pending.id, error = %d, "job left pending (pollers ignore it); delete it");
            }
            return Err(e.into());
        }
        let mut active = pending.clone();
        active.status = JobStatus::Active;
        active.version = pending.version + 1;
        if let Err(e) = self.jobs.replace(&active, pending.version).await {
            // Not activated: take the rule away first, and the job only once it is gone.
            match self.scheduler.unschedule(&pending.id).await {
                Ok(()) => {
                    if let Err(d) = self.jobs.delete(&pending.id).await {
                        error!(job_id = %pending.id, error = %d, "job left pending without a rule");
                    }
                }
                Err(u) => {
                    error!(job_id = %pending.id, error = %u, "rule of a pending job left behind (the poller ignores it)");
                }
            }
            return Err(e.into());
        }
        info!(job_id = %active.id, symbols = active.symbols.len(), interval = active.interval_secs, "polling job created");
        Ok(active)
    }

    /// The job `id`.
    pub async fn get(&self, id: &JobId) -> Result<Job, PollingError> {
        self.jobs
            .get(id)
            .await?
            .ok_or_else(|| PollingError::NotFound(id.clone()))
    }

    /// One page of jobs (`limit` is clamped to 1..=[`MAX_PAGE`]).
    pub async fn list(&self, limit: usize, cursor: Option<&str>) -> Result<JobPage, PollingError> {
        Ok(self.jobs.list(limit.clamp(1, MAX_PAGE), cursor).await?)
    }

    /// Stops and deletes job `id`: paused first, then its rule removed, then the job.
    /// If a step fails, the job is left paused (and retrying the delete finishes it).
    pub async fn delete(&self, id: &JobId) -> Result<(), PollingError> {
        update(&self.jobs, id, |job| {
            if job.status == JobStatus::Active {
                job.status = JobStatus::Paused;
                true
            } else {
                false
            }
        })
        .await?;
        self.scheduler.unschedule(id).await?;
        if self.jobs.delete(id).await? {
            info!(job_id = %id, "polling job deleted");
            Ok(())
        } else {
            Err(PollingError::NotFound(id.clone()))
        }
    }

    /// Pauses job `id`: it stays stored but is not polled. Idempotent.
    pub async fn pause(&self, id: &JobId) -> Result<Job, PollingError> {
        let job = self
            .update_job(id, |job| {
                let change = job.status != JobStatus::Paused;
                job.status = JobStatus::Paused;
                change
            })
            .await?;
        // A rule left behind only invokes a poller that does nothing for a paused job.
        if let Err(e) = self.scheduler.unschedule(id).await {
            warn!(job_id = %id, error = %e, "paused, but its rule could not be removed");
        }
        Ok(job)
    }

    /// Resumes job `id`: schedules it again, then marks it active. Idempotent.
    pub async fn resume(&self, id: &JobId) -> Result<Job, PollingError> {
        let job = self.get(id).await?;
        self.scheduler.schedule(&job).await?;
        let result = self
            .update_job(id, |job| {
                let change = job.status != JobStatus::Active;
                if change {
                    job.status = JobStatus::Active;
                    // Due now: resuming does not replay the ticks missed while paused.
                    job.next_run_at = Utc::now();
                }
                change
            })
            .await;
        if result.is_err()
            && let Err(e) = self.scheduler.unschedule(id).await
        {
            warn!(job_id = %id, error = %e, "resume failed and its rule could not be removed");
        }
        result
    }

    async fn update_job(
        &self,
        id: &JobId,
        change: impl FnMut(&mut Job) -> bool,
    ) -> Result<Job, PollingError> {
        update(&self.jobs, id, change).await
    }
}
