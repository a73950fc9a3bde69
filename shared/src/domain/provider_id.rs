//! Names of the market-data providers the service knows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A market-data provider the service can ask for quotes.
///
/// Known at compile time so that an unknown name is refused at the edge (400) instead of
/// failing deep inside; whether a known provider is *configured* is a separate question
/// answered at run time. The order of the variants is the documented default failover
/// order (`PROVIDERS` unset): real-time quotes first, previous-close and unofficial sources
/// last, `simulated` only when nothing else is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// Finnhub's REST API (`/quote`).
    Finnhub,
    /// Twelve Data (`/quote`, batch by comma-separated symbols).
    Twelvedata,
    /// Financial Modeling Prep (`/stable/quote`).
    Fmp,
    /// Tiingo's IEX endpoint (`/iex/?tickers=`, batch).
    Tiingo,
    /// Alpha Vantage (`GLOBAL_QUOTE`, a trading day without a time).
    Alphavantage,
    /// Massive, formerly Polygon.io (`/v2/aggs/ticker/{T}/prev` on the free tier).
    Massive,
    /// Yahoo's unofficial chart endpoint, keyless, for personal use only: off unless enabled.
    Yahoo,
    /// The built-in deterministic random walk, for running with nothing configured.
    Simulated,
}

/// The name given is not a provider the service knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown provider {0:?}; known providers: finnhub, twelvedata, fmp, tiingo, alphavantage, massive, yahoo, simulated"
)]
pub struct UnknownProvider(pub String);

impl ProviderId {
    /// Every provider, in the default failover order, for listings and error messages.
    pub const ALL: [ProviderId; 8] = [
        ProviderId::Finnhub,
        ProviderId::Twelvedata,
        ProviderId::Fmp,
        ProviderId::Tiingo,
        ProviderId::Alphavantage,
        ProviderId::Massive,
        ProviderId::Yahoo,
        ProviderId::Simulated,
    ];

    /// The name of its port in readiness and the runner's banner (`provider:finnhub`).
    pub fn port_name(self) -> &'static str {
        match self {
            ProviderId::Finnhub => "provider:finnhub",
            ProviderId::Twelvedata => "provider:twelvedata",
            ProviderId::Fmp => "provider:fmp",
            ProviderId::Tiingo => "provider:tiingo",
            ProviderId::Alphavantage => "provider:alphavantage",
            ProviderId::Massive => "provider:massive",
            ProviderId::Yahoo => "provider:yahoo",
            ProviderId::Simulated => "provider:simulated",
        }
    }

    /// The lower-case name used in URLs, events, cache keys and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Finnhub => "finnhub",
            ProviderId::Twelvedata => "twelvedata",
            ProviderId::Fmp => "fmp",
            ProviderId::Tiingo => "tiingo",
            ProviderId::Alphavantage => "alphavantage",
            ProviderId::Massive => "massive",
            ProviderId::Yahoo => "yahoo",
            ProviderId::Simulated => "simulated",
        }
    }
}

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    /// Accepts the canonical id in any case, with `_` or `-` anywhere (the seed's clients
    /// send `alpha_vantage`), and the old names `polygon` (Massive) and
    /// `financialmodelingprep` (FMP).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        match wanted.as_str() {
            "polygon" | "polygonio" => return Ok(ProviderId::Massive),
            "financialmodelingprep" => return Ok(ProviderId::Fmp),
            _ => {}
        }
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        assert_eq!("Finnhub".parse::<ProviderId>(), Ok(ProviderId::Finnhub));
        assert_eq!("simulated".parse::<ProviderId>(), Ok(ProviderId::Simulated));
        for p in ProviderId::ALL {
            assert_eq!(p.as_str().parse::<ProviderId>(), Ok(p));
            assert_eq!(p.as_str().to_uppercase().parse::<ProviderId>(), Ok(p));
        }
    }

    #[test]
    fn seed_spellings_and_old_names_are_aliases() {
        for (alias, id) in [
            ("alpha_vantage", ProviderId::Alphavantage),
            ("Alpha-Vantage", ProviderId::Alphavantage),
            ("twelve_data", ProviderId::Twelvedata),
            ("polygon", ProviderId::Massive),
            ("Polygon.io".replace('.', "").as_str(), ProviderId::Massive),
            ("financial_modeling_prep", ProviderId::Fmp),
        ] {
            assert_eq!(alias.parse::<ProviderId>(), Ok(id), "{alias}");
        }
        assert_eq!(
            "alpha_vantage".parse::<ProviderId>().map(|p| p.to_string()),
            Ok("alphavantage".to_owned())
        );
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!("bloomberg".parse::<ProviderId>().is_err());
        assert!("".parse::<ProviderId>().is_err());
        assert!("_".parse::<ProviderId>().is_err());
    }
}
