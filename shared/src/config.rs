//! The one configuration of every function and of the local runner.
//!
//! Read from the environment once at start-up, validated as a whole, with errors that
//! name the variable to fix. A port whose variables are unset uses its embedded default
//! (see DESIGN.md), so an empty environment is a valid configuration.
//!
//! Secret-bearing variables have a `*_SECRET_ID` twin (`DATABASE_URL` / `DATABASE_SECRET_ID`,
//! `FINNHUB_API_KEY` / `FINNHUB_API_KEY_SECRET_ID`, ...) naming a secret
//! in AWS Secrets Manager; those are resolved here, once per container.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::api_keys::ApiKeys;
use crate::domain::{AverageSpec, DEFAULT_AVERAGES, ProviderId};
use crate::ratelimit::Quota;
use crate::secrets::{SecretError, SecretStore, SecretsManager};

mod polling;
pub use polling::PollingConfig;

/// Finnhub's public REST API, used unless `FINNHUB_BASE_URL` says otherwise.
pub const FINNHUB_DEFAULT_BASE_URL: &str = "https://finnhub.io/api/v1";

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL; `None` means the in-memory store.
    pub database: Option<DatabaseConfig>,
    /// Redis; `None` means the in-process cache only.
    pub redis: Option<RedisConfig>,
    /// Kafka; `None` means the in-process event bus.
    pub kafka: Option<KafkaConfig>,
    /// Finnhub; usable only when it has an API key.
    pub finnhub: FinnhubConfig,
    /// Cache lifetimes and size.
    pub cache: CacheConfig,
    /// The provider used when a request names none.
    pub default_provider: ProviderId,
    /// Who may call the API and how often.
    pub access: AccessConfig,
    /// The HTTP edge: CORS and the time a request may take.
    pub http: HttpConfig,
    /// Where metrics go.
    pub metrics: MetricsConfig,
    /// The moving averages the consumer keeps (`MA_WINDOWS`).
    pub averages: Vec<AverageSpec>,
    /// Polling jobs: their store, scheduler and pace.
    pub polling: PollingConfig,
}

/// API keys and rate limits.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// The limit of a client without its own: `None` turns rate limiting off.
    pub default_quota: Option<Quota>,
    /// The accepted keys; `None` means the API is open (no key asked for).
    pub api_keys: Option<ApiKeys>,
}

/// The HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Origins browsers may call the API from; empty means CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
}

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    /// CloudWatch Embedded Metric Format lines on stdout (the default on Lambda).
    Emf,
    /// The debug log.
    Log,
    /// Nowhere (the default elsewhere).
    Off,
}

/// Metrics settings.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Where they go.
    pub mode: MetricsMode,
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The `Function` dimension: the Lambda function's name, or `local`.
    pub function: String,
}

/// PostgreSQL settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Connection URL (`postgres://user:pass@host:port/db`); secret because it holds a password.
    pub url: SecretString,
    /// Most connections one container opens.
    pub pool_size: usize,
    /// Apply the migrations, under an advisory lock, when the process starts.
    pub migrate_on_start: bool,
}

/// Redis settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Connection URL; secret because it may hold a password.
    pub url: SecretString,
    /// Prefix of every key this service writes, so several deployments or tests can share a server.
    pub key_prefix: String,
    /// Longest wait for any one Redis operation; past it the cache counts as a miss.
    pub timeout: Duration,
}

/// Kafka settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Topic of price events.
    pub topic: String,
    /// How long the producer keeps trying to deliver one event before giving up on it.
    pub delivery_timeout: Duration,
    /// `security.protocol` and SASL settings, when the cluster needs them (MSK does).
    pub security: KafkaSecurity,
}

