//! The Kafka adapter of the event bus: an idempotent `rdkafka` producer.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::client::{KafkaContext, client_config};
use super::config::KafkaConfig;
use crate::cause::Cause;
use crate::domain::PriceEvent;
use crate::events::{EventBus, PublishError};

/// How long publishing pauses after a failed delivery.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(15);

/// The Kafka bus.
pub struct KafkaBus {
    producer: RwLock<FutureProducer<KafkaContext>>,
    config: KafkaConfig,
    topic: String,
    delivery_timeout: Duration,
    paused_until: Mutex<Option<Instant>>,
}

impl KafkaBus {
    /// A producer for the cluster of `config`. Does not wait for the cluster to answer.
    pub fn new(config: &KafkaConfig) -> Result<Self, PublishError> {
        Ok(Self {
            producer: RwLock::new(producer(config)?),
            config: config.clone(),
            topic: config.topic.clone(),
            delivery_timeout: config.delivery_timeout,
            paused_until: Mutex::new(None),
        })
    }

    /// The current producer (a cheap handle).
    fn producer(&self) -> FutureProducer<KafkaContext> {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces `failed` by a new producer if it is in a fatal state, or the broker no
    /// longer accepts its producer id (and nobody replaced it yet).
    fn replace_if_broken(&self, failed: &FutureProducer<KafkaContext>, error: &KafkaError) {
        let (code, reason) = match (failed.client().fatal_error(), error.rdkafka_error_code()) {
            (Some(fatal), _) => fatal,
            (None, Some(code)) if producer_id_refused(code) => (code, error.to_string()),
            _ => return,
        };
        let mut current = self.producer.write().unwrap_or_else(|p| p.into_inner());
        if !std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
            return;
        }
        match producer(&self.config) {
            Ok(fresh) => {
                tracing::warn!(?code, %reason, "Kafka producer unusable: replaced");
                *current = fresh;
            }
            Err(e) => {
                tracing::error!(?code, %reason, error = %e, "Kafka producer unusable and not replaceable");
            }
        }
    }

    fn paused(&self) -> bool {
        let mut until = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn pause(&self) {
        *self.paused_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + PAUSE_AFTER_FAILURE);
    }

    /// The topic events are published to.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Whether the broker refused the producer's identity, which no retry of the same producer
/// can fix: it was fenced (a broker may fence a producer whose epoch was bumped after expired
/// messages), or its id or sequence numbers are no longer known.
fn producer_id_refused(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}

/// The idempotent producer of `config`.
fn producer(config: &KafkaConfig) -> Result<FutureProducer<KafkaContext>, PublishError> {
    client_config(config)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set(
            "message.timeout.ms",
            config.delivery_timeout.as_millis().to_string(),
        )
        // A caller waits for its event's acknowledgement (a miss is answered only once its
        // event is on the broker): no added wait. Events that queue while a send is in
        // flight still travel together. linger.ms=5 was 5 ms of a 10 ms miss
        // (docs/benchmarks.md, "The hot path against its floor").
        .set("linger.ms", "0")
        .create_with_context(KafkaContext::for_config(config))
        .map_err(|e| PublishError::Unavailable(Cause::new(e)))
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn publish(&self, event: &PriceEvent) -> Result<(), PublishError> {
        if self.paused() {
            return Err(PublishError::NotDelivered(Cause::msg(format!(
                "publishing paused for up to {} s after a failed delivery",
                PAUSE_AFTER_FAILURE.as_secs()
            ))));
        }
        let payload = event
            .to_json()
            .map_err(|e| PublishError::Unavailable(Cause::new(e)))?;
        let record = FutureRecord::to(&self.topic)
            .key(event.symbol.as_str())
            .payload(&payload);
        let producer = self.producer();
        match producer
            .send(record, Timeout::After(self.delivery_timeout))
            .await
        {
            Ok(_) => Ok(()),
            Err((e, _)) => {
                self.pause();
                self.replace_if_broken(&producer, &e);
                Err(PublishError::NotDelivered(Cause::new(e)))
            }
        }
    }

    async fn ping(&self) -> Result<(), PublishError> {
        let producer = self.producer();
        let topic = self.topic.clone();
        let timeout = self.delivery_timeout.min(Duration::from_secs(2));
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Timeout::After(timeout))
        })
        .await
        .map_err(|e| PublishError::Unavailable(Cause::new(e)))?
        .map_err(|e: KafkaError| PublishError::Unavailable(Cause::new(e)))?;
        match metadata.topics().first() {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
            _ => Err(PublishError::Unavailable(Cause::msg(format!(
                "topic {} does not exist",
                self.topic
            )))),
        }
    }
}
