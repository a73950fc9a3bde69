//! Settings of the Finnhub adapter: `FINNHUB_API_KEY` (or `FINNHUB_API_KEY_SECRET_ID`),
//! `FINNHUB_BASE_URL`, `FINNHUB_TIMEOUT_MS`, and its quota (`FINNHUB_CALLS_PER_MINUTE`,
//! `_PER_HOUR`, `_PER_DAY`; free tier: 60 a minute).

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{ConfigError, Env, SecretField};
use crate::providers::settings::QuotaLimits;

/// Finnhub's free tier: 60 calls a minute.
pub const FINNHUB_DEFAULT_QUOTA: QuotaLimits = QuotaLimits {
    per_minute: 60,
    per_hour: 0,
    per_day: 0,
};

/// Finnhub's public REST API, used unless `FINNHUB_BASE_URL` says otherwise.
pub const FINNHUB_DEFAULT_BASE_URL: &str = "https://finnhub.io/api/v1";

/// What to set to use Finnhub, for the "not configured" answers.
pub const FINNHUB_SETTING: &str = "FINNHUB_API_KEY or FINNHUB_API_KEY_SECRET_ID";

/// Finnhub settings.
#[derive(Debug, Clone)]
pub struct FinnhubConfig {
    /// API key; without one the provider is reported as not configured.
    pub api_key: Option<SecretString>,
    /// Base URL of the REST API, overridable for tests and proxies.
    pub base_url: String,
    /// Total time allowed for one request, connection included.
    pub timeout: Duration,
    /// Call limits the failover chain keeps to.
    pub quota: QuotaLimits,
}

impl FinnhubConfig {
    /// The settings, or `None` without an API key (Finnhub then answers "not configured").
    pub async fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let base_url = env.base_url("FINNHUB_BASE_URL", FINNHUB_DEFAULT_BASE_URL)?;
        let timeout =
            Duration::from_millis(env.number("FINNHUB_TIMEOUT_MS", 3_000, 100..=30_000)?);
        let api_key = env
            .secret(
                "FINNHUB_API_KEY",
                "FINNHUB_API_KEY_SECRET_ID",
                SecretField::Field("api_key"),
            )
            .await?;
        let d = FINNHUB_DEFAULT_QUOTA;
        let quota = QuotaLimits {
            per_minute: env.number("FINNHUB_CALLS_PER_MINUTE", d.per_minute, 0..=1_000_000)?,
            per_hour: env.number("FINNHUB_CALLS_PER_HOUR", d.per_hour, 0..=10_000_000)?,
            per_day: env.number("FINNHUB_CALLS_PER_DAY", d.per_day, 0..=100_000_000)?,
        };
        Ok(api_key.map(|key| Self {
            api_key: Some(key),
            base_url,
            timeout,
            quota,
        }))
    }

    /// What the runner's banner and `/ready` show.
    pub fn describe(&self) -> String {
        format!("finnhub at {} ({})", self.base_url, self.quota)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};

    async fn load(pairs: &[(&str, &str)]) -> Result<Option<FinnhubConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        FinnhubConfig::from_env(&Env::new(&lookup, Some(&FakeSecrets))).await
    }

    #[tokio::test]
    async fn without_a_key_finnhub_is_not_configured() {
        assert!(load(&[]).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_key_comes_from_a_value_or_a_secret_read_by_its_api_key_field() {
        let c = load(&[("FINNHUB_API_KEY", "k")]).await.unwrap().unwrap();
        assert_eq!(c.api_key.unwrap().expose_secret(), "k");
        assert_eq!(c.base_url, FINNHUB_DEFAULT_BASE_URL);
        for (id, expected) in [("json-key", "from-json"), ("plain", "plain-value")] {
            let c = load(&[("FINNHUB_API_KEY_SECRET_ID", id)])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(c.api_key.unwrap().expose_secret(), expected);
        }
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
    async fn a_bad_base_url_names_its_variable_and_the_key_never_shows() {
        let err = load(&[("FINNHUB_BASE_URL", "ftp://x")]).await.unwrap_err();
        assert!(err.to_string().starts_with("FINNHUB_BASE_URL"), "{err}");
        let c = load(&[("FINNHUB_API_KEY", "sk-very-secret")])
            .await
            .unwrap();
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }
}