/// How the Kafka client authenticates and encrypts.
#[derive(Debug, Clone, Default)]
pub struct KafkaSecurity {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: Option<String>,
    /// `SCRAM-SHA-512`, `SCRAM-SHA-256`, `PLAIN`, or `OAUTHBEARER` for MSK IAM authentication.
    pub sasl_mechanism: Option<String>,
    /// SASL user.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<SecretString>,
    /// The AWS region MSK IAM tokens are signed for (`AWS_REGION`); set exactly when the
    /// mechanism is `OAUTHBEARER`, which this service only speaks as MSK IAM authentication.
    pub iam_region: Option<String>,
}

/// Finnhub settings.
#[derive(Debug, Clone)]
pub struct FinnhubConfig {
    /// API key; without one the provider is reported as not configured.
    pub api_key: Option<SecretString>,
    /// Base URL of the REST API, overridable for tests and proxies.
    pub base_url: String,
    /// Total time allowed for one request, connection included.
    pub timeout: Duration,
}

/// Cache lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// A cached quote younger than this is served without asking the provider.
    pub fresh_ttl: Duration,
    /// A cached quote younger than this is served, flagged stale, when the provider fails.
    pub stale_ttl: Duration,
    /// Most symbols the in-process cache holds.
    pub l1_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            fresh_ttl: Duration::from_secs(15),
            stale_ttl: Duration::from_secs(600),
            l1_capacity: 10_000,
        }
    }
}

/// Why the configuration cannot be used. Every variant names the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value that cannot be used.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// Both a value and a secret id were given for the same setting.
    #[error("set only one of {var} and {secret_var}")]
    Ambiguous {
        /// The variable holding the value.
        var: &'static str,
        /// The variable naming the secret.
        secret_var: &'static str,
    },
    /// A `*_SECRET_ID` could not be resolved.
    #[error("{var}: {source}")]
    Secret {
        /// The `*_SECRET_ID` variable.
        var: &'static str,
        /// What the secret store said.
        #[source]
        source: SecretError,
    },
}

/// Where a secret-bearing setting comes from, before secrets are resolved.
enum SecretSource {
    Unset,
    Value(SecretString),
    SecretId(String),
}

