//! `GET /prices/latest?symbol=AAPL&provider=finnhub`: the latest price of one symbol;
//! `GET /prices/latest?symbols=AAPL,MSFT`: up to [`MAX_SYMBOLS`] at once, a quote or a
//! problem per symbol.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use market_data::cache::CacheTier;
use market_data::domain::{ProviderId, Symbol};
use market_data::usecases::{Attempt, LatestPrice, Origin};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::ProblemQuery;
use crate::middleware::request_log::QuoteOutcome;
use crate::openapi::examples;
use crate::problem::{Problem, RouteStep};

/// The query string, as sent; validated in the handler so each mistake gets its own message.
#[derive(Debug, Deserialize)]
pub struct LatestParams {
    symbol: Option<String>,
    symbols: Option<String>,
    provider: Option<String>,
}

/// Symbols one batch request may ask for.
pub const MAX_SYMBOLS: usize = 50;

/// The answer: the seed's four fields (`symbol`, `price`, `timestamp`, `provider`) first,
/// then the day's context and where the answer came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "symbol": "AAPL", "price": 261.74, "timestamp": "2026-11-25T20:59:58Z", "provider": "finnhub",
    "change": 2.29, "percent_change": 0.8826, "high": 263.31, "low": 260.68, "open": 261.07,
    "previous_close": 259.45, "fetched_at": "2026-11-25T21:00:03.120456Z",
    "cached": false, "stale": false,
    "route": [
        {"provider": "twelvedata", "outcome": "skipped", "reason": "rate_limited",
         "detail": "the provider's rate limit is exhausted"},
        {"provider": "finnhub", "outcome": "served", "reason": "served"}
    ]
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
    /// The providers asked for this answer, in order, and what each did; empty when the
    /// answer came from the cache.
    pub route: Vec<RouteStep>,
}

/// The answer to a batch request: a quote or a problem per symbol, in the order asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// The quotes of the symbols that have one.
    pub quotes: Vec<PriceResponse>,
    /// A problem per symbol that failed, with the symbol.
    pub errors: Vec<SymbolProblem>,
}

/// The problem of one symbol of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SymbolProblem {
    /// The symbol.
    pub symbol: String,
    /// Why it has no quote, as the single-symbol request would have answered.
    #[serde(flatten)]
    pub problem: Problem,
}

impl From<LatestPrice> for PriceResponse {
    fn from(latest: LatestPrice) -> Self {
        let (cached, stale) = (latest.cached(), latest.stale());
        let route = latest.route.iter().map(RouteStep::from).collect();
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
            route,
        }
    }
}

