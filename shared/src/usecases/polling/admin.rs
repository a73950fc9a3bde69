//! Job administration, for the API: create, get, list, pause, resume, delete.
//!
//! Each change is one write conditional on the job's version (creating and deleting also
//! change the owner's usage in the same atomic write), so concurrent changes cannot undo
//! each other: a writer that read an older version retries on the new one. Creating and
//! resuming claim the job's ticks of the coming minute in that same write and send them to
//! the tick queue, so the first tick is at once rather than at the next wake-up.
//!
//! Not instrumented with spans of its own: it runs inside an API request, whose span (and
//! request id) every line logged here must keep.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::plan::{Lanes, group_ticks, plan};
use super::{MAX_PAGE, NewJob, PollSettings, PollingError, WRITE_ATTEMPTS, validate};
use crate::domain::{Job, JobId, JobPage, JobStatus, ProviderId, TickId};
use crate::jobs::{JobStore, JobStoreError, OwnerLimits};
use crate::scheduler::TickQueue;
use crate::telemetry::Metrics;

/// Whose jobs a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every job: an admin key, or a service without API keys (single-tenant).
    All,
    /// Only the jobs this owner (an API key's name) created.
    Owner(String),
}

impl Scope {
    fn sees(&self, job: &Job) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(owner) => job.owner.as_deref() == Some(owner.as_str()),
        }
    }
}

/// The job administration use case.
#[derive(Clone)]
pub struct JobAdmin {
    jobs: Arc<dyn JobStore>,
    queue: Arc<dyn TickQueue>,
    default_provider: ProviderId,
    settings: PollSettings,
    metrics: Metrics,
}

