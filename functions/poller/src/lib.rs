//! The `poller` function: runs the due ticks of one polling job.
//!
//! An EventBridge rule (or, locally, a timer of the runner) delivers its constant input,
//! `{"job_id": "poll_…"}`; [`handle`] turns it into the polling use case's run. The Lambda
//! entry point, the local runner and the tests all call [`handle`] (or [`handle_json`] with
//! the raw event), so what is tested is what runs.

use market_data::jobs::JobStoreError;
use market_data::scheduler::PollInput;
use market_data::usecases::{PollingError, RunReport, TickRunner};

/// Why an invocation failed as a whole (per-symbol failures are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    /// The event is not a rule's input: it names no job, or not a valid job id.
    #[error("the event is not a poller input ({{\"job_id\": \"poll_…\"}}): {0}")]
    BadInput(#[from] serde_json::Error),
    /// The job store failed; the scheduler invokes again on the next period.
    #[error(transparent)]
    Polling(#[from] PollingError),
}

impl PollerError {
    /// Whether invoking again with the same event can succeed: not for an event that is not
    /// a poller input, nor for a job the store refused; yes for a store that was away.
    pub fn is_retryable(&self) -> bool {
        match self {
            PollerError::BadInput(_) => false,
            PollerError::Polling(PollingError::Store(
                JobStoreError::Unavailable(_) | JobStoreError::Conflict,
            ))
            | PollerError::Polling(PollingError::Scheduler(_)) => true,
            PollerError::Polling(_) => false,
        }
    }
}

/// Runs the ticks of the job `input` names that are due within this invocation's window.
pub async fn handle(ticks: &TickRunner, input: PollInput) -> Result<RunReport, PollerError> {
    let report = ticks.run(&input.job_id).await?;
    tracing::info!(
        job_id = %report.job_id,
        outcome = ?report.outcome,
        ticks = report.ticks.len(),
        failures = report.ticks.iter().map(|t| t.failures.len()).sum::<usize>(),
        republished = report.republished,
        "poll finished"
    );
    Ok(report)
}

/// [`handle`] for the raw event, as the Lambda runtime receives it.
pub async fn handle_json(
    ticks: &TickRunner,
    event: serde_json::Value,
) -> Result<RunReport, PollerError> {
    let input: PollInput = serde_json::from_value(event)?;
    handle(ticks, input).await
}
