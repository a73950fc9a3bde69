//! SQS adapter of the tick queue: each tick is one message whose `DelaySeconds` is its
//! offset from now (rounded up, so a tick is never fetched before it is due), sent ten to a
//! call. On AWS the queue invokes the poller through an event source mapping; the local
//! runner and the benchmarks receive from it themselves ([`SqsTickQueue::receive`]).

mod config;

pub use config::SqsQueueConfig;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};

use super::{DelayedTick, MAX_DELAY, SchedulerError, Tick, TickQueue};
use crate::cause::Cause;

/// Most entries of one SQS batch call.
const BATCH: usize = 10;
/// Most bytes of message bodies in one SQS batch call: 256 KiB, the limit SQS has long had
/// (it has since raised it to 1 MiB; emulators and older regions may not have).
const BATCH_BYTES: usize = 256 * 1024;

/// `bodies` split into consecutive batches of at most [`BATCH`] entries and
/// [`BATCH_BYTES`], as ranges of indexes (a body over the limit goes alone, and SQS says
/// why it refuses it).
fn batches(bodies: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == BATCH || bytes + body.len() > BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(start..bodies.len());
    }
    out
}

/// Ticks in an SQS queue.
#[derive(Clone)]
pub struct SqsTickQueue {
    client: Client,
    queue_url: String,
}

/// A message received from the queue: the tick and what deletes it.
#[derive(Debug, Clone)]
pub struct ReceivedTick {
    /// The message's id.
    pub message_id: String,
    /// Its body, as sent.
    pub body: String,
    /// What [`SqsTickQueue::delete`] needs.
    pub receipt_handle: String,
}

fn unavailable(e: impl std::error::Error + 'static) -> SchedulerError {
    SchedulerError::Unavailable(Cause::msg(DisplayErrorContext(&e).to_string()))
}

impl SqsTickQueue {
    /// A queue over an existing client.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// A queue whose client starts from `sdk`, with `endpoint` (moto) when given.
    pub fn connect(sdk: &SdkConfig, queue_url: impl Into<String>, endpoint: Option<&str>) -> Self {
        let mut config = aws_sdk_sqs::config::Builder::from(sdk);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Self::new(Client::from_conf(config.build()), queue_url)
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives up to ten visible messages, waiting up to `wait_secs` (long polling) for the
    /// first: what the event source mapping does on AWS, for the local runner.
    pub async fn receive(&self, wait_secs: i32) -> Result<Vec<ReceivedTick>, SchedulerError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|m| {
                Some(ReceivedTick {
                    message_id: m.message_id()?.to_owned(),
                    body: m.body()?.to_owned(),
                    receipt_handle: m.receipt_handle()?.to_owned(),
                })
            })
            .collect())
    }

    /// Deletes handled messages (what the event source mapping does for the successes of a
    /// batch).
    pub async fn delete(&self, handled: &[&ReceivedTick]) -> Result<(), SchedulerError> {
        for chunk in handled.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt_handle)
                        .build()
                        .map_err(unavailable)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

/// A tick's body, as the poller reads it back.
pub fn encode(tick: &Tick) -> Result<String, SchedulerError> {
    serde_json::to_string(tick).map_err(|e| SchedulerError::Unavailable(Cause::new(e)))
}

#[async_trait]
impl TickQueue for SqsTickQueue {
    async fn send(&self, ticks: &[DelayedTick]) -> Result<(), SchedulerError> {
        let mut not_sent = 0usize;
        let mut last_error = None;
        let bodies = ticks
            .iter()
            .map(|t| encode(&t.tick))
            .collect::<Result<Vec<_>, _>>()?;
        for batch in batches(&bodies) {
            let entries = batch
                .clone()
                .map(|i| {
                    let delay = ticks[i].delay.min(MAX_DELAY);
                    // Rounded up: a tick is never visible before it is due.
                    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(bodies[i].as_str())
                        .delay_seconds(i32::try_from(secs.min(900)).unwrap_or(900))
                        .build()
                        .map_err(unavailable)
                })
                .collect::<Result<Vec<_>, _>>()?;
            match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    if !output.failed().is_empty() {
                        not_sent += output.failed().len();
                        last_error = output
                            .failed()
                            .first()
                            .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or_default()));
                    }
                }
                Err(e) => {
                    not_sent += batch.len();
                    last_error = Some(DisplayErrorContext(&e).to_string());
                }
            }
        }
        match last_error {
            None => Ok(()),
            Some(e) => Err(SchedulerError::Unavailable(Cause::msg(format!(
                "{not_sent} of {} ticks not sent: {e}",
                ticks.len()
            )))),
        }
    }

    fn describe(&self) -> String {
        format!("sqs queue {} (delayed messages)", self.queue_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_within_entries_and_bytes() {
        let small = vec!["x".repeat(100); 25];
        assert_eq!(batches(&small), [0..10, 10..20, 20..25]);
        let big = vec!["x".repeat(100_000); 5];
        assert_eq!(batches(&big), [0..2, 2..4, 4..5]);
        assert!(batches(&[]).is_empty());
        let huge = vec!["x".repeat(300_000), "y".into()];
        assert_eq!(batches(&huge), [0..1, 1..2]);
    }
}
