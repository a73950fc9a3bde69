//! The wake-up: what the one-minute rule runs.
//!
//! 1. Reads the jobs due before the end of the coming window (the tick window plus a small
//!    overlap, plus the claim lead: in steady state a wake-up then claims the minute after
//!    next, and its claims have a minute to finish before those ticks are due) through the
//!    store's index of due jobs.
//! 2. Reads the recorded outcomes of those jobs' final ticks (a batch read per hundred
//!    distinct ticks, shared by all their jobs).
//! 3. Claims each job's ticks in the window with one conditional write per job, which also
//!    counts its final ticks' outcomes into it and names the messages of its new ticks (a
//!    job another writer changed meanwhile is read again once, then skipped: it was claimed,
//!    paused or deleted). A paused job with ticks left to count is only counted.
//! 4. Sends the claimed ticks, grouped into shared ticks, to the tick queue, each delayed
//!    by its offset from now.
//! 5. Re-publishes undelivered events, whether or not any job exists.
//!
//! Nothing is started that cannot finish before the invocation's deadline minus the margin:
//! jobs not claimed by then stay due for the next wake-up, and the re-publisher stops.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::{info, warn};

use super::plan::{Lanes, group_ticks, plan};
use super::{PollSettings, PollingError, WINDOW_OVERLAP};
use crate::domain::{Job, JobStatus, TickId, TickOutcome};
use crate::jobs::{JobStore, JobStoreError};
use crate::scheduler::TickQueue;
use crate::telemetry::Metrics;
use crate::usecases::Republisher;

/// Rows the re-publisher takes per batch.
const REPUBLISH_BATCH: usize = 100;
/// Claims in flight at once.
const CLAIM_CONCURRENCY: usize = 32;

/// What one wake-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WakeUpReport {
    /// Jobs the due index returned.
    pub due_jobs: usize,
    /// Jobs whose ticks this wake-up claimed.
    pub claimed_jobs: usize,
    /// Job-ticks claimed.
    pub ticks: usize,
    /// Shared ticks (messages) sent.
    pub messages: usize,
    /// Job-ticks dropped because they were older than their job's interval.
    pub dropped: u64,
    /// Jobs left due because the deadline was near.
    pub left_due: usize,
    /// Jobs another writer changed first.
    pub conflicts: usize,
    /// Ticks whose outcomes were counted into their jobs.
    pub counted: usize,
    /// Milliseconds from the start to the last claim.
    pub claim_ms: u64,
    /// Undelivered events re-published.
    pub republished: usize,
}

/// Outcomes read for counting: the ids asked, and those found.
#[derive(Default)]
struct Outcomes {
    asked: HashSet<TickId>,
    found: HashMap<TickId, TickOutcome>,
}

/// The wake-up use case.
#[derive(Clone)]
pub struct WakeUp {
    jobs: Arc<dyn JobStore>,
    queue: Arc<dyn TickQueue>,
    republisher: Republisher,
    settings: PollSettings,
    metrics: Metrics,
}

enum Claim {
    Claimed(Box<Job>, Vec<DateTime<Utc>>, u64, usize),
    /// A paused job's last ticks counted.
    Counted(usize),
    Nothing,
    Conflict,
    LeftDue,
}

