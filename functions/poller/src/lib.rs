//! The `poller` function: the one-minute wake-up, and the ticks of the queue.
//!
//! Two event sources invoke it:
//! - the stack's `rate(1 minute)` rule, with its constant input `{"wake_up": true}`
//!   ([`WAKE_UP_INPUT`]): claims the ticks due in the coming minute, sends them to the queue
//!   with their delays, and re-publishes undelivered events;
//! - the SQS event source, with a batch of ticks: runs each, and reports the ones left for
//!   later (`batchItemFailures`) so only those come back.
//!
//! [`handle_json`] tells them apart; the Lambda entry point, the local runner and the tests
//! all call it (or [`handle_wake_up`] and [`handle_batch`]), so what is tested is what runs.

use std::time::Instant;

use aws_lambda_events::sqs::SqsEvent;
use market_data::scheduler::{Tick, WAKE_UP_INPUT};
use market_data::usecases::{
    PollingError, RunOutcome, TickReport, TickRunner, WakeUp, WakeUpReport,
};
use serde::{Deserialize, Serialize};

/// Why an invocation failed as a whole (per-symbol failures are in the reports instead).
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    /// The event is neither the wake-up input nor an SQS batch.
    #[error("the event is neither the wake-up input ({WAKE_UP_INPUT}) nor an SQS batch: {0}")]
    BadInput(String),
    /// The wake-up could not read or claim the due jobs, or not send their ticks; the next
    /// wake-up, a minute later, carries on.
    #[error(transparent)]
    Polling(#[from] PollingError),
}

/// The rule's constant input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WakeUpInput {
    wake_up: bool,
}

/// One item of a partial batch response: the message to deliver again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The message's id.
    pub item_identifier: String,
}

/// The answer to an SQS batch (`ReportBatchItemFailures`): the messages left for later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// Messages not handled; SQS delivers them again after their visibility timeout.
    pub batch_item_failures: Vec<BatchItemFailure>,
    /// What each tick did (for logs and tests; not part of SQS's answer).
    #[serde(skip)]
    pub reports: Vec<TickReport>,
}

/// What an invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PollerOutput {
    /// A wake-up.
    WakeUp(WakeUpReport),
    /// A batch of ticks.
    Batch(BatchResponse),
}

/// The wake-up; `deadline` is the invocation's.
pub async fn handle_wake_up(
    wake_up: &WakeUp,
    deadline: Option<Instant>,
) -> Result<WakeUpReport, PollerError> {
    Ok(wake_up.run(deadline).await?)
}

/// Runs each tick of an SQS batch, in order, and answers which messages to deliver again:
/// ticks skipped for the deadline. A message that is not a tick is logged and dropped (a
/// retry cannot make it one).
pub async fn handle_batch(
    ticks: &TickRunner,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> BatchResponse {
    let mut response = BatchResponse::default();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        let tick: Tick = match record.body.as_deref().map(serde_json::from_str) {
            Some(Ok(tick)) => tick,
            Some(Err(e)) => {
                tracing::error!(message_id = %id, error = %e, "a queue message is not a tick; dropped");
                continue;
            }
            None => {
                tracing::error!(message_id = %id, "a queue message without a body; dropped");
                continue;
            }
        };
        let report = ticks.run(&tick, deadline).await;
        tracing::info!(
            message_id = %id,
            outcome = ?report.outcome,
            jobs = report.jobs,
            calls = report.calls,
            failures = report.failures.len(),
            "tick finished"
        );
        if report.outcome == RunOutcome::Skipped {
            response.batch_item_failures.push(BatchItemFailure {
                item_identifier: id,
            });
        }
        response.reports.push(report);
    }
    response
}

/// [`handle_wake_up`] or [`handle_batch`], for the raw event as the Lambda runtime
/// receives it.
pub async fn handle_json(
    wake_up: &WakeUp,
    ticks: &TickRunner,
    event: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<PollerOutput, PollerError> {
    if event.get("Records").is_some() {
        let batch: SqsEvent =
            serde_json::from_value(event).map_err(|e| PollerError::BadInput(e.to_string()))?;
        return Ok(PollerOutput::Batch(
            handle_batch(ticks, batch, deadline).await,
        ));
    }
    let input: WakeUpInput =
        serde_json::from_value(event).map_err(|e| PollerError::BadInput(e.to_string()))?;
    if !input.wake_up {
        return Err(PollerError::BadInput("wake_up is false".into()));
    }
    Ok(PollerOutput::WakeUp(
        handle_wake_up(wake_up, deadline).await?,
    ))
}

/// The invocation's deadline (milliseconds since the epoch, as `lambda_runtime::Context`
/// has it) as an instant of this process's clock.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left = i64::try_from(deadline_ms)
        .unwrap_or(i64::MAX)
        .saturating_sub(now_ms);
    Instant::now() + std::time::Duration::from_millis(u64::try_from(left).unwrap_or(0))
}
