//! The configuration of every function and of the local runner: the list of sections.
//!
//! Each adapter owns its settings (their type, their `from_env`, what the banner shows of
//! them, their tests) beside its code; this module only lists the sections and reads them
//! once, at start-up, through the one reader of the environment ([`Env`]). A section whose
//! variables are unset is `None`, and its port uses the embedded default (see DESIGN.md),
//! so an empty environment is a valid configuration. Secret-bearing variables have a
//! `*_SECRET_ID` twin naming a Secrets Manager secret, resolved here, once per container.

pub mod env;

use crate::cache::CacheConfig;
use crate::domain::{AverageSpec, DEFAULT_AVERAGES};
use crate::events::KafkaConfig;
use crate::jobs::DynamoJobsConfig;
use crate::providers::ProvidersConfig;
use crate::redis_connection::RedisConfig;
use crate::scheduler::SqsQueueConfig;
use crate::secrets::SecretStore;
use crate::store::DatabaseConfig;
use crate::telemetry::MetricsConfig;
use crate::usecases::polling::PollSettings;

pub use env::{ConfigError, Env, ProcessEnv, SecretField, check_scheme};

/// The whole, validated configuration of the shared library's adapters and use cases.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL; `None` means the in-memory store.
    pub database: Option<DatabaseConfig>,
    /// Redis; `None` means the in-process cache and limiter only.
    pub redis: Option<RedisConfig>,
    /// Kafka; `None` means the in-process event bus.
    pub kafka: Option<KafkaConfig>,
    /// Every provider's settings and the default one.
    pub providers: ProvidersConfig,
    /// Cache lifetimes and size.
    pub cache: CacheConfig,
    /// Where metrics go.
    pub metrics: MetricsConfig,
    /// The moving averages the consumer keeps (`MA_WINDOWS`).
    pub averages: Vec<AverageSpec>,
    /// The DynamoDB job store; `None` means jobs are kept in memory.
    pub jobs: Option<DynamoJobsConfig>,
    /// The SQS tick queue; `None` means ticks wait in this process.
    pub queue: Option<SqsQueueConfig>,
    /// How the poller paces and spreads its provider calls.
    pub polling: PollSettings,
}

impl Config {
    /// Reads the process environment, resolving `*_SECRET_ID` variables through Secrets
    /// Manager (an SDK client is only created when one is present).
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::read(&ProcessEnv::read().await.env()).await
    }

    /// Builds the configuration from `lookup` (a variable's value by name), reading secrets
    /// from `secrets`. Blank values count as unset.
    pub async fn load(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: Option<&dyn SecretStore>,
    ) -> Result<Self, ConfigError> {
        Self::read(&Env::new(&lookup, secrets)).await
    }

    /// Reads every section from `env`.
    pub async fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env).await?,
            redis: RedisConfig::from_env(env).await?,
            kafka: KafkaConfig::from_env(env).await?,
            providers: ProvidersConfig::from_env(env).await?,
            cache: CacheConfig::from_env(env)?,
            metrics: MetricsConfig::from_env(env)?,
            averages: match env.parsed::<AverageList>("MA_WINDOWS")? {
                Some(AverageList(list)) => list,
                None => DEFAULT_AVERAGES.to_vec(),
            },
            jobs: DynamoJobsConfig::from_env(env)?,
            queue: SqsQueueConfig::from_env(env)?,
            polling: PollSettings::from_env(env)?,
        })
    }
}

/// `MA_WINDOWS`: a list such as `5, ema:26, sma:20`.
struct AverageList(Vec<AverageSpec>);

impl std::str::FromStr for AverageList {
    type Err = crate::domain::AverageSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AverageSpec::parse_list(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};
    use crate::domain::ProviderId;
    use crate::telemetry::MetricsMode;

    async fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = vars(pairs);
        Config::load(|k| map.get(k).cloned(), Some(&FakeSecrets)).await
    }

    #[tokio::test]
    async fn empty_environment_is_all_embedded_defaults() {
        let c = load(&[]).await.unwrap();
        assert!(c.database.is_none() && c.redis.is_none() && c.kafka.is_none());
        assert!(c.providers.finnhub.is_none());
        assert_eq!(c.providers.default_provider, ProviderId::Simulated);
        assert_eq!(c.cache.fresh_ttl, Duration::from_secs(15));
        assert_eq!(c.metrics.mode, MetricsMode::Off);
        assert_eq!(c.averages, DEFAULT_AVERAGES);
        assert!(c.jobs.is_none() && c.queue.is_none());
    }

    #[tokio::test]
    async fn moving_averages_are_read_from_ma_windows() {
        let c = load(&[("MA_WINDOWS", "5, ema:26, sma:20")]).await.unwrap();
        let names: Vec<String> = c.averages.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["sma:5", "sma:20", "ema:26"]);
    }

    #[tokio::test]
    async fn a_finnhub_key_makes_finnhub_the_default() {
        let c = load(&[("FINNHUB_API_KEY", "k")]).await.unwrap();
        assert_eq!(c.providers.default_provider, ProviderId::Finnhub);
    }

    #[tokio::test]
    async fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DEFAULT_PROVIDER", "bloomberg")], "DEFAULT_PROVIDER"),
            (&[("MA_WINDOWS", "sma:0")], "MA_WINDOWS"),
            (&[("MA_WINDOWS", "wma:5")], "MA_WINDOWS"),
            (&[("POLL_CONCURRENCY", "0")], "POLL_CONCURRENCY"),
        ];
        for (pairs, var) in cases {
            let err = load(pairs).await.unwrap_err().to_string();
            assert!(err.starts_with(var), "{pairs:?}: {err}");
        }
    }

    #[tokio::test]
    async fn secrets_never_appear_in_debug_output() {
        let c = load(&[
            ("DATABASE_URL", "postgres://u:hunter2@h/db"),
            ("FINNHUB_API_KEY", "sk-very-secret"),
        ])
        .await
        .unwrap();
        let dump = format!("{c:?}");
        assert!(
            !dump.contains("hunter2") && !dump.contains("sk-very-secret"),
            "{dump}"
        );
    }
}
