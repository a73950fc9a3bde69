//! The local stand-in for the MSK event source mapping that triggers `ma-consumer` on AWS.
//!
//! Like the mapping, it reads the topic in a consumer group, gathers records into a batch
//! (up to a size, or until a wait time has passed), hands the `ma-consumer` handler an event
//! of the very shape AWS sends (records grouped by `topic-partition`, values in base64),
//! and commits the offsets only once the handler succeeded. A failed batch is handed over
//! again, whole, after a back-off, until it succeeds: what Lambda does with a failed MSK
//! invocation. Nothing is lost when the process stops either: uncommitted records are read
//! again by the next consumer of the group, and the handler is idempotent.
//!
//! It does not join the group as a member: it assigns itself every partition of the topic,
//! starting from the group's committed offsets, and commits under the group's name. A
//! restart then never waits for a rebalance (the local broker, Tansu, does not reliably
//! complete one after a member left or died), and a process killed outright costs only its
//! uncommitted records, read again on the next start. One event source per group, as on
//! AWS one mapping per function.
//!
//! On the embedded defaults, [`run_in_process`] feeds the same handler from the in-process
//! bus instead.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::encodings::MillisecondTimestamp;
use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use market_data::domain::PriceEvent;
use market_data::events::KafkaConfig;
use market_data::events::kafka::{KafkaContext, client_config};
use market_data::usecases::{ConsumeReport, PriceConsumer};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// How the emulated mapping batches, like the mapping's `BatchSize` and
/// `MaximumBatchingWindowInSeconds`.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Most records in one batch.
    pub max_records: usize,
    /// Longest a batch waits for more records once it has one.
    pub max_wait: Duration,
    /// The consumer group.
    pub group_id: String,
    /// First wait after a failed batch; doubled on each further failure.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_records: 1_000,
            max_wait: Duration::from_millis(500),
            group_id: "market-data-ma-consumer".into(),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why the emulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum EventSourceError {
    /// The Kafka consumer could not be created or subscribed.
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// One record, as the emulation gives it to [`msk_event`].
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// When it was produced.
    pub timestamp: DateTime<Utc>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
}

/// The MSK event holding `records`, as the event source mapping would deliver them.
pub fn msk_event(records: &[SourceRecord], bootstrap_servers: &str) -> KafkaEvent {
    let mut grouped: HashMap<String, Vec<KafkaRecord>> = HashMap::new();
    for r in records {
        let mut record = KafkaRecord::default();
        record.topic = Some(r.topic.clone());
        record.partition = i64::from(r.partition);
        record.offset = r.offset;
        record.timestamp = MillisecondTimestamp(r.timestamp);
        record.timestamp_type = Some("CREATE_TIME".into());
        record.key = r.key.as_ref().map(|k| STANDARD.encode(k));
        record.value = r.value.as_ref().map(|v| STANDARD.encode(v));
        grouped
            .entry(format!("{}-{}", r.topic, r.partition))
            .or_default()
            .push(record);
    }
    let mut event = KafkaEvent::default();
    event.event_source = Some("aws:kafka".into());
    event.event_source_arn =
        Some("arn:aws:kafka:us-east-1:000000000000:cluster/local/local".into());
    event.bootstrap_servers = Some(bootstrap_servers.to_owned());
    event.records = grouped;
    event
}

/// Consumes `kafka`'s topic into `consumer` until `shutdown` completes.
pub async fn run_kafka(
    kafka: &KafkaConfig,
    settings: &BatchSettings,
    consumer: PriceConsumer,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EventSourceError> {
    // The same context as the producer's: MSK IAM tokens when the cluster uses IAM.
    let source: StreamConsumer<KafkaContext> = client_config(kafka)
        // A producer setting; a consumer only warns about it.
        .remove("request.timeout.ms")
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(KafkaContext::for_config(kafka))?;
    let start = starting_offsets(&source, &kafka.topic)?;
    source.assign(&start)?;
    tracing::info!(topic = %kafka.topic, group = %settings.group_id, "event source started");

    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            () = &mut shutdown => break,
            batch = next_batch(&source, settings) => batch,
        };
        if batch.is_empty() {
            continue;
        }
        let event = msk_event(&batch, &kafka.bootstrap_servers);
        tokio::select! {
            () = &mut shutdown => break,
            _ = deliver_until_done(&consumer, &event, settings) => {}
        }
        if let Err(e) = source.commit(&next_offsets(&batch), CommitMode::Sync) {
            // Not lost: the records are read again and change nothing the second time.
            tracing::warn!(error = %e, "offset commit failed");
        }
    }
    tracing::info!("event source stopped");
    Ok(())
}

