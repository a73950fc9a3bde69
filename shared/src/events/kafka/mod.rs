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
//! - `bus.rs`: the producer behind the [`EventBus`](super::EventBus) port;
//! - `client.rs`: what every client shares (connection settings, the MSK IAM token context);
//! - `config.rs`: the settings, with the security mode as one enum.

mod bus;
mod client;
mod config;

pub use bus::{KafkaBus, PAUSE_AFTER_FAILURE};
pub use client::{
    KafkaContext, MskIamToken, TOKEN_TIMEOUT, TokenError, client_config, msk_iam_token,
};
pub use config::{KafkaConfig, KafkaSecurity, PasswordMechanism};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::ClientContext;

    use super::*;

    fn config(security: KafkaSecurity) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: "b-1.msk:9098".into(),
            topic: "price-events".into(),
            delivery_timeout: Duration::from_secs(5),
            security,
        }
    }

    fn iam() -> KafkaSecurity {
        KafkaSecurity::MskIam {
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn the_context_signs_only_when_the_config_names_an_iam_region() {
        let plain = KafkaContext::for_config(&config(KafkaSecurity::Plaintext));
        assert_eq!(plain.iam_region(), None);
        let iam = KafkaContext::for_config(&config(iam()));
        assert_eq!(iam.iam_region(), Some("eu-west-1"));
    }

    #[test]
    fn a_token_request_without_iam_is_refused_with_the_variables_to_set() {
        let plain = KafkaContext::for_config(&config(KafkaSecurity::Plaintext));
        let error = plain.generate_oauth_token(None).err().unwrap().to_string();
        assert!(
            error.contains("KAFKA_SASL_MECHANISM=OAUTHBEARER"),
            "{error}"
        );
        assert!(error.contains("AWS_REGION"), "{error}");
    }

    #[test]
    fn clients_with_the_context_are_made_for_every_security_setting() {
        let scram = KafkaSecurity::Password {
            mechanism: PasswordMechanism::ScramSha512,
            username: "app".into(),
            password: "pw".to_owned().into(),
            tls: true,
        };
        for security in [KafkaSecurity::Plaintext, KafkaSecurity::Tls, scram, iam()] {
            let c = config(security);
            let bus = KafkaBus::new(&c);
            assert!(bus.is_ok(), "{:?}", c.security);
        }
    }
}
