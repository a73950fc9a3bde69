//! Settings of the PostgreSQL store: `DATABASE_URL` (or `DATABASE_SECRET_ID`, a URL or an
//! RDS-format secret), `DATABASE_POOL_SIZE`, `DATABASE_MIGRATE_ON_START`, `DATABASE_TIMEOUT_MS`,
//! and TLS: the URL's `sslmode` (default `require` on AWS Lambda, `prefer` elsewhere) and
//! `DATABASE_CA_FILE`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, Env, SecretField, check_scheme};

/// Whether and how the connection is encrypted: the URL's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP, never TLS.
    Disable,
    /// TLS when the server offers it, plain TCP when it does not; the server's certificate is
    /// not verified (as libpq's `prefer`): whoever can answer "no TLS" in its place could read
    /// the traffic anyway, so this only keeps out passive listeners.
    Prefer,
    /// TLS or no connection, and the server's certificate must chain to the trusted CAs and
    /// name the host connected to (what libpq calls `verify-full`).
    Require,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
        }
    }
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
    /// Client-side bound on one store call (check-out and statements): the server's
    /// statement timeout cannot fire on a connection whose network silently died.
    pub timeout: Duration,
    /// TLS: the URL's `sslmode`, else `require` on AWS Lambda and `prefer` elsewhere.
    pub ssl_mode: SslMode,
    /// The CAs that verify the server under `require` (`DATABASE_CA_FILE`, PEM); `None` is the
    /// RDS CA bundle built into the binary.
    pub ca_file: Option<PathBuf>,
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
        let url = url_from_secret(raw)?;
        // On Lambda the database is RDS, reached over a network the function does not own.
        let on_aws = env.get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let ssl_mode = match ssl_mode_in_url(url.expose_secret())? {
            Some(mode) => mode,
            None if on_aws => SslMode::Require,
            None => SslMode::Prefer,
        };
        let ca_file = env.get("DATABASE_CA_FILE").map(PathBuf::from);
        if let Some(path) = &ca_file {
            // Checked now, so a bad file stops the start and not every later connection.
            crate::tls::read_pem_file(path)
                .map_err(|e| ConfigError::invalid("DATABASE_CA_FILE", e))?;
        }
        Ok(Some(Self {
            url,
            pool_size: env.number("DATABASE_POOL_SIZE", 8, 1..=256)?,
            migrate_on_start: env.flag("DATABASE_MIGRATE_ON_START", false)?,
            timeout: Duration::from_millis(env.number(
                "DATABASE_TIMEOUT_MS",
                6_000,
                100..=600_000,
            )?),
            ssl_mode,
            ca_file,
        }))
    }

    /// What the runner's banner and `/ready` show (no host: it may be in the URL's secret).
    pub fn describe(&self) -> String {
        format!(
            "postgres (pool of {}, sslmode {})",
            self.pool_size,
            self.ssl_mode.as_str()
        )
    }
}

/// The `sslmode` of a `postgres://` URL's query, if it names one. Only the modes the client
/// implements are accepted: `verify-full` and friends would otherwise fail later, inside
/// `tokio-postgres`, with a message that does not name the variable.
fn ssl_mode_in_url(url: &str) -> Result<Option<SslMode>, ConfigError> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let Some(value) = query
        .rsplit('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "sslmode")
        .map(|(_, value)| value)
    else {
        return Ok(None);
    };
    match value {
        "disable" => Ok(Some(SslMode::Disable)),
        "prefer" => Ok(Some(SslMode::Prefer)),
        "require" => Ok(Some(SslMode::Require)),
        other => Err(ConfigError::invalid(
            "DATABASE_URL",
            format!(
                "sslmode {other:?} is not supported: use disable, prefer or require \
                 (require verifies the server's certificate and host name)"
            ),
        )),
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
    async fn sslmode_comes_from_the_url_and_defaults_to_require_on_lambda() {
        let mode = |pairs: &'static [(&'static str, &'static str)]| async move {
            load(pairs).await.unwrap().unwrap().ssl_mode
        };
        assert_eq!(
            mode(&[("DATABASE_URL", "postgres://h/db")]).await,
            SslMode::Prefer
        );
        assert_eq!(
            mode(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("AWS_LAMBDA_FUNCTION_NAME", "price-api")
            ])
            .await,
            SslMode::Require
        );
        assert_eq!(
            mode(&[
                (
                    "DATABASE_URL",
                    "postgres://h/db?application_name=x&sslmode=disable"
                ),
                ("AWS_LAMBDA_FUNCTION_NAME", "price-api")
            ])
            .await,
            SslMode::Disable
        );
        // An RDS secret's URL has no sslmode: on Lambda it is required.
        assert_eq!(
            mode(&[
                ("DATABASE_SECRET_ID", "rds"),
                ("AWS_LAMBDA_FUNCTION_NAME", "ma-consumer")
            ])
            .await,
            SslMode::Require
        );
    }

    #[tokio::test]
    async fn unsupported_sslmodes_and_unreadable_ca_files_name_their_variable() {
        let err = load(&[("DATABASE_URL", "postgres://h/db?sslmode=verify-full")])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("DATABASE_URL: sslmode \"verify-full\""),
            "{err}"
        );
        let err = load(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("DATABASE_CA_FILE", "/nonexistent/ca.pem"),
        ])
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("DATABASE_CA_FILE: /nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_password_never_appears_in_debug_output() {
        let c = load(&[("DATABASE_URL", "postgres://u:hunter2@h/db")])
            .await
            .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
