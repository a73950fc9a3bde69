//! The quote-provider port, its adapters, and the registry and failover chain over them.
//!
//! Everything about one provider lives in its own folder (its client, its settings, its
//! parsing and failure classification, its tests). Adding one means a folder here, a line in
//! [`ProvidersConfig`] and [`Providers::from_config`], and its id in [`ProviderId`].
//!
//! Which providers answer a request that names none, and in which order, is the chain
//! (`PROVIDERS`); [`guard`] keeps each provider's quotas, cool-downs and circuit breaker.

pub mod alphavantage;
pub mod finnhub;
pub mod fmp;
pub mod guard;
pub(crate) mod http;
pub mod massive;
pub mod settings;
mod simulated;
pub mod tiingo;
pub mod twelvedata;
pub mod yahoo;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ConfigError, Env};
use crate::domain::{FetchedQuote, ProviderId, Symbol};

pub use finnhub::{Finnhub, FinnhubConfig};
pub use guard::{Admission, GuardState, ProviderGuards, window_name};
pub use settings::{ProviderSettings, QuotaLimits};
pub use simulated::Simulated;

/// Every provider's settings, and the failover chain.
#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    /// Finnhub, when it has a key.
    pub finnhub: Option<FinnhubConfig>,
    /// Twelve Data, when it has a key.
    pub twelvedata: Option<ProviderSettings>,
    /// Financial Modeling Prep, when it has a key.
    pub fmp: Option<ProviderSettings>,
    /// Tiingo, when it has a key.
    pub tiingo: Option<ProviderSettings>,
    /// Alpha Vantage, when it has a key.
    pub alphavantage: Option<ProviderSettings>,
    /// Massive (Polygon.io), when it has a key.
    pub massive: Option<ProviderSettings>,
    /// Yahoo's chart endpoint, only when `YAHOO_ENABLED` (personal use only).
    pub yahoo: Option<ProviderSettings>,
    /// The failover chain (`PROVIDERS`): configured providers in priority order.
    pub chain: Vec<ProviderId>,
    /// The provider a polling job gets when it names none (`DEFAULT_PROVIDER`, else the head
    /// of the chain).
    pub default_provider: ProviderId,
}

impl ProvidersConfig {
    /// Reads each provider's settings, then the chain: `PROVIDERS` when set (every provider
    /// named must be configured), else the configured providers in the documented order,
    /// `simulated` only when nothing else is configured.
    pub async fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let mut config = Self {
            finnhub: FinnhubConfig::from_env(env).await?,
            twelvedata: twelvedata::config::from_env(env).await?,
            fmp: fmp::config::from_env(env).await?,
            tiingo: tiingo::config::from_env(env).await?,
            alphavantage: alphavantage::config::from_env(env).await?,
            massive: massive::config::from_env(env).await?,
            yahoo: yahoo::config::from_env(env)?,
            chain: Vec::new(),
            default_provider: ProviderId::Simulated,
        };
        config.chain = match env.parsed::<ProviderList>("PROVIDERS")? {
            Some(ProviderList(list)) => {
                if let Some(missing) = list.iter().find(|id| !config.is_configured(**id)) {
                    return Err(ConfigError::invalid(
                        "PROVIDERS",
                        format!(
                            "{missing} is not configured: set {}",
                            missing_setting(*missing)
                        ),
                    ));
                }
                list
            }
            None => config.default_chain(),
        };
        config.default_provider = match env.parsed::<ProviderId>("DEFAULT_PROVIDER")? {
            Some(id) => id,
            None => config
                .chain
                .first()
                .copied()
                .unwrap_or(ProviderId::Simulated),
        };
        Ok(config)
    }

    /// Whether `id` has what it needs to be asked.
    pub fn is_configured(&self, id: ProviderId) -> bool {
        match id {
            ProviderId::Finnhub => self.finnhub.is_some(),
            ProviderId::Twelvedata => self.twelvedata.is_some(),
            ProviderId::Fmp => self.fmp.is_some(),
            ProviderId::Tiingo => self.tiingo.is_some(),
            ProviderId::Alphavantage => self.alphavantage.is_some(),
            ProviderId::Massive => self.massive.is_some(),
            ProviderId::Yahoo => self.yahoo.is_some(),
            ProviderId::Simulated => true,
        }
    }

    /// The configured providers in [`ProviderId::ALL`]'s order; `simulated` alone when none is.
    pub fn default_chain(&self) -> Vec<ProviderId> {
        let real: Vec<ProviderId> = ProviderId::ALL
            .into_iter()
            .filter(|id| *id != ProviderId::Simulated && self.is_configured(*id))
            .collect();
        if real.is_empty() {
            vec![ProviderId::Simulated]
        } else {
            real
        }
    }

    /// The settings of `id`, when it has any (not Finnhub's own type, not `simulated`).
    fn settings(&self, id: ProviderId) -> Option<&ProviderSettings> {
        match id {
            ProviderId::Twelvedata => self.twelvedata.as_ref(),
            ProviderId::Fmp => self.fmp.as_ref(),
            ProviderId::Tiingo => self.tiingo.as_ref(),
            ProviderId::Alphavantage => self.alphavantage.as_ref(),
            ProviderId::Massive => self.massive.as_ref(),
            ProviderId::Yahoo => self.yahoo.as_ref(),
            ProviderId::Finnhub | ProviderId::Simulated => None,
        }
    }

    /// The call limits the chain keeps to for `id` (none for `simulated`).
    pub fn quota(&self, id: ProviderId) -> QuotaLimits {
        match id {
            ProviderId::Finnhub => self.finnhub.as_ref().map(|f| f.quota).unwrap_or_default(),
            ProviderId::Simulated => QuotaLimits::default(),
            other => self.settings(other).map(|s| s.quota).unwrap_or_default(),
        }
    }
}

