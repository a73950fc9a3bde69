//! The one test harness: brings each test its own slice of the real local stack.
//!
//! Every test gets its own PostgreSQL database, Redis key prefix and Kafka topic (and
//! consumer group), so tests run in parallel and share nothing. The stack itself is
//! started by `local/test.sh`; the endpoints come from `MDB_TEST_*` variables with the
//! stack's default ports. A missing service fails the test: nothing is skipped.

pub mod app;
pub mod broker;
pub mod dynamodb;
pub mod event_source;
pub mod fake_finnhub;
pub mod kafka;
pub mod postgres;
pub mod price_events;
pub mod proxy;
pub mod redis;

pub use app::TestApp;
pub use fake_finnhub::{FakeFinnhub, Reply};

/// A name no other test uses: `{prefix}_{uuid}`, lower-case and safe in SQL, Redis and Kafka.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// An endpoint of the local stack, from `var` or its default.
pub fn endpoint(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The AWS endpoint of the local emulator (moto).
pub fn aws_endpoint() -> String {
    endpoint("MDB_TEST_AWS_ENDPOINT", "http://127.0.0.1:5000")
}

/// An SDK configuration pointing at the local emulator with dummy credentials.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "harness",
        ))
        .load()
        .await
}

/// A Secrets Manager client on the local emulator.
pub async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_sdk_config().await)
}

/// Creates a secret no other test uses, holding `value`; returns its name.
pub async fn create_secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    let name = unique_name("mdb_t_secret");
    client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto must be running (local/test.sh starts it): {e:?}"));
    name
}

/// Loads the configuration from `vars` alone, resolving secret ids through `secrets`.
pub async fn load_config(
    vars: &[(&str, &str)],
    secrets: &dyn market_data::secrets::SecretStore,
) -> Result<market_data::Config, market_data::config::ConfigError> {
    market_data::Config::load(
        |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        },
        Some(secrets),
    )
    .await
}
