//! Settings of the Redis connection: `REDIS_URL` (or `REDIS_URL_SECRET_ID`),
//! `REDIS_KEY_PREFIX`, `REDIS_TIMEOUT_MS`, `REDIS_CA_FILE`.
//!
//! ElastiCache with encryption in transit and an AUTH token is `rediss://:TOKEN@host:port`:
//! its certificate chains to Amazon's public CAs, which the webpki roots hold. A server with a
//! CA of its own (a local `redis-server` with TLS) is trusted through `REDIS_CA_FILE`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, Env, SecretField, check_scheme};

/// Redis settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Connection URL; secret because it may hold a password.
    pub url: SecretString,
    /// Prefix of every key this service writes, so several deployments or tests can share a server.
    pub key_prefix: String,
    /// Longest wait for any one Redis operation; past it the cache counts as a miss.
    pub timeout: Duration,
    /// The CAs that verify a `rediss://` server instead of the webpki roots (PEM).
    pub ca_file: Option<PathBuf>,
}

impl RedisConfig {
    /// The settings, or `None` when no Redis is configured (in-process cache and limiter).
    pub async fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(url) = env
            .secret(
                "REDIS_URL",
                "REDIS_URL_SECRET_ID",
                SecretField::Field("url"),
            )
            .await?
        else {
            return Ok(None);
        };
        check_scheme("REDIS_URL", url.expose_secret(), &["redis", "rediss"])?;
        let ca_file = env.get("REDIS_CA_FILE").map(PathBuf::from);
        if let Some(path) = &ca_file {
            if !url.expose_secret().starts_with("rediss://") {
                return Err(ConfigError::invalid(
                    "REDIS_CA_FILE",
                    "is set but REDIS_URL is not a rediss:// (TLS) URL",
                ));
            }
            crate::tls::read_pem_file(path)
                .map_err(|e| ConfigError::invalid("REDIS_CA_FILE", e))?;
        }
        Ok(Some(Self {
            url,
            key_prefix: env.get("REDIS_KEY_PREFIX").unwrap_or_else(|| "mdb:".into()),
            timeout: Duration::from_millis(env.number("REDIS_TIMEOUT_MS", 250, 1..=60_000)?),
            ca_file,
        }))
    }

    /// What the runner's banner and `/ready` show of the shared cache.
    pub fn describe(&self) -> String {
        format!("in-process L1 + redis (prefix {:?})", self.key_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};

    async fn load(pairs: &[(&str, &str)]) -> Result<Option<RedisConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        RedisConfig::from_env(&Env::new(&lookup, Some(&FakeSecrets))).await
    }

    #[tokio::test]
    async fn unset_is_none_and_a_url_without_scheme_names_the_variable() {
        assert!(load(&[]).await.unwrap().is_none());
        let err = load(&[("REDIS_URL", "127.0.0.1:6379")]).await.unwrap_err();
        assert!(err.to_string().starts_with("REDIS_URL"), "{err}");
        let err = load(&[("REDIS_URL", "redis://x"), ("REDIS_TIMEOUT_MS", "0")])
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("REDIS_TIMEOUT_MS"), "{err}");
    }

    #[tokio::test]
    async fn defaults_and_tls_urls() {
        let c = load(&[("REDIS_URL", "rediss://cache.example:6379")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.key_prefix, "mdb:");
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.ca_file, None);
    }

    #[tokio::test]
    async fn a_ca_file_needs_a_tls_url_and_a_readable_file() {
        let err = load(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_CA_FILE", "/nonexistent/ca.pem"),
        ])
        .await
        .unwrap_err();
        assert!(err.to_string().contains("not a rediss://"), "{err}");
        let err = load(&[
            ("REDIS_URL", "rediss://127.0.0.1:6379"),
            ("REDIS_CA_FILE", "/nonexistent/ca.pem"),
        ])
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("REDIS_CA_FILE: /nonexistent/ca.pem"),
            "{err}"
        );
    }
}
