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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
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
    producer: FutureProducer,
    topic: String,
    delivery_timeout: Duration,
    paused_until: Mutex<Option<Instant>>,
}

impl KafkaBus {
    /// A producer for the cluster of `config`. Does not wait for the cluster to answer.
    pub fn new(config: &KafkaConfig) -> Result<Self, PublishError> {
        let producer: FutureProducer = client_config(config)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .set("linger.ms", "5")
            .create()
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
        Ok(Self {
            producer,
            topic: config.topic.clone(),
            delivery_timeout: config.delivery_timeout,
            paused_until: Mutex::new(None),
        })
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
        match self
            .producer
            .send(record, Timeout::After(self.delivery_timeout))
            .await
        {
            Ok(_) => Ok(()),
            Err((e, _)) => {
                self.pause();
                Err(PublishError::NotDelivered(e.to_string()))
            }
        }
    }

    async fn ping(&self) -> Result<(), PublishError> {
        let producer = self.producer.clone();
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
