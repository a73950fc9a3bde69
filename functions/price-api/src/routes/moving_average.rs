//! `GET /prices/moving-average?symbol=AAPL&window=5&kind=sma`: the latest stored average.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use market_data::domain::{AverageKind, AverageSpec, MAX_WINDOW, MovingAverage, Symbol};
use market_data::usecases::AverageError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::{ProblemQuery, bounded_param};
use crate::openapi::examples;
use crate::problem::Problem;

/// The query string, as sent; validated in the handler so each mistake gets its own message.
#[derive(Debug, Deserialize)]
pub struct AverageParams {
    symbol: Option<String>,
    window: Option<String>,
    kind: Option<String>,
}

/// The newest value of one moving average.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "symbol": "AAPL", "kind": "sma", "window": 5, "value": 261.412, "as_of": "2026-11-25T20:59:58Z"
}))]
pub struct AverageResponse {
    /// The normalised symbol.
    pub symbol: String,
    /// `sma` or `ema`.
    pub kind: String,
    /// How many price points it spans.
    pub window: u16,
    /// Its value, a JSON number with exactly its digits.
    #[serde(with = "market_data::domain::exact_json")]
    pub value: Decimal,
    /// The quote time of the newest point it includes (RFC 3339, UTC).
    pub as_of: DateTime<Utc>,
}

impl From<MovingAverage> for AverageResponse {
    fn from(a: MovingAverage) -> Self {
        Self {
            symbol: a.symbol.to_string(),
            kind: a.spec.kind.to_string(),
            window: a.spec.window,
            value: a.value,
            as_of: a.as_of,
        }
    }
}

/// Validates the parameters and reads the newest value.
#[utoipa::path(
    get,
    path = "/prices/moving-average",
    tag = "history",
    summary = "The latest moving average of a symbol",
    description = "Computed by the consumer from the stored price points, ordered by quote \
                   time: SMA-N is the mean of the last N prices (the seed's default is SMA-5); \
                   EMA-N smooths with α = 2/(N+1), seeded with the SMA of the oldest N of the \
                   last 4N points. Only the averages in `MA_WINDOWS` are computed.",
    params(
        ("symbol" = String, Query, description = "Ticker symbol, as for `/prices/latest`", example = "AAPL"),
        ("window" = Option<u16>, Query, description = "Points it spans (default 5)", example = 5),
        ("kind" = Option<String>, Query, description = "`sma` (default) or `ema`", example = "sma"),
    ),
    responses(
        (status = 200, description = "The newest value", body = AverageResponse),
        (status = 400, description = "Missing or invalid `symbol`, `window` or `kind`, or an \
                                      average this deployment does not compute",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::average_not_computed())),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 404, description = "Not enough price points of the symbol are stored yet",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::average_not_ready())),
        (status = 429, description = "The caller's rate limit is reached; see `Retry-After`",
         body = Problem, content_type = "application/problem+json", example = json!(examples::rate_limited())),
        (status = 503, description = "The database cannot be reached",
         body = Problem, content_type = "application/problem+json", example = json!(examples::store_unavailable())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn moving_average(
    State(AppState { api: services, .. }): State<AppState>,
    ProblemQuery(params): ProblemQuery<AverageParams>,
) -> Result<Json<AverageResponse>, Problem> {
    let raw_symbol = params
        .symbol
        .ok_or_else(|| Problem::bad_parameter("query parameter `symbol` is required"))?;
    let symbol = Symbol::parse(&raw_symbol)
        .map_err(|e| Problem::bad_parameter(format!("invalid `symbol`: {e}")))?;
    let window = bounded_param("window", params.window.as_deref(), 5, 1..=MAX_WINDOW)?;
    let kind = match params.kind.filter(|k| !k.trim().is_empty()) {
        None => AverageKind::Sma,
        Some(raw) => raw
            .parse()
            .map_err(|e| Problem::bad_parameter(format!("invalid `kind`: {e}")))?,
    };
    let spec = AverageSpec { kind, window };
    match services.history.latest_average(&symbol, spec).await {
        Ok(Some(average)) => Ok(Json(average.into())),
        Ok(None) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "average-not-ready",
            "Average not available yet",
            format!("no {spec} of {symbol} yet: it needs {window} stored price points"),
        )),
        Err(e @ AverageError::NotComputed { .. }) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "average-not-computed",
            "Average not computed",
            e.to_string(),
        )),
        Err(AverageError::Store(e)) => Err(e.into()),
    }
}
