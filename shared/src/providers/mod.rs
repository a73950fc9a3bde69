//! The quote-provider port, its adapters, and the registry that picks one per request.
//!
//! Everything about one provider lives in its own folder (its client, its settings, its
//! tests). Adding one means a folder here, a line in [`ProvidersConfig`] and [`Providers`],
//! and its id in [`ProviderId`].

pub mod finnhub;
mod simulated;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ConfigError, Env};
use crate::domain::{FetchedQuote, ProviderId, Symbol};

pub use finnhub::{Finnhub, FinnhubConfig};
pub use simulated::Simulated;

/// Every provider's settings, and which one answers a request that names none.
#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    /// Finnhub, when it has a key.
    pub finnhub: Option<FinnhubConfig>,
    /// The provider used when a request names none (`DEFAULT_PROVIDER`; else Finnhub when
    /// it has a key, else `simulated`).
    pub default_provider: ProviderId,
}

impl ProvidersConfig {
    /// Reads each provider's settings.
    pub async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let finnhub = FinnhubConfig::from_env(env).await?;
        let default_provider = match env.parsed::<ProviderId>("DEFAULT_PROVIDER")? {
            Some(id) => id,
            None if finnhub.is_some() => ProviderId::Finnhub,
            None => ProviderId::Simulated,
        };
        Ok(Self {
            finnhub,
            default_provider,
        })
    }
}

/// How asking a provider for a quote can fail, in terms a caller can act on.
///
/// Clone because one provider call may answer many concurrent requests (single-flight).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider does not know the symbol (Finnhub answers all zeros).
    #[error("the provider has no quote for this symbol")]
    NotFound,
    /// The provider cannot be used because its settings are missing.
    #[error("provider {provider} is not configured: set {variable}")]
    NotConfigured {
        /// The provider asked for.
        provider: ProviderId,
        /// The variable(s) to set.
        variable: &'static str,
    },
    /// The provider refused our credentials (401/403): an operator must fix the key.
    #[error("the provider refused the request: {0}")]
    Misconfigured(String),
    /// The provider's rate limit is exhausted.
    #[error("the provider's rate limit is exhausted")]
    RateLimited {
        /// When the provider said to try again, if it did.
        retry_after: Option<Duration>,
    },
    /// The provider failed, timed out, or answered something unreadable.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered a quote that cannot be true (a time in the future or before
    /// 1990, a price the domain refuses): never stored, published or served.
    #[error("the provider answered an implausible quote: {0}")]
    Garbage(String),
}

impl ProviderError {
    /// A short, stable name of the failure, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotFound => "not_found",
            ProviderError::NotConfigured { .. } => "not_configured",
            ProviderError::Misconfigured(_) => "misconfigured",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Garbage(_) => "garbage",
        }
    }
}

/// The quote-provider port: the latest quote of one symbol.
#[async_trait]
pub trait QuoteProvider: Send + Sync {
    /// Which provider this is; quotes it returns carry the same id.
    fn id(&self) -> ProviderId;

    /// Asks the provider for the latest quote of `symbol`.
    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError>;
}

/// The providers this process can use, and the one used when a request names none.
#[derive(Clone)]
pub struct Providers {
    configured: BTreeMap<ProviderId, Arc<dyn QuoteProvider>>,
    default: ProviderId,
}

impl Providers {
    /// A registry of exactly `providers`; `default` need not be among them.
    pub fn new(
        providers: impl IntoIterator<Item = Arc<dyn QuoteProvider>>,
        default: ProviderId,
    ) -> Self {
        Self {
            configured: providers.into_iter().map(|p| (p.id(), p)).collect(),
            default,
        }
    }

    /// Every provider the configuration allows: `simulated` always, Finnhub with a key.
    pub fn from_config(config: &ProvidersConfig) -> Result<Self, reqwest::Error> {
        let mut providers: Vec<Arc<dyn QuoteProvider>> = vec![Arc::new(Simulated::new())];
        if let Some(finnhub) = config
            .finnhub
            .as_ref()
            .map(Finnhub::from_config)
            .transpose()?
        {
            providers.extend(finnhub.map(|f| Arc::new(f) as Arc<dyn QuoteProvider>));
        }
        Ok(Self::new(providers, config.default_provider))
    }

    /// Each known provider with what serves it, for the runner's banner and `/ready`.
    pub fn describe(config: &ProvidersConfig) -> Vec<(ProviderId, String)> {
        ProviderId::ALL
            .into_iter()
            .map(|id| {
                let adapter = match id {
                    ProviderId::Finnhub => match &config.finnhub {
                        Some(f) => f.describe(),
                        None => format!("not configured (set {})", missing_setting(id)),
                    },
                    ProviderId::Simulated => "built-in random walk".into(),
                };
                let default = if id == config.default_provider {
                    " [default]"
                } else {
                    ""
                };
                (id, format!("{adapter}{default}"))
            })
            .collect()
    }

    /// The provider used when a request names none.
    pub fn default_id(&self) -> ProviderId {
        self.default
    }

    /// The provider `id`, or why it cannot be used.
    pub fn get(&self, id: ProviderId) -> Result<Arc<dyn QuoteProvider>, ProviderError> {
        self.configured
            .get(&id)
            .cloned()
            .ok_or(ProviderError::NotConfigured {
                provider: id,
                variable: missing_setting(id),
            })
    }

    /// Whether `id` can be used.
    pub fn is_configured(&self, id: ProviderId) -> bool {
        self.configured.contains_key(&id)
    }
}

fn missing_setting(id: ProviderId) -> &'static str {
    match id {
        ProviderId::Finnhub => finnhub::FINNHUB_SETTING,
        ProviderId::Simulated => "nothing (the simulated provider is built in)",
    }
}
