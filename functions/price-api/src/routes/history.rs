//! `GET /prices/history?symbol=AAPL`: the price points the consumer stored, newest first.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use market_data::domain::{PricePoint, Symbol};
use market_data::store::HistoryQuery;
use market_data::usecases::{DEFAULT_PAGE, MAX_PAGE};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{ProblemQuery, bounded_param};
use crate::openapi::examples;
use crate::problem::Problem;

/// The query string, as sent; validated in the handler so each mistake gets its own message.
#[derive(Debug, Deserialize)]
pub struct HistoryParams {
    symbol: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One stored price point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "price": 261.74, "timestamp": "2026-11-25T20:59:58Z", "source": "finnhub",
    "raw_response_id": "019ab8c4-6f1e-7c31-9d52-3b8e1f0a7c44"
}))]
pub struct PointResponse {
    /// The price, a JSON number with exactly its digits.
    #[serde(with = "market_data::domain::exact_json")]
    pub price: Decimal,
    /// The provider's time of the price (RFC 3339, UTC).
    pub timestamp: DateTime<Utc>,
    /// The provider that reported it.
    pub source: String,
    /// The stored raw response it came from (the price event's idempotency key).
    pub raw_response_id: Uuid,
}

/// One page of a symbol's points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "symbol": "AAPL",
    "points": [
        {"price": 261.74, "timestamp": "2026-11-25T20:59:58Z", "source": "finnhub",
         "raw_response_id": "019ab8c4-6f1e-7c31-9d52-3b8e1f0a7c44"},
        {"price": 261.52, "timestamp": "2026-11-25T20:58:41Z", "source": "finnhub",
         "raw_response_id": "019ab8c3-41a2-7b90-8e11-5c0d2a9b6e13"}
    ],
    "next_cursor": "MjAyNi0xMS0yNVQyMDo1ODo0MVp8MDE5YWI4YzMtNDFhMi03YjkwLThlMTEtNWMwZDJhOWI2ZTEz"
}))]
pub struct HistoryResponse {
    /// The normalised symbol.
    pub symbol: String,
    /// Its points, newest first (by quote time).
    pub points: Vec<PointResponse>,
    /// Pass as `cursor` for the next, older page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<PricePoint> for PointResponse {
    fn from(p: PricePoint) -> Self {
        Self {
            price: p.price,
            timestamp: p.quote_time,
            source: p.source,
            raw_response_id: p.raw_response_id,
        }
    }
}

/// Validates the parameters and reads one page.
#[utoipa::path(
    get,
    path = "/prices/history",
    tag = "history",
    summary = "Stored price points of a symbol",
    description = "Every price event the consumer stored for the symbol, newest first by the \
                   provider's quote time, optionally within `from`..`to`. Pages are linked by \
                   `next_cursor`, stable while new points arrive.",
    params(
        ("symbol" = String, Query, description = "Ticker symbol, as for `/prices/latest`", example = "AAPL"),
        ("from" = Option<String>, Query, description = "Only points quoted at or after this time (RFC 3339)",
         example = "2026-11-25T14:30:00Z"),
        ("to" = Option<String>, Query, description = "Only points quoted at or before this time (RFC 3339)",
         example = "2026-11-25T21:00:00Z"),
        ("limit" = Option<u32>, Query, description = "Points per page, 1 to 1000 (default 100)", example = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of points (empty when none are stored)", body = HistoryResponse),
        (status = 400, description = "Missing or invalid `symbol`, a bad time, limit or cursor",
         body = Problem, content_type = "application/problem+json",
         example = json!(examples::bad_time())),
        (status = 401, description = "API keys are required and none (or a wrong one) was sent",
         body = Problem, content_type = "application/problem+json", example = json!(examples::unauthorized())),
        (status = 429, description = "The caller's rate limit is reached; see `Retry-After`",
         body = Problem, content_type = "application/problem+json", example = json!(examples::rate_limited())),
        (status = 503, description = "The database cannot be reached",
         body = Problem, content_type = "application/problem+json", example = json!(examples::store_unavailable())),
    ),
    security((), ("api_key" = [])),
)]
pub async fn history(
    State(AppState { api: services, .. }): State<AppState>,
    ProblemQuery(params): ProblemQuery<HistoryParams>,
) -> Result<Json<HistoryResponse>, Problem> {
    let raw_symbol = params
        .symbol
        .ok_or_else(|| Problem::bad_parameter("query parameter `symbol` is required"))?;
    let symbol = Symbol::parse(&raw_symbol)
        .map_err(|e| Problem::bad_parameter(format!("invalid `symbol`: {e}")))?;
    let from = time_param("from", params.from)?;
    let to = time_param("to", params.to)?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(Problem::bad_parameter("`from` must not be after `to`"));
    }
    let limit = bounded_param("limit", params.limit.as_deref(), DEFAULT_PAGE, 1..=MAX_PAGE)?;
    let before = params
        .cursor
        .filter(|c| !c.trim().is_empty())
        .map(|c| decode_cursor(c.trim()))
        .transpose()?;
    let page = services
        .history
        .points(HistoryQuery {
            symbol: symbol.clone(),
            from,
            to,
            before,
            limit,
        })
        .await?;
    Ok(Json(HistoryResponse {
        symbol: symbol.to_string(),
        points: page.points.into_iter().map(PointResponse::from).collect(),
        next_cursor: page.next.map(|(time, id)| encode_cursor(time, id)),
    }))
}

fn time_param(name: &str, raw: Option<String>) -> Result<Option<DateTime<Utc>>, Problem> {
    raw.filter(|t| !t.trim().is_empty())
        .map(|t| {
            DateTime::parse_from_rfc3339(t.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Problem::bad_parameter(format!(
                        "invalid `{name}`: expected an RFC 3339 time such as 2026-11-25T14:30:00Z"
                    ))
                })
        })
        .transpose()
}

/// The cursor is the last point's order key, opaque to clients.
fn encode_cursor(time: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{id}",
        time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    ))
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), Problem> {
    let bad = || Problem::bad_parameter("invalid `cursor`: pass `next_cursor` of a previous page");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, id) = text.split_once('|').ok_or_else(bad)?;
    let time = DateTime::parse_from_rfc3339(time).map_err(|_| bad())?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((time.with_timezone(&Utc), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(time, id)).unwrap(), (time, id));
        for bad in [
            "",
            "!!!",
            "bm9waXBl",
            &URL_SAFE_NO_PAD.encode("2026-01-01T00:00:00Z|x"),
        ] {
            assert_eq!(decode_cursor(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
