//! Running a job's due ticks, for the poller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::warn;

use super::{PollSettings, PollingError, update};
use crate::domain::{Job, JobId, JobStatus, ProviderId, Symbol};
use crate::jobs::{JobStore, JobStoreError};
use crate::ratelimit::{Quota, RateLimiting};
use crate::telemetry::Metrics;
use crate::usecases::{QuoteService, Republisher};

/// Rows the re-publisher takes per batch after a run.
const REPUBLISH_BATCH: usize = 100;

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

/// What a poller invocation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// At least one tick ran.
    Ran,
    /// The job is active but no tick was due within the window.
    NotDue,
    /// The job is paused: nothing ran.
    Paused,
    /// The job's schedule is not confirmed yet: nothing ran.
    Pending,
    /// The job is gone: nothing ran.
    Deleted,
}

/// What one poller invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The job.
    pub job_id: JobId,
    /// What the invocation found and did.
    pub outcome: RunOutcome,
    /// The ticks run, in order.
    pub ticks: Vec<TickReport>,
    /// Undelivered events re-published afterwards.
    pub republished: usize,
}

/// The tick-running use case.
#[derive(Clone)]
pub struct TickRunner {
    jobs: Arc<dyn JobStore>,
    quotes: QuoteService,
    republisher: Republisher,
    limiter: Arc<RateLimiting>,
    settings: PollSettings,
    metrics: Metrics,
}

impl TickRunner {
    /// A runner over the given ports. `limiter` paces provider calls across pollers
    /// (through Redis when it has it).
    pub fn new(
        jobs: Arc<dyn JobStore>,
        quotes: QuoteService,
        republisher: Republisher,
        limiter: Arc<RateLimiting>,
        settings: PollSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            jobs,
            quotes,
            republisher,
            limiter,
            settings,
            metrics,
        }
    }

    /// The same runner over another job store (tests inject failing adapters this way).
    pub fn with_jobs(mut self, jobs: Arc<dyn JobStore>) -> Self {
        self.jobs = jobs;
        self
    }

    /// The same runner with other settings (tests shorten the tick window).
    pub fn with_settings(mut self, settings: PollSettings) -> Self {
        self.settings = settings;
        self
    }

    /// One poller invocation for job `id`: runs every tick due before the end of the tick
    /// window, each at its due time, then re-publishes undelivered events. Does nothing for
    /// a job that is paused, pending or gone.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    pub async fn run(&self, id: &JobId) -> Result<RunReport, PollingError> {
        let window_end = Utc::now()
            + chrono::Duration::from_std(self.settings.tick_window)
                .unwrap_or(chrono::Duration::seconds(60));
        let mut report = RunReport {
            job_id: id.clone(),
            outcome: RunOutcome::NotDue,
            ticks: Vec::new(),
            republished: 0,
        };
        loop {
            let Some(job) = self.jobs.get(id).await? else {
                report.outcome = RunOutcome::Deleted;
                break;
            };
            match job.status {
                JobStatus::Active => {}
                JobStatus::Paused => {
                    report.outcome = RunOutcome::Paused;
                    break;
                }
                JobStatus::Pending => {
                    report.outcome = RunOutcome::Pending;
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
            report.outcome = RunOutcome::Ran;
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
        let result = update(&self.jobs, id, |job| {
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