/// `PROVIDERS`: a comma-separated list of provider ids (aliases accepted), no repeats.
struct ProviderList(Vec<ProviderId>);

impl std::str::FromStr for ProviderList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut list = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let id = name.parse::<ProviderId>().map_err(|e| e.to_string())?;
            if list.contains(&id) {
                return Err(format!("{id} is listed twice"));
            }
            list.push(id);
        }
        if list.is_empty() {
            return Err("expected at least one provider".into());
        }
        Ok(Self(list))
    }
}

/// How asking a provider for a quote can fail, in terms a caller (and the failover chain)
/// can act on. Adapters classify from the body as well as the status: several providers
/// report errors inside HTTP 200 answers.
///
/// Clone because one provider call may answer many concurrent requests (single-flight).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider does not know the symbol (Finnhub answers all zeros, Alpha Vantage an
    /// empty `Global Quote`, …). The chain asks the next provider.
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
    /// The provider refused our credentials: an operator must fix the key. The chain skips
    /// the provider for a long cool-down and logs it loudly.
    #[error("the provider refused the credentials: {0}")]
    CredentialsRefused(String),
    /// The key is valid but the plan does not cover this symbol or endpoint.
    #[error("the provider's plan does not cover this: {0}")]
    PlanRestricted(String),
    /// The provider's rate limit is exhausted (or the chain knows it would be).
    #[error("the provider's rate limit is exhausted")]
    RateLimited {
        /// When the provider said to try again, if it did.
        retry_after: Option<Duration>,
    },
    /// The provider failed (5xx), timed out or could not be reached; counts towards its
    /// circuit breaker.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something that is not a quote (not JSON, wrong shape, an
    /// unexpected status or message).
    #[error("the provider's answer is unreadable: {0}")]
    Garbage(String),
    /// The provider answered a quote that cannot be true (a time in the future or before
    /// 1990, a price the domain refuses): never stored, published or served. Counted as
    /// `garbage` with the unreadable answers.
    #[error("the provider answered an implausible quote: {0}")]
    Implausible(String),
}

impl ProviderError {
    /// A short, stable name of the failure, for metrics, logs and the answer's `route`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotFound => "not_found",
            ProviderError::NotConfigured { .. } => "not_configured",
            ProviderError::CredentialsRefused(_) => "credentials_refused",
            ProviderError::PlanRestricted(_) => "plan_restricted",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Garbage(_) | ProviderError::Implausible(_) => "garbage",
        }
    }
}

/// The quote-provider port: the latest quote of one symbol, or of several at once.
#[async_trait]
pub trait QuoteProvider: Send + Sync {
    /// Which provider this is; quotes it returns carry the same id.
    fn id(&self) -> ProviderId;

    /// Asks the provider for the latest quote of `symbol`.
    async fn quote(&self, symbol: &Symbol) -> Result<FetchedQuote, ProviderError>;

