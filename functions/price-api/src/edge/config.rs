//! Settings of the HTTP edge: `API_KEYS` (or `API_KEYS_SECRET_ID`), `RATE_LIMIT_PER_MINUTE`,
//! `RATE_LIMIT_BURST`, `CORS_ALLOWED_ORIGINS`, `REQUEST_TIMEOUT_MS`, and the default job
//! limits of a key (`POLL_MAX_JOBS_PER_KEY`, `POLL_MAX_SYMBOL_TICKS_PER_MINUTE`).

use std::time::Duration;

use market_data::config::{ConfigError, Env, SecretField};
use market_data::ratelimit::Quota;
use secrecy::ExposeSecret;

use super::api_keys::ApiKeys;

/// The HTTP edge's settings.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The limit of a client without its own: `None` turns rate limiting off.
    pub default_quota: Option<Quota>,
    /// The accepted keys; `None` means the API is open (no key asked for).
    pub api_keys: Option<ApiKeys>,
    /// Origins browsers may call the API from; empty means CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Polling jobs a key may own, unless it has its own limit.
    pub default_max_jobs: u32,
    /// Symbol-ticks per minute a key's jobs may make together, unless it has its own limit.
    pub default_max_symbol_ticks_per_minute: u32,
}

impl EdgeConfig {
    /// Reads the edge's variables; every one has a default (the API open, 600 requests a
    /// minute per client, no CORS, 25 s, 100 jobs and 600 symbol-ticks a minute per key).
    pub async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let per_minute = env.number("RATE_LIMIT_PER_MINUTE", 600, 0..=1_000_000)?;
        let burst = env.number("RATE_LIMIT_BURST", per_minute.max(1), 1..=1_000_000)?;
        // The whole secret is the key map: a client may well be named `url` or `api_key`.
        let api_keys = match env
            .secret("API_KEYS", "API_KEYS_SECRET_ID", SecretField::Whole)
            .await?
        {
            None => None,
            Some(json) => Some(
                ApiKeys::parse(json.expose_secret())
                    .map_err(|e| ConfigError::invalid("API_KEYS", e))?,
            ),
        };
        Ok(Self {
            default_quota: (per_minute > 0).then_some(Quota { per_minute, burst }),
            api_keys,
            cors_allowed_origins: cors_origins(env.get("CORS_ALLOWED_ORIGINS"))?,
            request_timeout: Duration::from_millis(env.number(
                "REQUEST_TIMEOUT_MS",
                25_000,
                100..=900_000,
            )?),
            default_max_jobs: env.number("POLL_MAX_JOBS_PER_KEY", 100, 1..=1_000_000)?,
            default_max_symbol_ticks_per_minute: env.number(
                "POLL_MAX_SYMBOL_TICKS_PER_MINUTE",
                600,
                1..=10_000_000,
            )?,
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
                Err(ConfigError::invalid(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{o:?} is neither * nor an http(s) origin"),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use async_trait::async_trait;
    use market_data::secrets::{SecretError, SecretStore};
    use secrecy::SecretString;

    use super::*;

    struct Secrets;

    #[async_trait]
    impl SecretStore for Secrets {
        async fn secret_string(&self, id: &str) -> Result<SecretString, SecretError> {
            match id {
                // An API_KEYS map whose clients are named like the fields other secrets use.
                "keys" => Ok(SecretString::from(
                    r#"{"url":"a-very-long-test-key-1","api_key":"a-very-long-test-key-2"}"#
                        .to_owned(),
                )),
                _ => Err(SecretError::Unavailable {
                    id: id.to_owned(),
                    reason: "ResourceNotFoundException".into(),
                }),
            }
        }
    }

    async fn load(pairs: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = |k: &str| map.get(k).cloned();
        EdgeConfig::from_env(&Env::new(&lookup, Some(&Secrets))).await
    }

    #[tokio::test]
    async fn defaults_are_an_open_api_with_a_limit() {
        let c = load(&[]).await.unwrap();
        assert_eq!(
            c.default_quota,
            Some(Quota {
                per_minute: 600,
                burst: 600
            })
        );
        assert!(c.api_keys.is_none());
        assert!(c.cors_allowed_origins.is_empty());
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
        ])
        .await
        .unwrap();
        assert_eq!(
            c.default_quota,
            Some(Quota {
                per_minute: 50,
                burst: 10
            })
        );
        assert_eq!(c.api_keys.unwrap().len(), 1);
        assert_eq!(
            c.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        let off = load(&[("RATE_LIMIT_PER_MINUTE", "0")]).await.unwrap();
        assert_eq!(off.default_quota, None);
    }

    #[tokio::test]
    async fn a_key_map_secret_is_read_whole_whatever_its_clients_are_named() {
        let c = load(&[("API_KEYS_SECRET_ID", "keys")]).await.unwrap();
        assert_eq!(c.api_keys.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn bad_values_name_their_variable() {
        for (pairs, var) in [
            (
                &[("RATE_LIMIT_PER_MINUTE", "-1")][..],
                "RATE_LIMIT_PER_MINUTE",
            ),
            (&[("RATE_LIMIT_BURST", "0")][..], "RATE_LIMIT_BURST"),
            (&[("API_KEYS", r#"{"a":"short"}"#)][..], "API_KEYS"),
            (
                &[("CORS_ALLOWED_ORIGINS", "example.com")][..],
                "CORS_ALLOWED_ORIGINS",
            ),
            (&[("REQUEST_TIMEOUT_MS", "5")][..], "REQUEST_TIMEOUT_MS"),
        ] {
            let err = load(pairs).await.unwrap_err().to_string();
            assert!(err.starts_with(var), "{pairs:?}: {err}");
        }
    }
}
