//! Cache lifetimes and size: `CACHE_TTL_SECONDS`, `CACHE_STALE_TTL_SECONDS`,
//! `CACHE_L1_CAPACITY`. (Where the shared tier lives is Redis's own setting.)

use std::time::Duration;

use crate::config::{ConfigError, Env};

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

impl CacheConfig {
    /// The lifetimes, each defaulted; the stale lifetime may not be shorter than the fresh one.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let fresh = env.number("CACHE_TTL_SECONDS", 15, 1..=86_400)?;
        let stale = env.number("CACHE_STALE_TTL_SECONDS", 600, 1..=604_800)?;
        if stale < fresh {
            return Err(ConfigError::invalid(
                "CACHE_STALE_TTL_SECONDS",
                format!("must be at least CACHE_TTL_SECONDS ({fresh})"),
            ));
        }
        Ok(Self {
            fresh_ttl: Duration::from_secs(fresh),
            stale_ttl: Duration::from_secs(stale),
            l1_capacity: env.number("CACHE_L1_CAPACITY", 10_000, 1..=10_000_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::vars;

    fn load(pairs: &[(&str, &str)]) -> Result<CacheConfig, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        CacheConfig::from_env(&Env::new(&lookup, None))
    }

    #[test]
    fn defaults_and_bad_values_name_their_variable() {
        assert_eq!(load(&[]).unwrap().fresh_ttl, Duration::from_secs(15));
        for (pairs, var) in [
            (&[("CACHE_TTL_SECONDS", "soon")][..], "CACHE_TTL_SECONDS"),
            (&[("CACHE_TTL_SECONDS", "0")][..], "CACHE_TTL_SECONDS"),
            (
                &[
                    ("CACHE_TTL_SECONDS", "60"),
                    ("CACHE_STALE_TTL_SECONDS", "30"),
                ][..],
                "CACHE_STALE_TTL_SECONDS",
            ),
        ] {
            let err = load(pairs).unwrap_err().to_string();
            assert!(err.starts_with(var), "{pairs:?}: {err}");
        }
    }
}
