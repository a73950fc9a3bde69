//! Names of the market-data providers the service knows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A market-data provider the service can ask for quotes.
///
/// Known at compile time so that an unknown name is refused at the edge (400) instead of
/// failing deep inside; whether a known provider is *configured* is a separate question
/// answered at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// Finnhub's REST API (`/quote`).
    Finnhub,
    /// The built-in deterministic random walk, for running with nothing configured.
    Simulated,
}

/// The name given is not a provider the service knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?}; known providers: finnhub, simulated")]
pub struct UnknownProvider(pub String);

impl ProviderId {
    /// Every provider, in a stable order, for listings and error messages.
    pub const ALL: [ProviderId; 2] = [ProviderId::Finnhub, ProviderId::Simulated];

    /// The name of its port in readiness and the runner's banner (`provider:finnhub`).
    pub fn port_name(self) -> &'static str {
        match self {
            ProviderId::Finnhub => "provider:finnhub",
            ProviderId::Simulated => "provider:simulated",
        }
    }

    /// The lower-case name used in URLs, events, cache keys and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Finnhub => "finnhub",
            ProviderId::Simulated => "simulated",
        }
    }
}

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(wanted))
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
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!("yahoo".parse::<ProviderId>().is_err());
        assert!("".parse::<ProviderId>().is_err());
    }
}