impl Config {
    /// Reads the process environment, resolving `*_SECRET_ID` variables through Secrets
    /// Manager (an SDK client is only created when one is present).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let needs_secrets = vars.keys().any(|k| k.ends_with("_SECRET_ID"));
        let store = if needs_secrets {
            Some(SecretsManager::from_env().await)
        } else {
            None
        };
        Self::load(
            |name| vars.get(name).cloned(),
            store.as_ref().map(|s| s as &dyn SecretStore),
        )
        .await
    }

    /// Builds the configuration from `lookup` (a variable's value by name), reading secrets
    /// from `secrets`. Blank values count as unset.
    pub async fn load(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: Option<&dyn SecretStore>,
    ) -> Result<Self, ConfigError> {
        let env = Env {
            lookup: &lookup,
            secrets,
        };

        let database = match env.secret("DATABASE_URL", "DATABASE_SECRET_ID").await? {
            None => None,
            Some(raw) => Some(DatabaseConfig {
                url: database_url_from_secret(raw)?,
                pool_size: env.parse_in("DATABASE_POOL_SIZE", 8, 1..=256)?,
                migrate_on_start: env.flag("DATABASE_MIGRATE_ON_START", false)?,
            }),
        };

        let redis = match env.secret("REDIS_URL", "REDIS_URL_SECRET_ID").await? {
            None => None,
            Some(url) => Some(RedisConfig {
                url: validated_url("REDIS_URL", url, &["redis", "rediss"])?,
                key_prefix: env.get("REDIS_KEY_PREFIX").unwrap_or_else(|| "mdb:".into()),
                timeout: Duration::from_millis(env.parse_in(
                    "REDIS_TIMEOUT_MS",
                    250,
                    1..=60_000,
                )?),
            }),
        };

        let kafka = match env.get("KAFKA_BOOTSTRAP_SERVERS") {
            None => None,
            Some(servers) => Some(KafkaConfig {
                bootstrap_servers: servers,
                topic: kafka_topic(env.get("KAFKA_TOPIC"))?,
                delivery_timeout: Duration::from_millis(env.parse_in(
                    "KAFKA_DELIVERY_TIMEOUT_MS",
                    5_000,
                    100..=300_000,
                )?),
                security: kafka_security(&env).await?,
            }),
        };

        let finnhub_key = env
            .secret("FINNHUB_API_KEY", "FINNHUB_API_KEY_SECRET_ID")
            .await?;
        let finnhub = FinnhubConfig {
            base_url: validated_url(
                "FINNHUB_BASE_URL",
                SecretString::from(
                    env.get("FINNHUB_BASE_URL")
                        .unwrap_or_else(|| FINNHUB_DEFAULT_BASE_URL.into()),
                ),
                &["http", "https"],
            )?
            .expose_secret()
            .trim_end_matches('/')
            .to_owned(),
            timeout: Duration::from_millis(env.parse_in(
                "FINNHUB_TIMEOUT_MS",
                3_000,
                100..=30_000,
            )?),
            api_key: finnhub_key,
        };

        let fresh_ttl = env.parse_in("CACHE_TTL_SECONDS", 15, 1..=86_400)?;
        let stale_ttl = env.parse_in("CACHE_STALE_TTL_SECONDS", 600, 1..=604_800)?;
        if stale_ttl < fresh_ttl {
            return Err(ConfigError::Invalid {
                var: "CACHE_STALE_TTL_SECONDS",
                reason: format!("must be at least CACHE_TTL_SECONDS ({fresh_ttl})"),
            });
        }
        let cache = CacheConfig {
            fresh_ttl: Duration::from_secs(fresh_ttl),
            stale_ttl: Duration::from_secs(stale_ttl),
            l1_capacity: env.parse_in("CACHE_L1_CAPACITY", 10_000, 1..=10_000_000)?,
        };

        let default_provider = match env.get("DEFAULT_PROVIDER") {
            Some(name) => name.parse().map_err(|e| ConfigError::Invalid {
                var: "DEFAULT_PROVIDER",
                reason: format!("{e}"),
            })?,
            None if finnhub.api_key.is_some() => ProviderId::Finnhub,
            None => ProviderId::Simulated,
        };

        let per_minute = env.parse_in("RATE_LIMIT_PER_MINUTE", 600, 0..=1_000_000)?;
        let burst = env.parse_in("RATE_LIMIT_BURST", per_minute.max(1), 1..=1_000_000)?;
        let api_keys =
            match env.secret("API_KEYS", "API_KEYS_SECRET_ID").await? {
                None => None,
                Some(json) => Some(ApiKeys::parse(json.expose_secret()).map_err(|e| {
                    ConfigError::Invalid {
                        var: "API_KEYS",
                        reason: e.to_string(),
                    }
                })?),
            };
        let access = AccessConfig {
            default_quota: (per_minute > 0).then_some(Quota { per_minute, burst }),
            api_keys,
        };

        let http = HttpConfig {
            cors_allowed_origins: cors_origins(env.get("CORS_ALLOWED_ORIGINS"))?,
            request_timeout: Duration::from_millis(env.parse_in(
                "REQUEST_TIMEOUT_MS",
                25_000,
                100..=900_000,
            )?),
        };

        let function = env.get("AWS_LAMBDA_FUNCTION_NAME");
        let metrics = MetricsConfig {
            mode: match env
                .get("METRICS")
                .map(|m| m.to_ascii_lowercase())
                .as_deref()
            {
                None if function.is_some() => MetricsMode::Emf,
                None => MetricsMode::Off,
                Some("emf") => MetricsMode::Emf,
                Some("log") => MetricsMode::Log,
                Some("off") => MetricsMode::Off,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        var: "METRICS",
                        reason: format!("expected emf, log or off, got {other:?}"),
                    });
                }
            },
            namespace: env
                .get("METRICS_NAMESPACE")
                .unwrap_or_else(|| "MarketData".into()),
            function: function.unwrap_or_else(|| "local".into()),
        };

        let averages = match env.get("MA_WINDOWS") {
            None => DEFAULT_AVERAGES.to_vec(),
            Some(raw) => AverageSpec::parse_list(&raw).map_err(|e| ConfigError::Invalid {
                var: "MA_WINDOWS",
                reason: e.to_string(),
            })?,
        };
        let polling = PollingConfig::load(&|name| env.get(name))?;

        Ok(Self {
            database,
            redis,
            kafka,
            finnhub,
            cache,
            default_provider,
            access,
            http,
            metrics,
            averages,
            polling,
        })
    }
}

