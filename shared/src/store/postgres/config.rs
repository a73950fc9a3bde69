//! Settings of the PostgreSQL store: `DATABASE_URL` (or `DATABASE_SECRET_ID`, a URL or an
//! RDS-format secret), `DATABASE_POOL_SIZE`, `DATABASE_MIGRATE_ON_START`, `DATABASE_TIMEOUT_MS`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, Env, SecretField, check_scheme};

/// PostgreSQL settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Connection URL (`postgres://user:pass@host:port/db`); secret because it holds a password.
    pub url: SecretString,
    /// Most connections one container opens.
    pub pool_size: usize,
    /// Apply the migrations, under an advisory lock, when the process starts.
    pub migrate_on_start: bool,
    /// Client-side bound on one store call (check-out and statements): the server's
    /// statement timeout cannot fire on a connection whose network silently died.
    pub timeout: Duration,
}

impl DatabaseConfig {
    /// The settings, or `None` when no database is configured (the in-memory store).
    pub async fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = env
            .secret("DATABASE_URL", "DATABASE_SECRET_ID", SecretField::Whole)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Self {
            url: url_from_secret(raw)?,
            pool_size: env.number("DATABASE_POOL_SIZE", 8, 1..=256)?,
            migrate_on_start: env.flag("DATABASE_MIGRATE_ON_START", false)?,
            timeout: Duration::from_millis(env.number(
                "DATABASE_TIMEOUT_MS",
                6_000,
                100..=600_000,
            )?),
        }))
    }

    /// What the runner's banner and `/ready` show (no host: it may be in the URL's secret).
    pub fn describe(&self) -> String {
        format!("postgres (pool of {})", self.pool_size)
    }
}

/// Accepts a `postgres://` URL, a JSON secret with a `url` field, or an RDS-format secret
/// (`{"username", "password", "host", "port", "dbname"}`) turned into a URL.
fn url_from_secret(raw: SecretString) -> Result<SecretString, ConfigError> {
    let text = raw.expose_secret();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let field = |k: &str| {
            map.get(k).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        if let Some(url) = field("url") {
            check_scheme("DATABASE_URL", &url, &["postgres", "postgresql"])?;
            return Ok(SecretString::from(url));
        }
        let missing = |k: &str| {
            ConfigError::invalid(
                "DATABASE_URL",
                format!("the database secret has no {k:?} field"),
            )
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
    check_scheme("DATABASE_URL", text, &["postgres", "postgresql"])?;
    Ok(raw)
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};

    async fn load(pairs: &[(&str, &str)]) -> Result<Option<DatabaseConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        DatabaseConfig::from_env(&Env::new(&lookup, Some(&FakeSecrets))).await
    }

    #[tokio::test]
    async fn unset_is_the_in_memory_store() {
        assert!(load(&[]).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rds_style_database_secret_becomes_a_url() {
        let c = load(&[("DATABASE_SECRET_ID", "rds")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c.url.expose_secret(),
            "postgres://app:p%40ss%20word@db.example:5432/market"
        );
    }

    #[tokio::test]
    async fn unresolvable_secret_names_the_variable_not_the_value() {
        let msg = load(&[("DATABASE_SECRET_ID", "missing")])
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("DATABASE_SECRET_ID: "), "{msg}");
        assert!(msg.contains("missing"), "{msg}");
    }

    #[tokio::test]
    async fn bad_values_name_their_variable() {
        for (pairs, var) in [
            (&[("DATABASE_URL", "mysql://x")][..], "DATABASE_URL"),
            (
                &[
                    ("DATABASE_URL", "postgres://x"),
                    ("DATABASE_MIGRATE_ON_START", "maybe"),
                ][..],
                "DATABASE_MIGRATE_ON_START",
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://x"),
                    ("DATABASE_POOL_SIZE", "0"),
                ][..],
                "DATABASE_POOL_SIZE",
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://x"),
                    ("DATABASE_TIMEOUT_MS", "0"),
                ][..],
                "DATABASE_TIMEOUT_MS",
            ),
        ] {
            let err = load(pairs).await.unwrap_err().to_string();
            assert!(err.starts_with(var), "{pairs:?}: {err}");
        }
    }

    #[tokio::test]
    async fn the_client_side_bound_defaults_to_six_seconds() {
        let c = load(&[("DATABASE_URL", "postgres://x")])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(6));
        let c = load(&[
            ("DATABASE_URL", "postgres://x"),
            ("DATABASE_TIMEOUT_MS", "750"),
        ])
        .await
        .unwrap()
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(750));
    }

    #[tokio::test]
    async fn the_password_never_appears_in_debug_output() {
        let c = load(&[("DATABASE_URL", "postgres://u:hunter2@h/db")])
            .await
            .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