    /// How many symbols one call may ask for ([`quotes`](Self::quotes) is one call up to
    /// this many); 1 for providers without a batch endpoint.
    fn max_batch(&self) -> usize {
        1
    }

    /// Quota units a call for `symbols` symbols uses (Twelve Data charges per symbol).
    fn cost(&self, symbols: usize) -> u32 {
        u32::try_from(symbols.div_ceil(self.max_batch())).unwrap_or(u32::MAX)
    }

    /// The latest quotes of `symbols` (at most [`max_batch`](Self::max_batch)), one result
    /// per symbol in the same order. Without a batch endpoint: one call after another.
    async fn quotes(&self, symbols: &[Symbol]) -> Vec<Result<FetchedQuote, ProviderError>> {
        let mut out = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            out.push(self.quote(symbol).await);
        }
        out
    }
}

/// The providers this process can use, the failover chain over them, and their guards.
#[derive(Clone)]
pub struct Providers {
    configured: BTreeMap<ProviderId, Arc<dyn QuoteProvider>>,
    chain: Vec<ProviderId>,
    default: ProviderId,
    guards: Arc<ProviderGuards>,
}

impl Providers {
    /// A registry of exactly `providers`, asked in `chain` order; `default` (for jobs that
    /// name no provider) need not be among them.
    pub fn new(
        providers: impl IntoIterator<Item = Arc<dyn QuoteProvider>>,
        chain: Vec<ProviderId>,
        default: ProviderId,
        guards: ProviderGuards,
    ) -> Self {
        Self {
            configured: providers.into_iter().map(|p| (p.id(), p)).collect(),
            chain,
            default,
            guards: Arc::new(guards),
        }
    }

    /// Every provider the configuration allows (`simulated` always), guarded by `guards`.
    pub fn from_config(
        config: &ProvidersConfig,
        guards: ProviderGuards,
    ) -> Result<Self, reqwest::Error> {
        let mut providers: Vec<Arc<dyn QuoteProvider>> = vec![Arc::new(Simulated::new())];
        if let Some(f) = config
            .finnhub
            .as_ref()
            .map(Finnhub::from_config)
            .transpose()?
        {
            providers.extend(f.map(|f| Arc::new(f) as Arc<dyn QuoteProvider>));
        }
        if let Some(s) = &config.twelvedata {
            providers.push(Arc::new(twelvedata::TwelveData::new(s)?));
        }
        if let Some(s) = &config.fmp {
            providers.push(Arc::new(fmp::Fmp::new(s)?));
        }
        if let Some(s) = &config.tiingo {
            providers.push(Arc::new(tiingo::Tiingo::new(s)?));
        }
        if let Some(s) = &config.alphavantage {
            providers.push(Arc::new(alphavantage::AlphaVantage::new(s)?));
        }
        if let Some(s) = &config.massive {
            providers.push(Arc::new(massive::Massive::new(s)?));
        }
        if let Some(s) = &config.yahoo {
            providers.push(Arc::new(yahoo::Yahoo::new(s)?));
        }
        Ok(Self::new(
            providers,
            config.chain.clone(),
            config.default_provider,
            guards,
        ))
    }

    /// Each known provider with what serves it, for the runner's banner and `/ready`.
    pub fn describe(config: &ProvidersConfig) -> Vec<(ProviderId, String)> {
        ProviderId::ALL
            .into_iter()
            .map(|id| {
                let adapter = match (id, config.settings(id)) {
                    (ProviderId::Simulated, _) => "built-in random walk".into(),
                    (ProviderId::Finnhub, _) => match &config.finnhub {
                        Some(f) => f.describe(),
                        None => format!("not configured (set {})", missing_setting(id)),
                    },
                    (_, Some(s)) => s.describe(id.as_str()),
                    (_, None) => format!("not configured (set {})", missing_setting(id)),
                };
                let place = match config.chain.iter().position(|c| *c == id) {
                    Some(i) => format!(" [chain #{}]", i + 1),
                    None => String::new(),
                };
                (id, format!("{adapter}{place}"))
            })
            .collect()
    }

    /// The provider a polling job gets when it names none.
    pub fn default_id(&self) -> ProviderId {
        self.default
    }

    /// The failover chain, in priority order.
    pub fn chain(&self) -> &[ProviderId] {
        &self.chain
    }

    /// Quotas, cool-downs and circuit breakers of every provider.
    pub fn guards(&self) -> &ProviderGuards {
        &self.guards
    }