/// `*` or a comma-separated list of origins (`https://app.example.com`), each with a scheme.
fn cors_origins(raw: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            if o == "*" || o.starts_with("https://") || o.starts_with("http://") {
                Ok(o.trim_end_matches('/').to_owned())
            } else {
                Err(ConfigError::Invalid {
                    var: "CORS_ALLOWED_ORIGINS",
                    reason: format!("{o:?} is neither * nor an http(s) origin"),
                })
            }
        })
        .collect()
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    secrets: Option<&'a dyn SecretStore>,
}

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse_in<T>(
        &self,
        var: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let value: T = raw.parse().map_err(|_| ConfigError::Invalid {
            var,
            reason: format!("expected a whole number, got {raw:?}"),
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::Invalid {
                var,
                reason: format!(
                    "must be between {} and {}, got {value}",
                    range.start(),
                    range.end()
                ),
            });
        }
        Ok(value)
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                var,
                reason: format!("expected true or false, got {other:?}"),
            }),
        }
    }

    fn one_of(&self, var: &'static str, allowed: &[&str]) -> Result<Option<String>, ConfigError> {
        match self.get(var) {
            None => Ok(None),
            Some(v) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(&v))
                .map(|a| Some((*a).to_owned()))
                .ok_or_else(|| ConfigError::Invalid {
                    var,
                    reason: format!("expected one of {}, got {v:?}", allowed.join(", ")),
                }),
        }
    }

    fn source(
        &self,
        var: &'static str,
        secret_var: &'static str,
    ) -> Result<SecretSource, ConfigError> {
        match (self.get(var), self.get(secret_var)) {
            (Some(_), Some(_)) => Err(ConfigError::Ambiguous { var, secret_var }),
            (Some(v), None) => Ok(SecretSource::Value(SecretString::from(v))),
            (None, Some(id)) => Ok(SecretSource::SecretId(id)),
            (None, None) => Ok(SecretSource::Unset),
        }
    }

    /// The value of `var`, or of the secret named by `secret_var`.
    async fn secret(
        &self,
        var: &'static str,
        secret_var: &'static str,
    ) -> Result<Option<SecretString>, ConfigError> {
        match self.source(var, secret_var)? {
            SecretSource::Unset => Ok(None),
            SecretSource::Value(v) => Ok(Some(v)),
            SecretSource::SecretId(id) => {
                let store = self.secrets.ok_or_else(|| ConfigError::Invalid {
                    var: secret_var,
                    reason: "is set but no secret store is available".into(),
                })?;
                let value =
                    store
                        .secret_string(&id)
                        .await
                        .map_err(|source| ConfigError::Secret {
                            var: secret_var,
                            source,
                        })?;
                Ok(Some(secret_field(value, var)))
            }
        }
    }
}

