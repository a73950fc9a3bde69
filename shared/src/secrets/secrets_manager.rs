//! AWS Secrets Manager adapter of the secrets port.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;
use tokio::sync::Mutex;

use super::{SecretError, SecretStore};

/// Reads secrets from AWS Secrets Manager and keeps each for the life of the container.
///
/// The client honours the SDK's own settings (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), so
/// the same code reads from moto locally and from the real service on AWS.
pub struct SecretsManager {
    client: Client,
    cache: Mutex<HashMap<String, SecretString>>,
}

impl SecretsManager {
    /// An adapter over an existing client.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// An adapter whose client is configured from the environment, as every AWS SDK is,
    /// with bounded waits: a cold start must not hang on an unreachable endpoint.
    pub async fn from_env() -> Self {
        Self::new(Client::new(&crate::aws_sdk::load().await))
    }
}

#[async_trait]
impl SecretStore for SecretsManager {
    async fn secret_string(&self, id: &str) -> Result<SecretString, SecretError> {
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.get(id) {
            return Ok(found.clone());
        }
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable {
                id: id.to_owned(),
                reason: DisplayErrorContext(&e).to_string(),
            })?;
        let value = output
            .secret_string()
            .map(|s| SecretString::from(s.to_owned()))
            .ok_or_else(|| SecretError::NotAString { id: id.to_owned() })?;
        cache.insert(id.to_owned(), value.clone());
        Ok(value)
    }
}
