//! The settings every keyed provider has, read under its own variable names: an API key
//! (`<NAME>_API_KEY`, or `<NAME>_API_KEY_SECRET_ID` read by its `api_key` field), a base
//! URL, a timeout, and its call quotas (free-tier defaults, overridable).
//!
//! Each provider's `config.rs` names its variables and defaults; this module only reads them,
//! so that every provider is configured the same way.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::{ConfigError, Env, SecretField};

/// A provider's call limits; `0` means no limit over that window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaLimits {
    /// Calls per minute.
    pub per_minute: u32,
    /// Calls per hour.
    pub per_hour: u32,
    /// Calls per day.
    pub per_day: u32,
}

impl QuotaLimits {
    /// The limits as `(window seconds, limit)` pairs, without the unlimited ones.
    pub fn windows(&self) -> Vec<(u64, u32)> {
        [
            (60, self.per_minute),
            (3_600, self.per_hour),
            (86_400, self.per_day),
        ]
        .into_iter()
        .filter(|(_, limit)| *limit > 0)
        .collect()
    }
}

impl fmt::Display for QuotaLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .windows()
            .into_iter()
            .map(|(secs, limit)| {
                let unit = match secs {
                    60 => "min",
                    3_600 => "h",
                    _ => "day",
                };
                format!("{limit}/{unit}")
            })
            .collect();
        if parts.is_empty() {
            f.write_str("no quota")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The variable names and defaults of one provider.
#[derive(Debug, Clone, Copy)]
pub struct SettingNames {
    /// `<NAME>_API_KEY`.
    pub key: &'static str,
    /// `<NAME>_API_KEY_SECRET_ID`.
    pub secret_id: &'static str,
    /// `<NAME>_BASE_URL`.
    pub base_url: &'static str,
    /// `<NAME>_TIMEOUT_MS`.
    pub timeout_ms: &'static str,
    /// `<NAME>_CALLS_PER_MINUTE`, `<NAME>_CALLS_PER_HOUR`, `<NAME>_CALLS_PER_DAY`.
    pub quota: [&'static str; 3],
    /// The public API.
    pub default_base_url: &'static str,
    /// The free tier's limits.
    pub default_quota: QuotaLimits,
}

/// One provider's settings.
#[derive(Clone)]
pub struct ProviderSettings {
    /// The API key (`None` only for keyless providers).
    pub api_key: Option<SecretString>,
    /// Base URL of the API, overridable for tests and proxies.
    pub base_url: String,
    /// Total time allowed for one request, connection included.
    pub timeout: Duration,
    /// Call limits the failover chain keeps to.
    pub quota: QuotaLimits,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("quota", &self.quota)
            .finish()
    }
}

impl ProviderSettings {
    /// The settings of a keyed provider, or `None` without a key.
    pub async fn keyed(env: &Env<'_>, names: &SettingNames) -> Result<Option<Self>, ConfigError> {
        let key = env
            .secret(names.key, names.secret_id, SecretField::Field("api_key"))
            .await?;
        let rest = Self::keyless(env, names)?;
        Ok(key.map(|key| Self {
            api_key: Some(key),
            ..rest
        }))
    }

    /// The settings without a key (for keyless providers, and read before the key so a bad
    /// value fails start-up even while the provider is unused).
    pub fn keyless(env: &Env<'_>, names: &SettingNames) -> Result<Self, ConfigError> {
        let [minute, hour, day] = names.quota;
        let d = names.default_quota;
        Ok(Self {
            api_key: None,
            base_url: env.base_url(names.base_url, names.default_base_url)?,
            timeout: Duration::from_millis(env.number(names.timeout_ms, 3_000, 100..=30_000)?),
            quota: QuotaLimits {
                per_minute: env.number(minute, d.per_minute, 0..=1_000_000)?,
                per_hour: env.number(hour, d.per_hour, 0..=10_000_000)?,
                per_day: env.number(day, d.per_day, 0..=100_000_000)?,
            },
        })
    }

    /// What the runner's banner and `/ready` show.
    pub fn describe(&self, name: &str) -> String {
        format!("{name} at {} ({})", self.base_url, self.quota)
    }
}

/// The key as a header or query value; a key that cannot be one is sent as a placeholder,
/// so the provider says it is refused rather than start-up failing with the key in a message.
pub(crate) fn key_text(settings: &ProviderSettings) -> String {
    use secrecy::ExposeSecret;
    settings
        .api_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .filter(|k| k.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "invalid-key".to_owned())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Loading a provider's settings from a list of variables, for its config tests.
    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};

    /// `names`' settings from `pairs`.
    pub async fn load(
        names: &SettingNames,
        pairs: &[(&str, &str)],
    ) -> Result<Option<ProviderSettings>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        ProviderSettings::keyed(&Env::new(&lookup, Some(&FakeSecrets)), names).await
    }

    /// The checks every keyed provider's settings must pass.
    pub async fn check_keyed(names: &SettingNames) {
        use secrecy::ExposeSecret;
        assert!(load(names, &[]).await.unwrap().is_none());
        let s = load(names, &[(names.key, "k")]).await.unwrap().unwrap();
        assert_eq!(s.api_key.unwrap().expose_secret(), "k");
        assert_eq!(s.base_url, names.default_base_url);
        assert_eq!(s.quota, names.default_quota);
        let s = load(names, &[(names.secret_id, "json-key")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.api_key.unwrap().expose_secret(), "from-json");
        let s = load(
            names,
            &[
                (names.key, "k"),
                (names.quota[0], "0"),
                (names.quota[2], "7"),
            ],
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!((s.quota.per_minute, s.quota.per_day), (0, 7));
        let err = load(names, &[(names.key, "k"), (names.base_url, "ftp://x")])
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with(names.base_url), "{err}");
        let s = load(names, &[(names.key, "sk-very-secret")]).await.unwrap();
        assert!(!format!("{s:?}").contains("sk-very-secret"));
    }
}