impl JobAdmin {
    /// Jobs kept in `jobs`, their first ticks sent to `queue`; a job that names no provider
    /// gets `default_provider`.
    pub fn new(
        jobs: Arc<dyn JobStore>,
        queue: Arc<dyn TickQueue>,
        default_provider: ProviderId,
        settings: PollSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            jobs,
            queue,
            default_provider,
            settings,
            metrics,
        }
    }

    /// The same use case over other ports (tests inject gated adapters this way).
    pub fn with_ports(mut self, jobs: Arc<dyn JobStore>, queue: Arc<dyn TickQueue>) -> Self {
        self.jobs = jobs;
        self.queue = queue;
        self
    }

    /// The job store.
    pub fn jobs(&self) -> &Arc<dyn JobStore> {
        &self.jobs
    }

    /// The provider of jobs that name none.
    pub fn default_provider(&self) -> ProviderId {
        self.default_provider
    }

    /// Validates and stores a new active job of `owner`, within `limits` (checked in the
    /// same write), and sends its ticks of the coming minute, the first at once.
    pub async fn create(
        &self,
        new: NewJob,
        owner: Option<String>,
        limits: Option<OwnerLimits>,
    ) -> Result<Job, PollingError> {
        let symbols = validate(&new)?;
        let now = Utc::now();
        let mut job = Job::new(
            symbols,
            new.interval_secs,
            new.provider,
            JobStatus::Active,
            now,
        )
        .owned_by(owner);
        let lanes = Lanes::new([&job]);
        let ticks = self.claim_window(&mut job, &lanes, now);
        self.jobs.create(&job, limits).await?;
        self.send(&job, &lanes, ticks, now).await;
        info!(job_id = %job.id, symbols = job.symbols.len(), interval = job.interval_secs, "polling job created");
        Ok(job)
    }

    /// The job `id`, if `scope` sees it (else [`PollingError::NotFound`], as if absent),
    /// with the outcomes of its ticks recorded so far.
    pub async fn get(&self, scope: &Scope, id: &JobId) -> Result<Job, PollingError> {
        let job = self.stored(scope, id).await?;
        Ok(self.seen_one(job).await)
    }

    /// The job `id` as stored, if `scope` sees it.
    async fn stored(&self, scope: &Scope, id: &JobId) -> Result<Job, PollingError> {
        self.jobs
            .get(id)
            .await?
            .filter(|job| scope.sees(job))
            .ok_or_else(|| PollingError::NotFound(id.clone()))
    }

    /// One job as a reader sees it (see [`JobAdmin::see`]).
    async fn seen_one(&self, job: Job) -> Job {
        let mut jobs = [job];
        self.see(&mut jobs).await;
        let [job] = jobs;
        job
    }

    /// Turns `jobs` into what a reader sees: their counted statistics plus the recorded
    /// outcomes of their pending ticks (one read for all of them). If those cannot be read,
    /// the counted statistics alone: a little behind, never wrong.
    async fn see(&self, jobs: &mut [Job]) {
        let ids: Vec<TickId> = jobs
            .iter()
            .flat_map(|j| j.pending.iter().cloned())
            .collect();
        if ids.is_empty() {
            return;
        }
        match self.jobs.outcomes(&ids).await {
            Ok(outcomes) => {
                for job in jobs {
                    *job = job.with_outcomes(&outcomes);
                }
            }
            Err(e) => {
                warn!(error = %e, "tick outcomes not read; jobs shown with their counted runs");
            }
        }
    }

    /// One page of the jobs `scope` sees, newest first (`limit` is clamped to
    /// 1..=[`MAX_PAGE`]).
    pub async fn list(
        &self,
        scope: &Scope,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage, PollingError> {
        let owner = match scope {
            Scope::All => None,
            Scope::Owner(o) => Some(o.as_str()),
        };
        let mut page = self
            .jobs
            .list(owner, limit.clamp(1, MAX_PAGE), cursor)
            .await?;
        self.see(&mut page.jobs).await;
        Ok(page)
    }

    /// Deletes job `id`: one write, conditional on the version read.
    pub async fn delete(&self, scope: &Scope, id: &JobId) -> Result<(), PollingError> {
        for _ in 0..WRITE_ATTEMPTS {
            let job = self.stored(scope, id).await?;
            match self.jobs.delete(&job, job.version).await {
                Ok(()) => {
                    info!(job_id = %id, "polling job deleted");
                    return Ok(());
                }
                Err(JobStoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobStoreError::Conflict.into())
    }

    /// Pauses job `id`: it stays stored but is no longer due. Idempotent.
    pub async fn pause(&self, scope: &Scope, id: &JobId) -> Result<Job, PollingError> {
        self.change_status(scope, id, JobStatus::Paused).await
    }

    /// Resumes job `id`: due at once (ticks missed while paused are not replayed).
    /// Idempotent.
    pub async fn resume(&self, scope: &Scope, id: &JobId) -> Result<Job, PollingError> {
        self.change_status(scope, id, JobStatus::Active).await
    }

    /// Sets the status of job `id` in one write conditional on the version read, retrying
    /// on a newer version; resuming claims and sends the coming minute's ticks.
    async fn change_status(
        &self,
        scope: &Scope,
        id: &JobId,
        status: JobStatus,
    ) -> Result<Job, PollingError> {
        for _ in 0..WRITE_ATTEMPTS {
            let job = self.stored(scope, id).await?;
            if job.status == status {
                return Ok(self.seen_one(job).await);
            }
            let now = Utc::now();
            let mut changed = job.clone();
            changed.status = status;
            changed.version = job.version + 1;
            changed.updated_at = now;
            let lanes = Lanes::new([&changed]);
            let ticks = if status == JobStatus::Active {
                changed.next_run_at = now;
                self.claim_window(&mut changed, &lanes, now)
            } else {
                Vec::new()
            };
            match self.jobs.replace(&changed, job.version).await {
                Ok(()) => {
                    self.send(&changed, &lanes, ticks, now).await;
                    info!(job_id = %id, status = status.as_str(), "polling job status changed");
                    return Ok(self.seen_one(changed).await);
                }
                Err(JobStoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobStoreError::Conflict.into())
    }

    /// The ticks of `job` in the coming window (from its `next_run_at`), moving its
    /// `next_run_at` past them and naming their messages among its pending ticks: written
    /// with the job, they are claimed.
    fn claim_window(&self, job: &mut Job, lanes: &Lanes, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let window_end =
            now + chrono::Duration::from_std(self.settings.tick_window).unwrap_or_default();
        let p = plan(job, now, window_end);
        job.next_run_at = p.next_run_at;
        let ids: Vec<TickId> = p.ticks.iter().map(|t| lanes.tick_id(job, *t)).collect();
        job.add_pending(ids);
        p.ticks
    }

    /// Sends a job's claimed ticks. A failure is logged and counted, not returned: the job
    /// is stored and the next wake-up carries on after the claimed window.
    async fn send(&self, job: &Job, lanes: &Lanes, ticks: Vec<DateTime<Utc>>, now: DateTime<Utc>) {
        if ticks.is_empty() {
            return;
        }
        let count = ticks.len();
        let delayed = group_ticks(&[(job.clone(), ticks)], lanes, now);
        if let Err(e) = self.queue.send(&delayed).await {
            self.metrics.count("PollTickNotSent", vec![]);
            warn!(job_id = %job.id, ticks = count, error = %e, "the job's first ticks were not sent; it ticks from the next wake-up");
        }
    }
}
