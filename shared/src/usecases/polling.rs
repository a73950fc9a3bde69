//! Polling jobs: creating, inspecting, pausing, resuming and deleting them, and running
//! their ticks when the scheduler invokes the poller.
//!
//! Consistency between the job store and the scheduler, whatever call fails:
//! - no rule without a job: a job is stored (as `pending`) before its rule is made, and
//!   deleted only after its rule is gone;
//! - no active job without a rule: a job becomes `active` only after its rule exists, and
//!   is paused before its rule is removed.
//!
//! A tick is claimed before it runs, by a write conditional on the job's version that
//! moves `next_run_at` on; a poller that loses the race skips the tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::domain::{ProviderId, Symbol};
use crate::jobs::{Job, JobId, JobPage, JobStatus, JobStore, JobStoreError};
use crate::ratelimit::{Quota, RateLimiting};
use crate::scheduler::{Scheduler, SchedulerError, TICK_WINDOW};
use crate::telemetry::Metrics;
use crate::usecases::{QuoteService, Republisher};

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
/// Rows the re-publisher takes per batch after a run.
const REPUBLISH_BATCH: usize = 100;

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
    /// How far ahead of an invocation's start its due ticks are run ([`TICK_WINDOW`]).
    pub tick_window: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            finnhub_calls_per_minute: 60,
            tick_window: TICK_WINDOW,
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
    /// The scheduler failed; the job was left consistent (see the module documentation).
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

/// One symbol that could not be fetched in a tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolFailure {
    /// The symbol.
    pub symbol: Symbol,
    /// Why.
    pub error: String,
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// When the tick was due.
    pub due_at: DateTime<Utc>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Symbols fetched, stored and published.
    pub fetched: usize,
    /// Symbols that failed; the others were still fetched.
    pub failures: Vec<SymbolFailure>,
}

/// What one poller invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The job.
    pub job_id: JobId,
    /// `ran`, `not_due`, `paused`, `pending` or `deleted`.
    pub outcome: &'static str,
    /// The ticks run, in order.
    pub ticks: Vec<TickReport>,
    /// Undelivered events re-published afterwards.
    pub republished: usize,
}

/// The polling use case.
#[derive(Clone)]
pub struct PollingService {
    jobs: Arc<dyn JobStore>,
    scheduler: Arc<dyn Scheduler>,
    quotes: QuoteService,
    republisher: Republisher,
    limiter: Arc<RateLimiting>,
    settings: PollSettings,
    metrics: Metrics,
}

