//! Scheduling polling jobs: the port, and how a job's interval becomes a schedule.
//!
//! On AWS, each job has one EventBridge rule whose constant input names the job and whose
//! target is the poller function ([`EventBridgeScheduler`]). Rate expressions only go down to
//! one minute, so the interval is honoured by the poller, not by the rule: the rule fires
//! every minute (or every N minutes when the interval is a whole number of minutes), and
//! each invocation runs the ticks that fall due within the next minute, spaced by the
//! interval, checked against the job's `next_run_at` ([`TICK_WINDOW`]). Without
//! configuration, [`LocalScheduler`] does the same with tokio timers in this process.

pub mod eventbridge;
mod local;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cause::Cause;
use crate::domain::{Job, JobId};

pub use eventbridge::{EventBridgeConfig, EventBridgeScheduler};
pub use local::{LocalScheduler, LocalTarget};

/// How far ahead of an invocation's start the poller runs due ticks: one rule period of a
/// `rate(1 minute)` rule, so consecutive invocations cover time without gaps.
pub const TICK_WINDOW: Duration = Duration::from_secs(60);

/// What a rule delivers to the poller: exactly this JSON, as the rule's constant input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollInput {
    /// The job to poll.
    pub job_id: JobId,
}

impl PollInput {
    /// The input of `job`'s rule.
    pub fn for_job(job_id: &JobId) -> Self {
        Self {
            job_id: job_id.clone(),
        }
    }

    /// The input as the JSON text a rule carries.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "job_id": self.job_id }).to_string()
    }
}

/// How often a job's rule fires, as an EventBridge rate expression: every `interval`
/// minutes when the interval is whole minutes, else every minute (the poller then runs
/// the ticks due within each minute).
pub fn rate_expression(interval_secs: u32) -> String {
    match interval_secs {
        s if s >= 120 && s.is_multiple_of(60) => format!("rate({} minutes)", s / 60),
        _ => "rate(1 minute)".to_owned(),
    }
}

/// The period of the rule [`rate_expression`] describes.
pub fn rule_period(interval_secs: u32) -> Duration {
    if interval_secs >= 60 && interval_secs.is_multiple_of(60) {
        Duration::from_secs(u64::from(interval_secs))
    } else {
        Duration::from_secs(60)
    }
}

/// A scheduling call that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// The scheduler could not be reached or refused the request.
    #[error("scheduler unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// The scheduler port: makes the poller run a job, or stop running it.
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Makes `job` run on its schedule. Idempotent. On failure, nothing of the schedule is
    /// left behind (a partly made rule is removed again).
    async fn schedule(&self, job: &Job) -> Result<(), SchedulerError>;

    /// Stops running job `id`. Idempotent: a job without a schedule is fine.
    async fn unschedule(&self, id: &JobId) -> Result<(), SchedulerError>;

    /// What this adapter is, for the start-up banner.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_have_minute_granularity() {
        assert_eq!(rate_expression(10), "rate(1 minute)");
        assert_eq!(rate_expression(60), "rate(1 minute)");
        assert_eq!(rate_expression(70), "rate(1 minute)");
        assert_eq!(rate_expression(300), "rate(5 minutes)");
        assert_eq!(rate_expression(86_400), "rate(1440 minutes)");
        assert_eq!(rule_period(10), Duration::from_secs(60));
        assert_eq!(rule_period(300), Duration::from_secs(300));
    }

    #[test]
    fn the_input_names_the_job() {
        let id = JobId::generate();
        let json: serde_json::Value =
            serde_json::from_str(&PollInput::for_job(&id).to_json()).unwrap();
        assert_eq!(json, serde_json::json!({"job_id": id.as_str()}));
        let back: PollInput = serde_json::from_value(json).unwrap();
        assert_eq!(back.job_id, id);
    }
}