/// A secret may hold the bare value or a JSON object; for an object, the field named like
/// the variable (`FINNHUB_API_KEY`), `api_key`, `password` or `url` is taken, in that order.
/// Database secrets in the RDS format are handled by [`database_url_from_secret`].
fn secret_field(value: SecretString, var: &str) -> SecretString {
    let Ok(serde_json::Value::Object(map)) =
        serde_json::from_str::<serde_json::Value>(value.expose_secret())
    else {
        return value;
    };
    if var == "DATABASE_URL" && map.contains_key("host") {
        return value;
    }
    [var, "api_key", "password", "url"]
        .iter()
        .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
        .map(|s| SecretString::from(s.to_owned()))
        .unwrap_or(value)
}

/// Accepts a `postgres://` URL, or an RDS-style JSON secret
/// (`{"username", "password", "host", "port", "dbname"}`) turned into one.
fn database_url_from_secret(raw: SecretString) -> Result<SecretString, ConfigError> {
    let text = raw.expose_secret();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let field = |k: &str| {
            map.get(k).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let missing = |k: &str| ConfigError::Invalid {
            var: "DATABASE_URL",
            reason: format!("the database secret has no {k:?} field"),
        };
        let user = field("username").ok_or_else(|| missing("username"))?;
        let password = field("password").ok_or_else(|| missing("password"))?;
        let host = field("host").ok_or_else(|| missing("host"))?;
        let port = field("port").unwrap_or_else(|| "5432".into());
        let db = field("dbname").unwrap_or_else(|| "postgres".into());
        return Ok(SecretString::from(format!(
            "postgres://{}:{}@{host}:{port}/{}",
            percent_encode(&user),
            percent_encode(&password),
            percent_encode(&db)
        )));
    }
    validated_url("DATABASE_URL", raw, &["postgres", "postgresql"])
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn validated_url(
    var: &'static str,
    url: SecretString,
    schemes: &[&str],
) -> Result<SecretString, ConfigError> {
    let scheme = url
        .expose_secret()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if schemes.contains(&s.as_str()) => Ok(url),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!(
                "expected a URL starting with {}://",
                schemes.join(":// or ")
            ),
        }),
    }
}

async fn kafka_security(env: &Env<'_>) -> Result<KafkaSecurity, ConfigError> {
    let protocol = env.one_of(
        "KAFKA_SECURITY_PROTOCOL",
        &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"],
    )?;
    let sasl_mechanism = env.one_of(
        "KAFKA_SASL_MECHANISM",
        &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"],
    )?;
    // OAUTHBEARER here means MSK IAM: tokens signed with the function's AWS credentials for
    // the region, accepted by MSK only on its TLS listener.
    let iam_region = if sasl_mechanism.as_deref() == Some("OAUTHBEARER") {
        if protocol.as_deref() != Some("sasl_ssl") {
            return Err(ConfigError::Invalid {
                var: "KAFKA_SECURITY_PROTOCOL",
                reason: "KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs sasl_ssl".into(),
            });
        }
        Some(env.get("AWS_REGION").ok_or_else(|| {
            ConfigError::Invalid {
                var: "AWS_REGION",
                reason:
                    "KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) signs tokens for a region: set it"
                        .into(),
            }
        })?)
    } else {
        None
    };
    Ok(KafkaSecurity {
        protocol,
        sasl_mechanism,
        sasl_username: env.get("KAFKA_SASL_USERNAME"),
        sasl_password: env
            .secret("KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_SECRET_ID")
            .await?,
        iam_region,
    })
}

