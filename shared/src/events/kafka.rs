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
//!
//! Every client this service makes (this producer, the local event source's consumer) carries
//! a [`KafkaContext`]: with `KAFKA_SASL_MECHANISM=OAUTHBEARER` it hands librdkafka MSK IAM
//! tokens signed with the process's AWS credentials; otherwise it changes nothing.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::Region;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, ClientContext};
use secrecy::ExposeSecret;

use super::{EventBus, PublishError};
use crate::config::KafkaConfig;
use crate::domain::PriceEvent;

/// How long publishing pauses after a failed delivery.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(15);

/// Longest wait for one MSK IAM token (credentials may come over the network, e.g. from the
/// container credentials endpoint); librdkafka retries a failed refresh by itself.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The rdkafka client context of every Kafka client of this service.
///
/// One type for every mode, so the producer and the consumer have one concrete type whatever
/// the configuration says: librdkafka only asks for a token when the mechanism is
/// `OAUTHBEARER`, and then this context signs an MSK IAM token for its region.
#[derive(Debug, Clone, Default)]
pub struct KafkaContext {
    iam_region: Option<String>,
}

impl KafkaContext {
    /// The context `config` calls for: MSK IAM tokens when it names an IAM region.
    pub fn for_config(config: &KafkaConfig) -> Self {
        Self {
            iam_region: config.security.iam_region.clone(),
        }
    }

    /// The region MSK IAM tokens are signed for; `None` when the cluster does not use IAM.
    pub fn iam_region(&self) -> Option<&str> {
        self.iam_region.as_deref()
    }
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let region = self.iam_region.as_deref().ok_or(TokenError::NotIam)?;
        let token = msk_iam_token(region)?;
        Ok(OAuthToken {
            token: token.token,
            // MSK takes the principal from the signed token; librdkafka only needs a name.
            principal_name: String::new(),
            lifetime_ms: token.expires_at_ms,
        })
    }
}

impl ConsumerContext for KafkaContext {}

/// A signed MSK IAM authentication token.
pub struct MskIamToken {
    /// The token: the presigned `kafka-cluster:Connect` URL, base64url without padding.
    pub token: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Why no MSK IAM token could be made; librdkafka reports it and retries.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// librdkafka asked for a token although IAM authentication is not configured.
    #[error(
        "SASL/OAUTHBEARER is only supported as MSK IAM authentication: set KAFKA_SASL_MECHANISM=OAUTHBEARER, KAFKA_SECURITY_PROTOCOL=sasl_ssl and AWS_REGION"
    )]
    NotIam,
    /// No credentials, or signing failed.
    #[error("MSK IAM token: {0}")]
    Signer(String),
    /// The runtime the signer runs on could not be made.
    #[error("MSK IAM token: no runtime for the signer: {0}")]
    Runtime(#[source] std::io::Error),
    /// Loading credentials and signing took longer than [`TOKEN_TIMEOUT`].
    #[error("MSK IAM token: not signed within {} s", TOKEN_TIMEOUT.as_secs())]
    Timeout,
    /// The signing thread panicked.
    #[error("MSK IAM token: the signing thread panicked")]
    Panicked,
}

/// Signs an MSK IAM token for `region` with the default AWS credential chain.
///
/// librdkafka asks for tokens from its own threads or from inside a poll of the async
/// consumer, so the signer (async) runs on a thread of its own with its own small runtime:
/// no runtime of the caller is needed, and none is blocked from within.
pub fn msk_iam_token(region: &str) -> Result<MskIamToken, TokenError> {
    let region = Region::new(region.to_owned());
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(TokenError::Runtime)?;
                let (token, expires_at_ms) = runtime
                    .block_on(async {
                        tokio::time::timeout(
                            TOKEN_TIMEOUT,
                            aws_msk_iam_sasl_signer::generate_auth_token(region),
                        )
                        .await
                    })
                    .map_err(|_| TokenError::Timeout)?
                    .map_err(|e| TokenError::Signer(e.to_string()))?;
                Ok(MskIamToken {
                    token,
                    expires_at_ms,
                })
            })
            .join()
            .map_err(|_| TokenError::Panicked)?
    })
}

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
        .set("linger.ms", "5")
        .create_with_context(KafkaContext::for_config(config))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaSecurity;

    fn config(security: KafkaSecurity) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: "b-1.msk:9098".into(),
            topic: "price-events".into(),
            delivery_timeout: Duration::from_secs(5),
            security,
        }
    }

    #[test]
    fn the_context_signs_only_when_the_config_names_an_iam_region() {
        let plain = KafkaContext::for_config(&config(KafkaSecurity::default()));
        assert_eq!(plain.iam_region(), None);

        let iam = KafkaContext::for_config(&config(KafkaSecurity {
            protocol: Some("sasl_ssl".into()),
            sasl_mechanism: Some("OAUTHBEARER".into()),
            iam_region: Some("eu-west-1".into()),
            ..KafkaSecurity::default()
        }));
        assert_eq!(iam.iam_region(), Some("eu-west-1"));
    }

    #[test]
    fn a_token_request_without_iam_is_refused_with_the_variables_to_set() {
        let plain = KafkaContext::for_config(&config(KafkaSecurity::default()));
        let error = plain.generate_oauth_token(None).err().unwrap().to_string();
        assert!(
            error.contains("KAFKA_SASL_MECHANISM=OAUTHBEARER"),
            "{error}"
        );
        assert!(error.contains("AWS_REGION"), "{error}");
    }

    #[test]
    fn clients_with_the_context_are_made_for_every_security_setting() {
        let scram = config(KafkaSecurity {
            protocol: Some("sasl_ssl".into()),
            sasl_mechanism: Some("SCRAM-SHA-512".into()),
            sasl_username: Some("app".into()),
            sasl_password: Some("pw".to_owned().into()),
            iam_region: None,
        });
        let iam = config(KafkaSecurity {
            protocol: Some("sasl_ssl".into()),
            sasl_mechanism: Some("OAUTHBEARER".into()),
            iam_region: Some("eu-west-1".into()),
            ..KafkaSecurity::default()
        });
        for c in [config(KafkaSecurity::default()), scram, iam] {
            let bus = KafkaBus::new(&c);
            assert!(bus.is_ok(), "{:?}", c.security.sasl_mechanism);
        }
    }
}
