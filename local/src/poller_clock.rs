//! The local stand-ins for the poller's two event sources on AWS: the stack's
//! `rate(1 minute)` rule and the SQS event source mapping.
//!
//! - [`run_wake_ups`] invokes the poller's handler with the rule's constant input at once and
//!   then every minute, whether or not jobs exist (so undelivered events are re-published
//!   even with no job).
//! - [`run_memory_queue`] delivers the ticks of the in-process queue as SQS batches when their
//!   delay is over; [`run_sqs_queue`] receives from a real queue (moto on the local stack)
//!   and deletes what the handler did not report as failed, as the event source mapping
//!   does.
//!
//! Both go through `poller::handle_json`, the Lambda function's own entry, so what runs
//! locally is what runs on AWS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use market_data::scheduler::{MemoryTickQueue, SqsTickQueue, Tick, WAKE_UP_INPUT, sqs};
use market_data::usecases::{TickRunner, WakeUp};
use poller::PollerOutput;
use serde_json::{Value, json};
use tracing::warn;

/// The period of the stack's wake-up rule.
pub const WAKE_UP_PERIOD: Duration = Duration::from_secs(60);
/// How long a local invocation may take, as the template gives the poller.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Invokes the wake-up now and every `period` after, forever.
pub async fn run_wake_ups(wake_up: WakeUp, ticks: TickRunner, period: Duration) {
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let input: Value = serde_json::from_str(WAKE_UP_INPUT).unwrap_or(Value::Null);
    loop {
        timer.tick().await;
        let deadline = Some(Instant::now() + INVOCATION_TIMEOUT);
        if let Err(e) = poller::handle_json(&wake_up, &ticks, input.clone(), deadline).await {
            warn!(error = %e, "local wake-up failed");
        }
    }
}

/// An SQS event of `bodies` (message id, body), as the event source mapping delivers it.
pub fn sqs_event(bodies: &[(String, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": id,
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:local-ticks",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Delivers the in-process queue's ticks, ten at a time, as they become visible; a tick the
/// handler leaves for later is sent again after a visibility timeout of 30 s.
pub async fn run_memory_queue(queue: Arc<MemoryTickQueue>, wake_up: WakeUp, ticks: TickRunner) {
    loop {
        let batch = queue.receive(10);
        if batch.is_empty() {
            let wait = queue
                .next_visible()
                .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = queue.sent() => {}
            }
            continue;
        }
        let bodies: Vec<(String, String)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i.to_string(), sqs::encode(t).ok()?)))
            .collect();
        let deadline = Some(Instant::now() + INVOCATION_TIMEOUT);
        match poller::handle_json(&wake_up, &ticks, sqs_event(&bodies), deadline).await {
            Ok(PollerOutput::Batch(response)) => {
                let again: Vec<Tick> = response
                    .batch_item_failures
                    .iter()
                    .filter_map(|f| f.item_identifier.parse::<usize>().ok())
                    .filter_map(|i| batch.get(i).cloned())
                    .collect();
                requeue(&queue, again).await;
            }
            Ok(PollerOutput::WakeUp(_)) => {}
            Err(e) => warn!(error = %e, "local tick batch failed"),
        }
    }
}

async fn requeue(queue: &MemoryTickQueue, ticks: Vec<Tick>) {
    use market_data::scheduler::{DelayedTick, TickQueue};
    let delayed: Vec<DelayedTick> = ticks
        .into_iter()
        .map(|tick| DelayedTick {
            tick,
            delay: Duration::from_secs(30),
        })
        .collect();
    if let Err(e) = queue.send(&delayed).await {
        warn!(error = %e, "ticks not requeued");
    }
}

/// Receives the real queue's ticks (long polling) and hands each batch to the poller's
/// handler, deleting the messages it did not report as failed.
pub async fn run_sqs_queue(queue: SqsTickQueue, wake_up: WakeUp, ticks: TickRunner) {
    loop {
        let received = match queue.receive(5).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "receiving ticks failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if received.is_empty() {
            continue;
        }
        let bodies: Vec<(String, String)> = received
            .iter()
            .map(|m| (m.message_id.clone(), m.body.clone()))
            .collect();
        let deadline = Some(Instant::now() + INVOCATION_TIMEOUT);
        let failed: Vec<String> =
            match poller::handle_json(&wake_up, &ticks, sqs_event(&bodies), deadline).await {
                Ok(PollerOutput::Batch(r)) => r
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect(),
                Ok(PollerOutput::WakeUp(_)) => Vec::new(),
                Err(e) => {
                    warn!(error = %e, "local tick batch failed");
                    continue;
                }
            };
        let handled: Vec<_> = received
            .iter()
            .filter(|m| !failed.contains(&m.message_id))
            .collect();
        if let Err(e) = queue.delete(&handled).await {
            warn!(error = %e, "handled ticks not deleted; they come back");
        }
    }
}