    /// The chain in priority order, each provider with whether it is configured and its live
    /// state (quota left, cool-down, circuit): what `/ready` and the runner's banner show,
    /// so an operator sees which provider the next request will go to and why.
    pub async fn chain_state(&self) -> Vec<ChainLink> {
        let mut links = Vec::with_capacity(self.chain.len());
        for id in &self.chain {
            links.push(ChainLink {
                provider: *id,
                configured: self.is_configured(*id),
                state: self.guards.state(*id).await,
            });
        }
        links
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

/// One provider of the failover chain and its live state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// The provider.
    pub provider: ProviderId,
    /// Whether it has what it needs (a key, or being enabled).
    pub configured: bool,
    /// Its quotas, cool-down and circuit now.
    pub state: GuardState,
}

/// What to set to use `id`.
pub fn missing_setting(id: ProviderId) -> &'static str {
    match id {
        ProviderId::Finnhub => finnhub::FINNHUB_SETTING,
        ProviderId::Twelvedata => "TWELVEDATA_API_KEY or TWELVEDATA_API_KEY_SECRET_ID",
        ProviderId::Fmp => "FMP_API_KEY or FMP_API_KEY_SECRET_ID",
        ProviderId::Tiingo => "TIINGO_API_KEY or TIINGO_API_KEY_SECRET_ID",
        ProviderId::Alphavantage => "ALPHAVANTAGE_API_KEY or ALPHAVANTAGE_API_KEY_SECRET_ID",
        ProviderId::Massive => "MASSIVE_API_KEY or MASSIVE_API_KEY_SECRET_ID",
        ProviderId::Yahoo => "YAHOO_ENABLED=true (personal use only, by Yahoo's terms)",
        ProviderId::Simulated => "nothing (the simulated provider is built in)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::{FakeSecrets, vars};

    async fn load(pairs: &[(&str, &str)]) -> Result<ProvidersConfig, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        ProvidersConfig::from_env(&Env::new(&lookup, Some(&FakeSecrets))).await
    }

    #[tokio::test]
    async fn nothing_configured_is_simulated_alone() {
        let c = load(&[]).await.unwrap();
        assert_eq!(c.chain, vec![ProviderId::Simulated]);
        assert_eq!(c.default_provider, ProviderId::Simulated);
    }

    #[tokio::test]
    async fn the_default_chain_is_the_configured_providers_in_documented_order() {
        let c = load(&[
            ("ALPHAVANTAGE_API_KEY", "a"),
            ("FINNHUB_API_KEY", "f"),
            ("TIINGO_API_KEY", "t"),
        ])
        .await
        .unwrap();
        assert_eq!(
            c.chain,
            vec![
                ProviderId::Finnhub,
                ProviderId::Tiingo,
                ProviderId::Alphavantage
            ]
        );
        assert_eq!(c.default_provider, ProviderId::Finnhub);
    }

    #[tokio::test]
    async fn providers_sets_the_order_and_accepts_aliases() {
        let c = load(&[
            ("ALPHAVANTAGE_API_KEY", "a"),
            ("FINNHUB_API_KEY", "f"),
            ("PROVIDERS", "alpha_vantage, finnhub, simulated"),
        ])
        .await
        .unwrap();
        assert_eq!(
            c.chain,
            vec![
                ProviderId::Alphavantage,
                ProviderId::Finnhub,
                ProviderId::Simulated
            ]
        );
    }

    #[tokio::test]
    async fn providers_naming_an_unconfigured_or_unknown_provider_fails_start_up() {
        let err = load(&[("PROVIDERS", "finnhub")]).await.unwrap_err();
        assert!(err.to_string().contains("FINNHUB_API_KEY"), "{err}");
        let err = load(&[("PROVIDERS", "bloomberg")]).await.unwrap_err();
        assert!(err.to_string().starts_with("PROVIDERS"), "{err}");
        let err = load(&[("FINNHUB_API_KEY", "f"), ("PROVIDERS", "finnhub,finnhub")])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[tokio::test]
    async fn yahoo_is_off_unless_enabled() {
        assert!(load(&[]).await.unwrap().yahoo.is_none());
        let c = load(&[("YAHOO_ENABLED", "true")]).await.unwrap();
        assert!(c.yahoo.is_some());
        assert_eq!(c.chain, vec![ProviderId::Yahoo]);
    }
}