impl WakeUp {
    /// A wake-up over the given ports.
    pub fn new(
        jobs: Arc<dyn JobStore>,
        queue: Arc<dyn TickQueue>,
        republisher: Republisher,
        settings: PollSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            jobs,
            queue,
            republisher,
            settings,
            metrics,
        }
    }

    /// The same wake-up over another queue (the benchmarks measure through SQS this way).
    pub fn with_queue(mut self, queue: Arc<dyn TickQueue>) -> Self {
        self.queue = queue;
        self
    }

    /// One wake-up; `deadline` is the invocation's (none locally).
    #[tracing::instrument(skip_all)]
    pub async fn run(&self, deadline: Option<Instant>) -> Result<WakeUpReport, PollingError> {
        let started = Instant::now();
        let stop_at = deadline.map(|d| {
            d.checked_sub(self.settings.deadline_margin)
                .unwrap_or(started)
        });
        let mut report = WakeUpReport::default();
        let now = Utc::now();
        let window = self.settings.tick_window + WINDOW_OVERLAP + self.settings.claim_lead;
        let window_end = now + chrono::Duration::from_std(window).unwrap_or_default();
        let (claimed, lanes) = match self.jobs.due(window_end).await {
            Ok(due) => {
                report.due_jobs = due.len();
                self.claim_all(due, now, window_end, stop_at, &mut report)
                    .await
            }
            Err(e) => {
                // The re-publisher still runs: it does not depend on the job store.
                warn!(error = %e, "due jobs could not be read");
                let republished = self.republish(stop_at).await;
                info!(republished, "wake-up re-published without claiming");
                return Err(e.into());
            }
        };
        report.claim_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let ticks = group_ticks(&claimed, &lanes, Utc::now());
        report.messages = ticks.len();
        let sent = self.queue.send(&ticks).await;
        if let Err(e) = &sent {
            self.metrics.count("PollTickNotSent", vec![]);
            warn!(error = %e, "claimed ticks not sent");
        }
        self.metrics
            .amount("PollTicksClaimed", report.ticks as f64, vec![]);
        if report.dropped > 0 {
            self.metrics
                .amount("PollTickDropped", report.dropped as f64, vec![]);
        }
        if report.left_due > 0 {
            self.metrics
                .amount("PollTickSkipped", report.left_due as f64, vec![]);
        }
        self.metrics
            .millis("PollWakeUpClaim", report.claim_ms as f64, vec![]);
        report.republished = self.republish(stop_at).await;
        info!(?report, "wake-up finished");
        sent.map(|()| report).map_err(Into::into)
    }

    async fn claim_all(
        &self,
        due: Vec<Job>,
        now: DateTime<Utc>,
        window_end: DateTime<Utc>,
        stop_at: Option<Instant>,
        report: &mut WakeUpReport,
    ) -> (Vec<(Job, Vec<DateTime<Utc>>)>, Lanes) {
        let lanes = Lanes::new(due.iter().filter(|j| j.status == JobStatus::Active));
        let outcomes = self.final_outcomes(&due, now).await;
        // Collected first: a lazily mapped stream of borrowing futures is not `Send` enough
        // for a spawned task.
        let claims: Vec<_> = due
            .into_iter()
            .map(|job| self.claim(job, &lanes, &outcomes, now, window_end, stop_at))
            .collect();
        let results: Vec<Result<Claim, JobStoreError>> = futures::stream::iter(claims)
            .buffer_unordered(CLAIM_CONCURRENCY)
            .collect()
            .await;
        let mut claimed = Vec::new();
        for result in results {
            match result {
                Ok(Claim::Claimed(job, ticks, dropped, counted)) => {
                    report.claimed_jobs += 1;
                    report.ticks += ticks.len();
                    report.dropped += dropped;
                    report.counted += counted;
                    claimed.push((*job, ticks));
                }
                Ok(Claim::Counted(counted)) => report.counted += counted,
                Ok(Claim::Nothing) => {}
                Ok(Claim::Conflict) => report.conflicts += 1,
                Ok(Claim::LeftDue) => report.left_due += 1,
                Err(e) => {
                    warn!(error = %e, "a job's ticks could not be claimed; it stays due");
                    report.left_due += 1;
                }
            }
        }
        (claimed, lanes)
    }

    /// The outcomes of the final pending ticks of `jobs`, with the ids asked (an id asked
    /// and not found never ran). Nothing is asked when the read fails: the jobs are then
    /// claimed without counting, and count at their next claim.
    async fn final_outcomes(&self, jobs: &[Job], now: DateTime<Utc>) -> Outcomes {
        let asked: HashSet<TickId> = jobs
            .iter()
            .flat_map(|j| j.final_pending(now).cloned())
            .collect();
        if asked.is_empty() {
            return Outcomes::default();
        }
        let ids: Vec<TickId> = asked.iter().cloned().collect();
        match self.jobs.outcomes(&ids).await {
            Ok(found) => Outcomes { asked, found },
            Err(e) => {
                warn!(error = %e, "tick outcomes not read; jobs are claimed without counting them");
                Outcomes::default()
            }
        }
    }

    async fn claim(
        &self,
        job: Job,
        lanes: &Lanes,
        outcomes: &Outcomes,
        now: DateTime<Utc>,
        window_end: DateTime<Utc>,
        stop_at: Option<Instant>,
    ) -> Result<Claim, JobStoreError> {
        let mut job = job;
        // The index is read eventually consistently: on a conflict, the job is read again
        // (consistently) once, so a stale read does not cost it a minute of ticks.
        for attempt in 0..2 {
            if stop_at.is_some_and(|s| Instant::now() >= s) {
                return Ok(Claim::LeftDue);
            }
            let mut claimed = job.clone();
            // Counted only when every final tick was asked: one not asked is not "never ran".
            let counted = if job.final_pending(now).all(|id| outcomes.asked.contains(id)) {
                let before = claimed.pending.len();
                claimed.settle_final(&outcomes.found, now);
                before - claimed.pending.len()
            } else {
                0
            };
            let (ticks, dropped) = if job.status == JobStatus::Active {
                let p = plan(&job, now, window_end);
                if p.ticks.is_empty() && p.dropped == 0 && counted == 0 {
                    return Ok(Claim::Nothing);
                }
                claimed.next_run_at = p.next_run_at;
                claimed.add_pending(p.ticks.iter().map(|t| lanes.tick_id(&job, *t)));
                (p.ticks, p.dropped)
            } else if counted == 0 {
                return Ok(Claim::Nothing);
            } else {
                (Vec::new(), 0)
            };
            claimed.version += 1;
            match self.jobs.replace(&claimed, job.version).await {
                Ok(()) if job.status == JobStatus::Active => {
                    return Ok(Claim::Claimed(Box::new(claimed), ticks, dropped, counted));
                }
                Ok(()) => return Ok(Claim::Counted(counted)),
                Err(JobStoreError::Conflict) if attempt == 0 => match self.jobs.get(&job.id).await?
                {
                    Some(fresh) => job = fresh,
                    None => return Ok(Claim::Nothing),
                },
                Err(JobStoreError::Conflict) => return Ok(Claim::Conflict),
                Err(e) => return Err(e),
            }
        }
        Ok(Claim::Conflict)
    }

    /// Re-publishes undelivered events until none are due or `stop_at`.
    async fn republish(&self, stop_at: Option<Instant>) -> usize {
        let budget = stop_at
            .map(|s| s.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(50));
        match tokio::time::timeout(budget, self.republisher.run(REPUBLISH_BATCH)).await {
            Ok(Ok(r)) => r.delivered,
            Ok(Err(e)) => {
                warn!(error = %e, "re-publishing failed");
                0
            }
            Err(_) => {
                warn!("re-publishing stopped at the invocation's deadline");
                0
            }
        }
    }
}