/// Validates the parameters and asks the latest-price use case.
#[utoipa::path(
    get,
    path = "/prices/latest",
    tag = "prices",
    summary = "The latest price of a symbol",
    description = "From the cache while fresh (`CACHE_TTL_SECONDS`), else from the first \
                   provider of the failover chain (`PROVIDERS`) that answers, or from the \
                   one `provider` names; `route` lists each provider tried and why it was \
                   passed over. Concurrent requests for one symbol share one provider call. \
                   When every provider fails, a cached quote younger than \
                   `CACHE_STALE_TTL_SECONDS` is served with `stale: true`. With `symbols` \
                   (1 to 50, comma-separated) instead of `symbol`, the answer is a \
                   `BatchResponse`: misses are fetched together, in batch calls where the \
                   provider has them.",
    params(
        ("symbol" = Option<String>, Query, description = "Ticker symbol; trimmed and upper-cased, then \
          `^[A-Z0-9][A-Z0-9.\\-^=:]{0,14}$`", example = "AAPL"),
        ("symbols" = Option<String>, Query, description = "Instead of `symbol`: 1 to 50 \
          comma-separated symbols, answered with a `BatchResponse`", example = "AAPL,MSFT"),
        ("provider" = Option<String>, Query, description = "`finnhub`, `twelvedata`, `fmp`, \
          `tiingo`, `alphavantage`, `massive`, `yahoo` or `simulated` (aliases such as \
          `alpha_vantage` and `polygon` accepted); the failover chain when absent", example = "finnhub"),
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
    let provider = params
        .provider
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.parse::<ProviderId>())
        .transpose()
        .map_err(|e| Problem::bad_parameter(format!("invalid `provider`: {e}")))?;
    let raw_symbol = match (params.symbol, params.symbols) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_parameter(
                "send either `symbol` or `symbols`, not both",
            ));
        }
        (None, Some(list)) => return batch(&services, &list, provider).await,
        (Some(symbol), None) => symbol,
        (None, None) => {
            return Err(Problem::bad_parameter(
                "query parameter `symbol` is required",
            ));
        }
    };
    let symbol = Symbol::parse(&raw_symbol)
        .map_err(|e| Problem::bad_parameter(format!("invalid `symbol`: {e}")))?;
    let latest = match services.quotes.latest(&symbol, provider).await {
        Ok(latest) => latest,
        Err(e) => {
            let outcome = QuoteOutcome {
                cache: "miss",
                provider: e.provider.to_string(),
                route: route_text(&e.attempts),
            };
            let mut response = Problem::from(e).into_response();
            response.extensions_mut().insert(outcome);
            return Ok(response);
        }
    };
    let outcome = QuoteOutcome {
        cache: cache_label(latest.origin),
        provider: latest.quote.provider.to_string(),
        route: route_text(&latest.route),
    };
    let mut response = Json(PriceResponse::from(latest)).into_response();
    response.extensions_mut().insert(outcome);
    Ok(response)
}

/// The batch form: validates the list, asks for every symbol at once.
async fn batch(
    services: &market_data::services::ApiServices,
    list: &str,
    provider: Option<ProviderId>,
) -> Result<Response, Problem> {
    let mut symbols: Vec<Symbol> = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let symbol = Symbol::parse(raw).map_err(|e| {
            Problem::bad_parameter(format!("invalid symbol {raw:?} in `symbols`: {e}"))
        })?;
        if !symbols.contains(&symbol) {
            symbols.push(symbol);
        }
    }
    if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
        return Err(Problem::bad_parameter(format!(
            "`symbols` must list 1 to {MAX_SYMBOLS} symbols, got {}",
            symbols.len()
        )));
    }
    let results = services.quotes.latest_many(&symbols, provider).await;
    let mut answer = BatchResponse {
        quotes: Vec::new(),
        errors: Vec::new(),
    };
    let mut routes = Vec::new();
    for (symbol, result) in symbols.iter().zip(results) {
        match result {
            Ok(latest) => {
                routes.push(format!("{symbol}={}", route_text(&latest.route)));
                answer.quotes.push(PriceResponse::from(latest));
            }
            Err(e) => {
                routes.push(format!("{symbol}={}", route_text(&e.attempts)));
                answer.errors.push(SymbolProblem {
                    symbol: symbol.to_string(),
                    problem: Problem::from(e),
                });
            }
        }
    }
    let outcome = QuoteOutcome {
        cache: "batch",
        provider: String::new(),
        route: routes.join(" "),
    };
    let mut response = Json(answer).into_response();
    response.extensions_mut().insert(outcome);
    Ok(response)
}

fn cache_label(origin: Origin) -> &'static str {
    match origin {
        Origin::Cache(CacheTier::Local) => "hit-local",
        Origin::Cache(CacheTier::Shared) => "hit-shared",
        Origin::Provider { joined: false } => "miss",
        Origin::Provider { joined: true } => "joined",
        Origin::Stale => "stale",
    }
}

/// The route for the access log: `finnhub:rate_limited>twelvedata:served`.
fn route_text(route: &[Attempt]) -> String {
    route
        .iter()
        .map(|a| format!("{}:{}", a.provider, a.reason()))
        .collect::<Vec<_>>()
        .join(">")
}
