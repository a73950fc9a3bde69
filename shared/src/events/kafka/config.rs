//! Settings of the Kafka clients: `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_TOPIC`,
//! `KAFKA_DELIVERY_TIMEOUT_MS`, and the security mode (`KAFKA_SECURITY_PROTOCOL`,
//! `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` or
//! `KAFKA_SASL_PASSWORD_SECRET_ID`, and `AWS_REGION` for MSK IAM).

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{ConfigError, Env, SecretField};

/// Kafka settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Topic of price events.
    pub topic: String,
    /// How long the producer keeps trying to deliver one event before giving up on it.
    pub delivery_timeout: Duration,
    /// How the clients authenticate and encrypt.
    pub security: KafkaSecurity,
}

/// How the Kafka clients authenticate and encrypt: one mode, so settings that contradict
/// each other (IAM without TLS, a password without a mechanism) cannot be represented.
#[derive(Debug, Clone)]
pub enum KafkaSecurity {
    /// Neither TLS nor SASL (the local broker).
    Plaintext,
    /// TLS without SASL.
    Tls,
    /// SASL with a user name and password (MSK SCRAM), with or without TLS.
    Password {
        /// The SASL mechanism.
        mechanism: PasswordMechanism,
        /// SASL user.
        username: String,
        /// SASL password.
        password: SecretString,
        /// Whether the connection is encrypted (`sasl_ssl`).
        tls: bool,
    },
    /// MSK IAM authentication: SASL/OAUTHBEARER tokens signed with the process's AWS
    /// credentials for `region`, over TLS.
    MskIam {
        /// The region tokens are signed for (`AWS_REGION`).
        region: String,
    },
}

/// A SASL mechanism that authenticates with a user name and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512` (what MSK uses).
    ScramSha512,
}

impl PasswordMechanism {
    /// The name librdkafka knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Password(PasswordMechanism),
    OAuthBearer,
}

impl KafkaConfig {
    /// The settings, or `None` without `KAFKA_BOOTSTRAP_SERVERS` (the in-process bus).
    pub async fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(bootstrap_servers) = env.get("KAFKA_BOOTSTRAP_SERVERS") else {
            return Ok(None);
        };
        Ok(Some(Self {
            bootstrap_servers,
            topic: topic(env.get("KAFKA_TOPIC"))?,
            delivery_timeout: Duration::from_millis(env.number(
                "KAFKA_DELIVERY_TIMEOUT_MS",
                5_000,
                100..=300_000,
            )?),
            security: KafkaSecurity::from_env(env).await?,
        }))
    }

    /// What the runner's banner and `/ready` show.
    pub fn describe(&self) -> String {
        format!("kafka {} topic {}", self.bootstrap_servers, self.topic)
    }
}

impl KafkaSecurity {
    async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        const PROTOCOL: &str = "KAFKA_SECURITY_PROTOCOL";
        let protocol = env.one_of(
            PROTOCOL,
            &[
                ("plaintext", Protocol::Plaintext),
                ("ssl", Protocol::Ssl),
                ("sasl_plaintext", Protocol::SaslPlaintext),
                ("sasl_ssl", Protocol::SaslSsl),
            ],
        )?;
        let mechanism = env.one_of(
            "KAFKA_SASL_MECHANISM",
            &[
                ("PLAIN", Mechanism::Password(PasswordMechanism::Plain)),
                (
                    "SCRAM-SHA-256",
                    Mechanism::Password(PasswordMechanism::ScramSha256),
                ),
                (
                    "SCRAM-SHA-512",
                    Mechanism::Password(PasswordMechanism::ScramSha512),
                ),
                ("OAUTHBEARER", Mechanism::OAuthBearer),
            ],
        )?;
        match (mechanism, protocol) {
            (None, None | Some(Protocol::Plaintext)) => Ok(Self::Plaintext),
            (None, Some(Protocol::Ssl)) => Ok(Self::Tls),
            (None, Some(_)) => Err(ConfigError::invalid(
                "KAFKA_SASL_MECHANISM",
                "a sasl_* protocol needs a mechanism (SCRAM-SHA-512, PLAIN, OAUTHBEARER)",
            )),
            // OAUTHBEARER here means MSK IAM, which MSK accepts only on its TLS listener.
            (Some(Mechanism::OAuthBearer), Some(Protocol::SaslSsl)) => Ok(Self::MskIam {
                region: env.get("AWS_REGION").ok_or_else(|| {
                    ConfigError::invalid(
                        "AWS_REGION",
                        "KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) signs tokens for a region: set it",
                    )
                })?,
            }),
            (Some(Mechanism::OAuthBearer), _) => Err(ConfigError::invalid(
                PROTOCOL,
                "KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs sasl_ssl",
            )),
            (Some(Mechanism::Password(mechanism)), Some(p @ (Protocol::SaslSsl | Protocol::SaslPlaintext))) => {
                Ok(Self::Password {
                    mechanism,
                    username: env.get("KAFKA_SASL_USERNAME").ok_or_else(|| {
                        ConfigError::invalid("KAFKA_SASL_USERNAME", "SASL needs a user name: set it")
                    })?,
                    password: env
                        .secret(
                            "KAFKA_SASL_PASSWORD",
                            "KAFKA_SASL_PASSWORD_SECRET_ID",
                            SecretField::Field("password"),
                        )
                        .await?
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                "KAFKA_SASL_PASSWORD",
                                "SASL needs a password: set it or KAFKA_SASL_PASSWORD_SECRET_ID",
                            )
                        })?,
                    tls: p == Protocol::SaslSsl,
                })
            }
            (Some(Mechanism::Password(_)), _) => Err(ConfigError::invalid(
                PROTOCOL,
                "a SASL mechanism needs sasl_ssl or sasl_plaintext",
            )),
        }
    }
}

