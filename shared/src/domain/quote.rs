//! A quote: one provider's view of one symbol's price at one moment.

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{ProviderId, Symbol};

/// The latest price of a symbol as a provider reported it, with the day's context.
///
/// Prices are exact decimals end to end. `quote_time` is the provider's own time for the
/// price; `fetched_at` is when this service asked. The two are kept apart because clients
/// care about the first and freshness rules about the second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The symbol quoted.
    pub symbol: Symbol,
    /// Who reported the price.
    pub provider: ProviderId,
    /// The current (last traded) price.
    pub price: Decimal,
    /// Change since the previous close, when the provider reports it.
    pub change: Option<Decimal>,
    /// Change since the previous close in percent, when the provider reports it.
    pub percent_change: Option<Decimal>,
    /// High of the day.
    pub high: Decimal,
    /// Low of the day.
    pub low: Decimal,
    /// Opening price of the day.
    pub open: Decimal,
    /// Close of the previous trading day.
    pub previous_close: Decimal,
    /// The provider's timestamp of the price.
    pub quote_time: DateTime<Utc>,
    /// When this service received the quote from the provider.
    pub fetched_at: DateTime<Utc>,
}

/// A quote together with the provider's response it was read from.
///
/// The raw response is stored verbatim in `raw_market_data`, so that anything the typed
/// quote leaves out can still be recovered later.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedQuote {
    /// The typed quote.
    pub quote: Quote,
    /// The provider's response body as JSON.
    pub raw: serde_json::Value,
}

/// The current time at the precision PostgreSQL keeps (microseconds), so a quote read back
/// from the store, the cache or an event is equal to the one that was fetched.
pub fn fetch_time_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
