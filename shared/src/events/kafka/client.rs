//! What every Kafka client of this service shares: the connection settings and the rdkafka
//! context that signs MSK IAM tokens when the cluster asks for them.
//!
//! Every client this service makes (the producer, the local event source's consumer, the
//! admin client of the tests) carries a [`KafkaContext`]: with MSK IAM authentication it hands
//! librdkafka tokens signed with the process's AWS credentials; otherwise it changes nothing.

use std::time::Duration;

use aws_config::Region;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use rdkafka::{ClientConfig, ClientContext};
use secrecy::ExposeSecret;

use super::config::{KafkaConfig, KafkaSecurity};

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
            iam_region: match &config.security {
                KafkaSecurity::MskIam { region } => Some(region.clone()),
                _ => None,
            },
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
    match &config.security {
        KafkaSecurity::Plaintext => {}
        KafkaSecurity::Tls => {
            c.set("security.protocol", "ssl");
        }
        KafkaSecurity::Password {
            mechanism,
            username,
            password,
            tls,
        } => {
            c.set(
                "security.protocol",
                if *tls { "sasl_ssl" } else { "sasl_plaintext" },
            )
            .set("sasl.mechanism", mechanism.as_str())
            .set("sasl.username", username)
            .set("sasl.password", password.expose_secret());
        }
        KafkaSecurity::MskIam { .. } => {
            c.set("security.protocol", "sasl_ssl")
                .set("sasl.mechanism", "OAUTHBEARER");
        }
    }
    c
}