fn topic(raw: Option<String>) -> Result<String, ConfigError> {
    let topic = raw.unwrap_or_else(|| "price-events".into());
    let valid = topic.len() <= 249
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && topic != "."
        && topic != "..";
    if valid {
        Ok(topic)
    } else {
        Err(ConfigError::invalid(
            "KAFKA_TOPIC",
            format!("{topic:?} is not a valid Kafka topic name"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};

    async fn load(pairs: &[(&str, &str)]) -> Result<Option<KafkaConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        KafkaConfig::from_env(&Env::new(&lookup, Some(&FakeSecrets))).await
    }

    #[tokio::test]
    async fn unset_is_the_in_process_bus_and_plaintext_is_the_default() {
        assert!(load(&[]).await.unwrap().is_none());
        let c = load(&[("KAFKA_BOOTSTRAP_SERVERS", "b:9092")])
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(c.security, KafkaSecurity::Plaintext));
        assert_eq!(c.topic, "price-events");
    }

    #[tokio::test]
    async fn a_sasl_password_secret_is_read_by_its_password_field() {
        for id in ["plain", "json-password"] {
            let c = load(&[
                ("KAFKA_BOOTSTRAP_SERVERS", "b:9096"),
                ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                ("KAFKA_SASL_USERNAME", "app"),
                ("KAFKA_SASL_PASSWORD_SECRET_ID", id),
            ])
            .await
            .unwrap()
            .unwrap();
            let KafkaSecurity::Password { password, tls, .. } = c.security else {
                panic!("{:?}", c.security)
            };
            assert!(tls);
            assert!(
                ["plain-value", "from-json"].contains(&password.expose_secret()),
                "{id}"
            );
        }
    }

    #[tokio::test]
    async fn oauthbearer_is_msk_iam_signed_for_aws_region() {
        let c = load(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b-1.msk:9098"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "oauthbearer"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .await
        .unwrap()
        .unwrap();
        assert!(
            matches!(&c.security, KafkaSecurity::MskIam { region } if region == "eu-west-1"),
            "{:?}",
            c.security
        );
        let c = load(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b-1.msk:9096"),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", "app"),
            ("KAFKA_SASL_PASSWORD", "pw"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .await
        .unwrap()
        .unwrap();
        assert!(matches!(c.security, KafkaSecurity::Password { .. }));
    }

    #[tokio::test]
    async fn contradicting_settings_name_the_variable_to_fix() {
        let base = ("KAFKA_BOOTSTRAP_SERVERS", "b:9098");
        for (pairs, var) in [
            (
                vec![
                    base,
                    ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
                    ("AWS_REGION", "eu-west-1"),
                ],
                "KAFKA_SECURITY_PROTOCOL",
            ),
            (
                vec![
                    base,
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                    ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
                    ("AWS_REGION", "eu-west-1"),
                ],
                "KAFKA_SECURITY_PROTOCOL",
            ),
            (
                vec![
                    base,
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                    ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
                ],
                "AWS_REGION",
            ),
            (
                vec![base, ("KAFKA_SECURITY_PROTOCOL", "tls")],
                "KAFKA_SECURITY_PROTOCOL",
            ),
            (
                vec![base, ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")],
                "KAFKA_SASL_MECHANISM",
            ),
            (
                vec![
                    base,
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                    ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                    ("KAFKA_SASL_PASSWORD", "pw"),
                ],
                "KAFKA_SASL_USERNAME",
            ),
            (vec![base, ("KAFKA_TOPIC", "bad topic")], "KAFKA_TOPIC"),
        ] {
            match load(&pairs).await {
                Err(ConfigError::Invalid { var: v, .. }) => assert_eq!(v, var, "{pairs:?}"),
                other => panic!("{pairs:?}: expected an error naming {var}, got {other:?}"),
            }
        }
    }
}
