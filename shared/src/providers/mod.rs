//! The quote-provider port, its adapters, and the registry that picks one per request.

mod finnhub;
mod simulated;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::Config;
use crate::domain::{FetchedQuote, ProviderId, Symbol};

pub use finnhub::Finnhub;
pub use simulated::Simulated;

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
    pub fn from_config(config: &Config) -> Result<Self, reqwest::Error> {
        let mut providers: Vec<Arc<dyn QuoteProvider>> = vec![Arc::new(Simulated::new())];
        if let Some(finnhub) = Finnhub::from_config(&config.finnhub)? {
            providers.push(Arc::new(finnhub));
        }
        Ok(Self::new(providers, config.default_provider))
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
        ProviderId::Finnhub => "FINNHUB_API_KEY or FINNHUB_API_KEY_SECRET_ID",
        ProviderId::Simulated => "nothing (the simulated provider is built in)",
    }
}