fn kafka_topic(raw: Option<String>) -> Result<String, ConfigError> {
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
        Err(ConfigError::Invalid {
            var: "KAFKA_TOPIC",
            reason: format!("{topic:?} is not a valid Kafka topic name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    async fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = vars(pairs);
        Config::load(|k| map.get(k).cloned(), Some(&FakeSecrets)).await
    }

    struct FakeSecrets;

    #[async_trait]
    impl SecretStore for FakeSecrets {
        async fn secret_string(&self, id: &str) -> Result<SecretString, SecretError> {
            match id {
                "plain" => Ok("plain-value".to_owned().into()),
                "json-key" => Ok(r#"{"api_key":"from-json"}"#.to_owned().into()),
                "rds" => Ok(r#"{"username":"app","password":"p@ss word","host":"db.example","port":5432,"dbname":"market"}"#.to_owned().into()),
                _ => Err(SecretError::Unavailable {
                    id: id.to_owned(),
                    reason: "ResourceNotFoundException".into(),
                }),
            }
        }
    }

    #[tokio::test]
    async fn empty_environment_is_all_embedded_defaults() {
        let c = load(&[]).await.unwrap();
        assert!(c.database.is_none() && c.redis.is_none() && c.kafka.is_none());
        assert!(c.finnhub.api_key.is_none());
        assert_eq!(c.finnhub.base_url, FINNHUB_DEFAULT_BASE_URL);
        assert_eq!(c.default_provider, ProviderId::Simulated);
        assert_eq!(c.cache.fresh_ttl, Duration::from_secs(15));
        assert_eq!(
            c.access.default_quota,
            Some(Quota {
                per_minute: 600,
                burst: 600
            })
        );
        assert!(c.access.api_keys.is_none());
        assert!(c.http.cors_allowed_origins.is_empty());
        assert_eq!(c.metrics.mode, MetricsMode::Off);
        assert_eq!(c.averages, DEFAULT_AVERAGES);
    }

    #[tokio::test]
    async fn moving_averages_are_read_from_ma_windows() {
        let c = load(&[("MA_WINDOWS", "5, ema:26, sma:20")]).await.unwrap();
        let names: Vec<String> = c.averages.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["sma:5", "sma:20", "ema:26"]);
    }

    #[tokio::test]
    async fn edge_settings_are_read() {
        let c = load(&[
            ("RATE_LIMIT_PER_MINUTE", "50"),
            ("RATE_LIMIT_BURST", "10"),
            ("API_KEYS", r#"{"team-a":"a-very-long-test-key-1"}"#),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com/, http://localhost:3000",
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", "market-data-dev-price-api"),
        ])
        .await
        .unwrap();
        assert_eq!(
            c.access.default_quota,
            Some(Quota {
                per_minute: 50,
                burst: 10
            })
        );
        assert_eq!(c.access.api_keys.unwrap().len(), 1);
        assert_eq!(
            c.http.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(c.metrics.mode, MetricsMode::Emf);
        assert_eq!(c.metrics.function, "market-data-dev-price-api");
        let off = load(&[("RATE_LIMIT_PER_MINUTE", "0")]).await.unwrap();
        assert_eq!(off.access.default_quota, None);
    }

    #[tokio::test]
    async fn a_finnhub_key_makes_finnhub_the_default() {
        let c = load(&[("FINNHUB_API_KEY", "k")]).await.unwrap();
        assert_eq!(c.default_provider, ProviderId::Finnhub);
        assert_eq!(c.finnhub.api_key.unwrap().expose_secret(), "k");
    }

    #[tokio::test]
    async fn secret_ids_are_resolved_plain_or_json() {
        let c = load(&[("FINNHUB_API_KEY_SECRET_ID", "json-key")])
            .await
            .unwrap();
        assert_eq!(c.finnhub.api_key.unwrap().expose_secret(), "from-json");
        let c = load(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("KAFKA_SASL_PASSWORD_SECRET_ID", "plain"),
        ])
        .await
        .unwrap();
        let kafka = c.kafka.unwrap();
        assert_eq!(
            kafka.security.sasl_password.unwrap().expose_secret(),
            "plain-value"
        );
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
        .unwrap();
        let security = c.kafka.unwrap().security;
        assert_eq!(security.protocol.as_deref(), Some("sasl_ssl"));
        assert_eq!(security.sasl_mechanism.as_deref(), Some("OAUTHBEARER"));
        assert_eq!(security.iam_region.as_deref(), Some("eu-west-1"));

        let c = load(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b-1.msk:9096"),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", "app"),
            ("KAFKA_SASL_PASSWORD", "pw"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .await
        .unwrap();
        assert_eq!(c.kafka.unwrap().security.iam_region, None);
    }

    #[tokio::test]
    async fn oauthbearer_needs_tls_and_a_region() {
        for (pairs, var) in [
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:9098"),
                    ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
                    ("AWS_REGION", "eu-west-1"),
                ][..],
                "KAFKA_SECURITY_PROTOCOL",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:9098"),
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                    ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
                    ("AWS_REGION", "eu-west-1"),
                ][..],
                "KAFKA_SECURITY_PROTOCOL",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:9098"),
                    ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                    ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
                ][..],
                "AWS_REGION",
            ),
        ] {
            match load(pairs).await {
                Err(ConfigError::Invalid { var: v, .. }) => assert_eq!(v, var, "{pairs:?}"),
                other => panic!("{pairs:?}: expected an error naming {var}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn rds_style_database_secret_becomes_a_url() {
        let c = load(&[("DATABASE_SECRET_ID", "rds")]).await.unwrap();
        assert_eq!(
            c.database.unwrap().url.expose_secret(),
            "postgres://app:p%40ss%20word@db.example:5432/market"
        );
    }

    #[tokio::test]
    async fn value_and_secret_id_together_are_ambiguous() {
        let err = load(&[
            ("FINNHUB_API_KEY", "k"),
            ("FINNHUB_API_KEY_SECRET_ID", "plain"),
        ])
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "set only one of FINNHUB_API_KEY and FINNHUB_API_KEY_SECRET_ID"
        );
    }

    #[tokio::test]
    async fn unresolvable_secret_names_the_variable_not_the_value() {
        let err = load(&[("DATABASE_SECRET_ID", "missing")])
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("DATABASE_SECRET_ID: "), "{msg}");
        assert!(msg.contains("missing"), "{msg}");
    }

    #[tokio::test]
    async fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("CACHE_TTL_SECONDS", "soon")], "CACHE_TTL_SECONDS"),
            (&[("CACHE_TTL_SECONDS", "0")], "CACHE_TTL_SECONDS"),
            (
                &[
                    ("CACHE_TTL_SECONDS", "60"),
                    ("CACHE_STALE_TTL_SECONDS", "30"),
                ],
                "CACHE_STALE_TTL_SECONDS",
            ),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("REDIS_URL", "127.0.0.1:6379")], "REDIS_URL"),
            (&[("FINNHUB_BASE_URL", "ftp://x")], "FINNHUB_BASE_URL"),
            (&[("DEFAULT_PROVIDER", "yahoo")], "DEFAULT_PROVIDER"),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
                    ("KAFKA_TOPIC", "bad topic"),
                ],
                "KAFKA_TOPIC",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
                    ("KAFKA_SECURITY_PROTOCOL", "tls"),
                ],
                "KAFKA_SECURITY_PROTOCOL",
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://x"),
                    ("DATABASE_MIGRATE_ON_START", "maybe"),
                ],
                "DATABASE_MIGRATE_ON_START",
            ),
            (&[("RATE_LIMIT_PER_MINUTE", "-1")], "RATE_LIMIT_PER_MINUTE"),
            (&[("RATE_LIMIT_BURST", "0")], "RATE_LIMIT_BURST"),
            (&[("API_KEYS", r#"{"a":"short"}"#)], "API_KEYS"),
            (
                &[("CORS_ALLOWED_ORIGINS", "example.com")],
                "CORS_ALLOWED_ORIGINS",
            ),
            (&[("METRICS", "prometheus")], "METRICS"),
            (&[("REQUEST_TIMEOUT_MS", "5")], "REQUEST_TIMEOUT_MS"),
            (&[("MA_WINDOWS", "sma:0")], "MA_WINDOWS"),
            (&[("MA_WINDOWS", "wma:5")], "MA_WINDOWS"),
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
