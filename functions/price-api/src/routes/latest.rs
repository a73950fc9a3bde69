//! `GET /prices/latest?symbol=AAPL&provider=finnhub`: the latest price of one symbol.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use market_data::cache::CacheTier;
use market_data::domain::{ProviderId, Symbol};
use market_data::usecases::{LatestPrice, Origin};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::ProblemQuery;
use crate::middleware::request_log::QuoteOutcome;
use crate::openapi::examples;
use crate::problem::Problem;

/// The query string, as sent; validated in the handler so each mistake gets its own message.
#[derive(Debug, Deserialize)]
pub struct LatestParams {
    symbol: Option<String>,
    provider: Option<String>,
}

/// The answer: the seed's four fields (`symbol`, `price`, `timestamp`, `provider`) first,
/// then the day's context and where the answer came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "symbol": "AAPL", "price": 261.74, "timestamp": "2026-11-25T20:59:58Z", "provider": "finnhub",
    "change": 2.29, "percent_change": 0.8826, "high": 263.31, "low": 260.68, "open": 261.07,
    "previous_close": 259.45, "fetched_at": "2026-11-25T21:00:03.120456Z",
    "cached": false, "stale": false
}))]
pub struct PriceResponse {
    /// The normalised symbol.
    pub symbol: String,
    /// The last price, a JSON number with exactly its digits.
    #[serde(with = "market_data::domain::exact_json")]
    pub price: Decimal,
    /// The provider's time of the price (RFC 3339, UTC); unchanged on a cache hit.
    pub timestamp: DateTime<Utc>,
    /// The provider that reported it.
    pub provider: String,
    /// Change since the previous close.
    #[serde(with = "market_data::domain::exact_json_option")]
    pub change: Option<Decimal>,
    /// Change since the previous close, in percent.
    #[serde(with = "market_data::domain::exact_json_option")]
    pub percent_change: Option<Decimal>,
    /// High of the day.
    #[serde(with = "market_data::domain::exact_json")]
    pub high: Decimal,
    /// Low of the day.
    #[serde(with = "market_data::domain::exact_json")]
    pub low: Decimal,
    /// Open of the day.
    #[serde(with = "market_data::domain::exact_json")]
    pub open: Decimal,
    /// Previous close.
    #[serde(with = "market_data::domain::exact_json")]
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
#[utoipa::path(
    get,
    path = "/prices/latest",
    tag = "prices",
    summary = "The latest price of a symbol",
    description = "From the cache while fresh (`CACHE_TTL_SECONDS`), else from the provider; \
                   concurrent requests for one symbol share one provider call. When the \
                   provider fails, a cached quote younger than `CACHE_STALE_TTL_SECONDS` is \
                   served with `stale: true`.",
    params(
        ("symbol" = String, Query, description = "Ticker symbol; trimmed and upper-cased, then \
          `^[A-Z0-9][A-Z0-9.\\-^=:]{0,14}$`", example = "AAPL"),
        ("provider" = Option<String>, Query, description = "`finnhub` or `simulated`; the \
          deployment's default when absent", example = "finnhub"),
    ),
    responses(
        (status = 200, description = "The quote", body = PriceResponse,
         headers(
             ("ratelimit-limit" = u32, description = "Requests allowed at once"),
             ("ratelimit-remaining" = u32, description = "Requests left now"),
             ("ratelimit-reset" = u64, description = "Seconds until the quota is whole again"),
         )),
        (status = 400, description = "Missing or invalid `symbol`, or an unknown `provider`",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::unknown_provider())),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 404, description = "The provider does not know the symbol",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::unknown_symbol())),
        (status = 429, description = "The caller's rate limit is reached; see `Retry-After`",
         body = Problem, content_type = "application/problem+json", example = json!(examples::rate_limited())),
        (status = 502, description = "The provider refused the service's credentials",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::provider_refused())),
        (status = 503, description = "No provider could answer and nothing usable is cached: \
                                      not configured, rate-limited (with `Retry-After`), failing or slow",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::provider_not_configured())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn latest_price(
    State(AppState { api: services, .. }): State<AppState>,
    ProblemQuery(params): ProblemQuery<LatestParams>,
) -> Result<Response, Problem> {
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
    let outcome = QuoteOutcome {
        cache: match latest.origin {
            Origin::Cache(CacheTier::Local) => "hit-local",
            Origin::Cache(CacheTier::Shared) => "hit-shared",
            Origin::Provider { joined: false } => "miss",
            Origin::Provider { joined: true } => "joined",
            Origin::Stale => "stale",
        },
        provider: latest.quote.provider.to_string(),
    };
    let mut response = Json(PriceResponse::from(latest)).into_response();
    response.extensions_mut().insert(outcome);
    Ok(response)
}
