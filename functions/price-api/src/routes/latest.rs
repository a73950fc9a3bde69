//! `GET /prices/latest?symbol=AAPL&provider=finnhub`: the latest price of one symbol.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use market_data::Services;
use market_data::domain::{ProviderId, Symbol};
use market_data::usecases::LatestPrice;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::extract::ProblemQuery;
use crate::problem::Problem;

/// The query string, as sent; validated in the handler so each mistake gets its own message.
#[derive(Debug, Deserialize)]
pub struct LatestParams {
    symbol: Option<String>,
    provider: Option<String>,
}

/// The answer: the seed's four fields (`symbol`, `price`, `timestamp`, `provider`) first,
/// then the day's context and where the answer came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceResponse {
    /// The normalised symbol.
    pub symbol: String,
    /// The last price, a JSON number.
    #[serde(with = "rust_decimal::serde::float")]
    pub price: Decimal,
    /// The provider's time of the price (RFC 3339, UTC); unchanged on a cache hit.
    pub timestamp: DateTime<Utc>,
    /// The provider that reported it.
    pub provider: String,
    /// Change since the previous close.
    #[serde(with = "rust_decimal::serde::float_option")]
    pub change: Option<Decimal>,
    /// Change since the previous close, in percent.
    #[serde(with = "rust_decimal::serde::float_option")]
    pub percent_change: Option<Decimal>,
    /// High of the day.
    #[serde(with = "rust_decimal::serde::float")]
    pub high: Decimal,
    /// Low of the day.
    #[serde(with = "rust_decimal::serde::float")]
    pub low: Decimal,
    /// Open of the day.
    #[serde(with = "rust_decimal::serde::float")]
    pub open: Decimal,
    /// Previous close.
    #[serde(with = "rust_decimal::serde::float")]
    pub previous_close: Decimal,
    /// When this service fetched the quote from the provider.
    pub fetched_at: DateTime<Utc>,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// Whether the answer is older than the cache's fresh lifetime (the provider failed).
    pub stale: bool,
}

impl From<LatestPrice> for PriceResponse {
    fn from(latest: LatestPrice) -> Self {
        let (cached, stale) = (latest.cached(), latest.stale());
        let q = latest.quote;
        Self {
            symbol: q.symbol.to_string(),
            price: q.price,
            timestamp: q.quote_time,
            provider: q.provider.to_string(),
            change: q.change,
            percent_change: q.percent_change,
            high: q.high,
            low: q.low,
            open: q.open,
            previous_close: q.previous_close,
            fetched_at: q.fetched_at,
            cached,
            stale,
        }
    }
}

/// Validates the parameters and asks the latest-price use case.
pub async fn latest_price(
    State(services): State<Services>,
    ProblemQuery(params): ProblemQuery<LatestParams>,
) -> Result<Json<PriceResponse>, Problem> {
    let raw_symbol = params
        .symbol
        .ok_or_else(|| Problem::bad_parameter("query parameter `symbol` is required"))?;
    let symbol = Symbol::parse(&raw_symbol)
        .map_err(|e| Problem::bad_parameter(format!("invalid `symbol`: {e}")))?;
    let provider = params
        .provider
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.parse::<ProviderId>())
        .transpose()
        .map_err(|e| Problem::bad_parameter(format!("invalid `provider`: {e}")))?;
    let latest = services.quotes.latest(&symbol, provider).await?;
    Ok(Json(latest.into()))
}