/// How long start-up waits for the topic's partitions and the group's offsets.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Every partition of `topic`, each at the group's committed offset, or the earliest one
/// where the group committed none.
fn starting_offsets(
    source: &StreamConsumer<KafkaContext>,
    topic: &str,
) -> Result<TopicPartitionList, EventSourceError> {
    let metadata = source.fetch_metadata(Some(topic), START_TIMEOUT)?;
    let mut partitions = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            partitions.add_partition(topic, p.id());
        }
    }
    let committed = source.committed_offsets(partitions, START_TIMEOUT)?;
    let mut start = TopicPartitionList::new();
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(n) if n >= 0 => Offset::Offset(n),
            _ => Offset::Beginning,
        };
        start.add_partition_offset(topic, element.partition(), offset)?;
    }
    Ok(start)
}

/// Waits for one record, then gathers more until the batch is full or its wait is over.
async fn next_batch(
    source: &StreamConsumer<KafkaContext>,
    settings: &BatchSettings,
) -> Vec<SourceRecord> {
    let mut batch = Vec::new();
    let first = match source.recv().await {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %e, "Kafka consumer error");
            tokio::time::sleep(Duration::from_millis(200)).await;
            return batch;
        }
    };
    batch.push(source_record(&first));
    drop(first);
    let deadline = Instant::now() + settings.max_wait;
    while batch.len() < settings.max_records {
        match tokio::time::timeout_at(deadline, source.recv()).await {
            Err(_) => break,
            Ok(Ok(message)) => batch.push(source_record(&message)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Kafka consumer error");
                break;
            }
        }
    }
    batch
}

fn source_record(m: &BorrowedMessage<'_>) -> SourceRecord {
    SourceRecord {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m
            .timestamp()
            .to_millis()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_else(Utc::now),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
    }
}

/// The offsets to commit after `batch`: one past the last record of each partition.
fn next_offsets(batch: &[SourceRecord]) -> TopicPartitionList {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for r in batch {
        let offset = last
            .entry((r.topic.as_str(), r.partition))
            .or_insert(r.offset);
        *offset = (*offset).max(r.offset);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in last {
        // Cannot fail for a partition added once with a plain offset.
        let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset + 1));
    }
    list
}

/// Hands `event` to the handler until it succeeds, backing off between attempts.
async fn deliver_until_done(
    consumer: &PriceConsumer,
    event: &KafkaEvent,
    settings: &BatchSettings,
) -> ConsumeReport {
    let mut backoff = settings.first_backoff;
    let mut attempt = 1u32;
    loop {
        match ma_consumer::handle(consumer, event).await {
            Ok(report) => return report,
            Err(e) => {
                tracing::warn!(error = %e, attempt, retry_in_ms = backoff.as_millis() as u64,
                    "batch failed; it will be handed over again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(settings.max_backoff);
                attempt += 1;
            }
        }
    }
}

/// Feeds the events of an in-process bus subscription ([`InProcessBus::subscribe`](market_data::events::InProcessBus::subscribe), taken
/// before anything is published) to the same handler until the bus closes.
pub async fn run_in_process(
    mut events: broadcast::Receiver<PriceEvent>,
    settings: &BatchSettings,
    consumer: PriceConsumer,
) {
    const TOPIC: &str = "in-process";
    let mut offset = 0i64;
    loop {
        let mut batch: Vec<PriceEvent> = Vec::new();
        match events.recv().await {
            Ok(event) => batch.push(event),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "the in-process consumer fell behind; events dropped"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        }
        let deadline = Instant::now() + settings.max_wait;
        while batch.len() < settings.max_records {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(event)) => batch.push(event),
                Ok(Err(RecvError::Lagged(missed))) => {
                    tracing::warn!(
                        missed,
                        "the in-process consumer fell behind; events dropped"
                    );
                }
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        let records: Vec<SourceRecord> = batch
            .iter()
            .map(|event| {
                offset += 1;
                SourceRecord {
                    topic: TOPIC.into(),
                    partition: 0,
                    offset,
                    timestamp: Utc::now(),
                    key: Some(event.symbol.as_str().as_bytes().to_vec()),
                    value: event.to_json().ok(),
                }
            })
            .collect();
        deliver_until_done(&consumer, &msk_event(&records, "in-process"), settings).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_grouped_by_topic_partition_and_committed_one_past_the_last() {
        let at = Utc::now();
        let record = |partition, offset| SourceRecord {
            topic: "t".into(),
            partition,
            offset,
            timestamp: at,
            key: Some(b"AAPL".to_vec()),
            value: Some(b"{}".to_vec()),
        };
        let batch = [record(0, 4), record(1, 9), record(0, 5)];
        let event = msk_event(&batch, "b:9092");
        assert_eq!(event.records["t-0"].len(), 2);
        assert_eq!(event.records["t-1"][0].value.as_deref(), Some("e30="));
        assert_eq!(event.records["t-1"][0].key.as_deref(), Some("QUFQTA=="));

        let offsets = next_offsets(&batch);
        assert_eq!(
            offsets.find_partition("t", 0).unwrap().offset(),
            Offset::Offset(6)
        );
        assert_eq!(
            offsets.find_partition("t", 1).unwrap().offset(),
            Offset::Offset(10)
        );
    }
}
