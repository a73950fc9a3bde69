//! Kafka adapter of the event bus (`rdkafka` idempotent producer).
//!
//! Events are keyed by symbol, so one symbol's events stay in order on one partition.
//! The producer waits for all in-sync replicas (`acks=all`) with idempotence on, so a retry
//! inside librdkafka cannot duplicate or reorder an event. Delivery is awaited
//! asynchronously and bounded by the configured delivery timeout.
//!
//! After a delivery fails, publishing pauses for [`PAUSE_AFTER_FAILURE`]: events published
//! meanwhile are refused at once (they stay undelivered for the re-publisher) instead of
//! each making a request wait the whole delivery timeout while the broker is away.
//!
//! An idempotent producer whose messages expired during an outage may come back to a broker
//! that no longer accepts it (fenced after its epoch was bumped, or in librdkafka's fatal
//! state), and would refuse every later message. Such a producer is replaced by a new one on
//! its first failure, so the process recovers when the broker does instead of needing a
//! restart.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use secrecy::ExposeSecret;

use super::{EventBus, PublishError};
use crate::config::KafkaConfig;
use crate::domain::PriceEvent;

/// How long publishing pauses after a failed delivery.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(15);

/// The Kafka bus.
pub struct KafkaBus {
    producer: RwLock<FutureProducer>,
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
    fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces `failed` by a new producer if it is in a fatal state, or the broker no
    /// longer accepts its producer id (and nobody replaced it yet).
    fn replace_if_broken(&self, failed: &FutureProducer, error: &KafkaError) {
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
fn producer(config: &KafkaConfig) -> Result<FutureProducer, PublishError> {
    client_config(config)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set(
            "message.timeout.ms",
            config.delivery_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "5")
        .create()
        .map_err(|e| PublishError::Unavailable(e.to_string()))
}

/// The connection settings every client of this service uses (producer, consumers, admin).
pub fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", "market-data")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set(
            "request.timeout.ms",
            config
                .delivery_timeout
                .min(Duration::from_secs(30))
                .as_millis()
                .to_string(),
        );
    let s = &config.security;
    if let Some(protocol) = &s.protocol {
        c.set("security.protocol", protocol);
    }
    if let Some(mechanism) = &s.sasl_mechanism {
        c.set("sasl.mechanism", mechanism);
    }
    if let Some(user) = &s.sasl_username {
        c.set("sasl.username", user);
    }
    if let Some(password) = &s.sasl_password {
        c.set("sasl.password", password.expose_secret());
    }
    c
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn publish(&self, event: &PriceEvent) -> Result<(), PublishError> {
        if self.paused() {
            return Err(PublishError::NotDelivered(format!(
                "publishing paused for up to {} s after a failed delivery",
                PAUSE_AFTER_FAILURE.as_secs()
            )));
        }
        let payload = event
            .to_json()
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
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
                Err(PublishError::NotDelivered(e.to_string()))
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
        .map_err(|e| PublishError::Unavailable(e.to_string()))?
        .map_err(|e: KafkaError| PublishError::Unavailable(e.to_string()))?;
        match metadata.topics().first() {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
            _ => Err(PublishError::Unavailable(format!(
                "topic {} does not exist",
                self.topic
            ))),
        }
    }
}
