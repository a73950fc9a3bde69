//! Where secrets come from: the secrets port and its adapters.
//!
//! A configuration variable `X` may instead be given as `X_SECRET_ID`, naming a secret in
//! AWS Secrets Manager. Secrets are read once, when the configuration is loaded at cold
//! start, and are never logged: they travel as [`secrecy::SecretString`].

mod secrets_manager;

use async_trait::async_trait;
use secrecy::SecretString;

pub use secrets_manager::SecretsManager;

/// A failure to read a secret. The message names the secret id, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret store could not be reached or refused the request.
    #[error("could not read secret {id:?}: {reason}")]
    Unavailable {
        /// The secret id asked for.
        id: String,
        /// What the store said.
        reason: String,
    },
    /// The secret exists but holds no string value (only binary, or nothing).
    #[error("secret {id:?} has no string value")]
    NotAString {
        /// The secret id asked for.
        id: String,
    },
}

/// The secrets port: read a secret's string value by id.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The current string value of the secret `id`.
    async fn secret_string(&self, id: &str) -> Result<SecretString, SecretError>;
}
