//! The one test harness: brings each test its own slice of the real local stack.
//!
//! Every test gets its own PostgreSQL database, Redis key prefix and Kafka topic (and
//! consumer group), so tests run in parallel and share nothing. The stack itself is
//! started by `local/test.sh`; the endpoints come from `MDB_TEST_*` variables with the
//! stack's default ports. A missing service fails the test: nothing is skipped.

pub mod app;
pub mod broker;
pub mod cfn_response;
pub mod dynamodb;
pub mod emf;
pub mod event_source;
pub mod fake_finnhub;
pub mod fake_provider;
pub mod kafka;
pub mod log_capture;
pub mod postgres;
pub mod price_events;
pub mod proxy;
pub mod redis;
pub mod runner;
pub mod tls;

pub use app::TestApp;
pub use emf::EmfLines;
pub use fake_finnhub::{FakeFinnhub, Reply};
pub use fake_provider::{FakeProvider, Kind, ProviderReply};

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

/// Whether this test has its process to itself. When it has not, runs it again alone in a
/// process of its own, fails if that run did not pass, and answers `false`: the caller
/// returns at once, its child did the work.
///
/// nextest gives every test a process of its own; `cargo test` runs the tests of the binary
/// as threads of one process. A test that takes over process-wide state (the global log
/// subscriber) calls this first, with its path in the binary (`module::test_name`).
pub fn in_own_process(test: &str) -> bool {
    const CHILD: &str = "MDB_TEST_OWN_PROCESS";
    if std::env::var_os(CHILD).is_some()
        || std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|m| m == "process-per-test")
    {
        return true;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test}, run alone in its own process, did not pass"
    );
    false
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

/// Loads the HTTP edge's settings from `vars` alone, resolving secret ids through `secrets`.
pub async fn load_edge_config(
    vars: &[(&str, &str)],
    secrets: &dyn market_data::secrets::SecretStore,
) -> Result<price_api::edge::EdgeConfig, market_data::config::ConfigError> {
    let lookup = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    };
    price_api::edge::EdgeConfig::from_env(&market_data::config::Env::new(&lookup, Some(secrets)))
        .await
}