impl PollingService {
    /// A service over the given ports. `limiter` paces provider calls across pollers
    /// (through Redis when it has it).
    pub fn new(
        jobs: Arc<dyn JobStore>,
        scheduler: Arc<dyn Scheduler>,
        quotes: QuoteService,
        republisher: Republisher,
        limiter: Arc<RateLimiting>,
        settings: PollSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            jobs,
            scheduler,
            quotes,
            republisher,
            limiter,
            settings,
            metrics,
        }
    }

    /// The same service over other ports (tests inject failing adapters this way).
    pub fn with_ports(mut self, jobs: Arc<dyn JobStore>, scheduler: Arc<dyn Scheduler>) -> Self {
        self.jobs = jobs;
        self.scheduler = scheduler;
        self
    }

    /// The same service with other settings (tests shorten the tick window).
    pub fn with_settings(mut self, settings: PollSettings) -> Self {
        self.settings = settings;
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
        self.quotes.providers().default_id()
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
        self.update(id, |job| {
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
            .update(id, |job| {
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
            .update(id, |job| {
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

    /// Reads job `id`, lets `change` modify it (returning whether it did), and writes it
    /// back conditionally, retrying when another writer got there first.
    async fn update(
        &self,
        id: &JobId,
        mut change: impl FnMut(&mut Job) -> bool,
    ) -> Result<Job, PollingError> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut job = self.get(id).await?;
            if !change(&mut job) {
                return Ok(job);
            }
            let expected = job.version;
            job.version += 1;
            job.updated_at = Utc::now();
            match self.jobs.replace(&job, expected).await {
                Ok(()) => return Ok(job),
                Err(JobStoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobStoreError::Conflict.into())
    }

    /// One poller invocation for job `id`: runs every tick due before the end of the tick
    /// window, each at its due time, then re-publishes undelivered events. Does nothing for
    /// a job that is paused, pending or gone.
    pub async fn run(&self, id: &JobId) -> Result<RunReport, PollingError> {
        let window_end = Utc::now()
            + chrono::Duration::from_std(self.settings.tick_window)
                .unwrap_or(chrono::Duration::seconds(60));
        let mut report = RunReport {
            job_id: id.clone(),
            outcome: "not_due",
            ticks: Vec::new(),
            republished: 0,
        };
        loop {
            let Some(job) = self.jobs.get(id).await? else {
                report.outcome = "deleted";
                break;
            };
            match job.status {
                JobStatus::Active => {}
                JobStatus::Paused => {
                    report.outcome = "paused";
                    break;
                }
                JobStatus::Pending => {
                    report.outcome = "pending";
                    break;
                }
            }
            if job.next_run_at >= window_end {
                break;
            }
            let now = Utc::now();
            if job.next_run_at > now {
                // Wait for it, then read the job again: it may have been paused meanwhile.
                let wait = (job.next_run_at - now).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                continue;
            }
            let Some(claimed) = self.claim(&job, now).await? else {
                continue;
            };
            let tick = self.tick(&claimed, job.next_run_at, now).await;
            self.record_outcome(id, &tick).await;
            report.outcome = "ran";
            report.ticks.push(tick);
        }
        match self.republisher.run(REPUBLISH_BATCH).await {
            Ok(r) => report.republished = r.delivered,
            Err(e) => warn!(error = %e, "re-publishing after the poll failed"),
        }
        Ok(report)
    }

    /// Takes the tick due at `job.next_run_at`: moves `next_run_at` on by whole intervals
    /// (keeping the phase) past `now`. `None` when another poller took it first.
    async fn claim(&self, job: &Job, now: DateTime<Utc>) -> Result<Option<Job>, PollingError> {
        let interval = chrono::Duration::seconds(i64::from(job.interval_secs.max(1)));
        let mut next = job.next_run_at + interval;
        while next <= now {
            next += interval;
        }
        let mut claimed = job.clone();
        claimed.next_run_at = next;
        claimed.last_run_at = Some(now);
        claimed.run_count += 1;
        claimed.updated_at = now;
        claimed.version += 1;
        match self.jobs.replace(&claimed, job.version).await {
            Ok(()) => Ok(Some(claimed)),
            Err(JobStoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Fetches every symbol of `job` through the latest-price path, concurrently (bounded)
    /// and within the provider's rate limit; a failing symbol does not stop the others.
    async fn tick(
        &self,
        job: &Job,
        due_at: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> TickReport {
        let started = Instant::now();
        let provider = job.provider;
        // A symbol waits for the rate limit at most until the next tick is due.
        let deadline = started + Duration::from_secs(u64::from(job.interval_secs));
        let results: Vec<(Symbol, Result<(), String>)> =
            futures::stream::iter(job.symbols.iter().cloned())
                .map(|symbol| async move {
                    let result = match self.pace(provider, deadline).await {
                        Ok(()) => self
                            .quotes
                            .refresh(&symbol, provider)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.source.to_string()),
                        Err(e) => Err(e),
                    };
                    (symbol, result)
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        let dims = || vec![("Provider", provider.to_string())];
        let mut report = TickReport {
            due_at,
            started_at,
            fetched: 0,
            failures: Vec::new(),
        };
        for (symbol, result) in results {
            match result {
                Ok(()) => report.fetched += 1,
                Err(error) => {
                    self.metrics.count("PollSymbolFailed", dims());
                    warn!(job_id = %job.id, %symbol, %error, "symbol not polled");
                    report.failures.push(SymbolFailure { symbol, error });
                }
            }
        }
        report.failures.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        self.metrics.count("PollTick", dims());
        self.metrics.millis(
            "PollTickLatency",
            started.elapsed().as_secs_f64() * 1000.0,
            dims(),
        );
        let late = (started_at - due_at).num_milliseconds().max(0);
        self.metrics.millis("PollTickDelay", late as f64, dims());
        report
    }

    /// Waits until the provider's rate limit allows one more call, or fails at `deadline`.
    async fn pace(&self, provider: ProviderId, deadline: Instant) -> Result<(), String> {
        let quota = match provider {
            ProviderId::Finnhub => {
                let per_minute = self.settings.finnhub_calls_per_minute.max(1);
                // Finnhub also allows at most 30 calls a second.
                Quota {
                    per_minute,
                    burst: per_minute.min(30),
                }
            }
            ProviderId::Simulated => return Ok(()),
        };
        let key = format!("poll-provider:{provider}");
        loop {
            let decision = self.limiter.check(&key, quota).await;
            if decision.allowed {
                return Ok(());
            }
            let wait = decision.retry_after.unwrap_or(Duration::from_millis(500));
            if Instant::now() + wait > deadline {
                return Err(format!(
                    "{provider}'s call budget ({}/min) is used up until the next tick",
                    quota.per_minute
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Writes the tick's outcome (`last_error`) onto the job, retrying on conflicts.
    async fn record_outcome(&self, id: &JobId, tick: &TickReport) {
        let error = (!tick.failures.is_empty()).then(|| {
            tick.failures
                .iter()
                .map(|f| format!("{}: {}", f.symbol, f.error))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let result = self
            .update(id, |job| {
                let change = job.last_error != error;
                job.last_error.clone_from(&error);
                change
            })
            .await;
        match result {
            Ok(_) | Err(PollingError::NotFound(_)) => {}
            Err(e) => warn!(job_id = %id, error = %e, "tick outcome not recorded"),
        }
    }
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
    if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&new.interval_secs) {
        return Err(PollingError::Invalid(format!(
            "`interval` must be whole seconds from {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS}, got {}",
            new.interval_secs
        )));
    }
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
