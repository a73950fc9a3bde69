//! The floor of the latest-price benchmarks: the least an axum server on this machine can do
//! for one request, so the runner's figures can be read as a share of it.
//!
//! ```sh
//! cargo run --profile profiling --example bench-floor -- 127.0.0.1:18070
//! ```
//!
//! Same axum, hyper and tokio as the service (the workspace's versions and features, the
//! default multi-threaded runtime), no layers, no state: `GET /prices/latest` answers a fixed
//! JSON body the size and shape of a cached quote. It also answers Finnhub's
//! `GET /api/v1/quote?symbol=` at once, so the miss benchmark can point `FINNHUB_BASE_URL` at a
//! provider that costs next to nothing (`local/bench/floor.sh`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::extract::Query;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

/// A quote as `GET /prices/latest` answers it from the cache (same fields, similar length).
const QUOTE: &str = r#"{"symbol":"AAPL","price":261.74,"timestamp":"2026-11-25T20:59:58Z","provider":"finnhub","change":2.29,"percent_change":0.8826,"high":263.31,"low":260.68,"open":261.07,"previous_close":259.45,"fetched_at":"2026-11-25T21:00:03.120456Z","cached":true,"stale":false,"route":[{"provider":"finnhub","outcome":"served","reason":"cached"}]}"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18070".to_owned())
        .parse()
        .context("the first argument is the address to listen on")?;
    let app = Router::new()
        .route("/prices/latest", get(latest))
        .route("/api/v1/quote", get(finnhub_quote));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    axum::serve(listener, app).await.context("serving")
}

async fn latest() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], QUOTE)
}

/// Finnhub's quote shape, answered at once; prices differ by symbol.
async fn finnhub_quote(
    Query(query): Query<HashMap<String, String>>,
) -> axum::Json<serde_json::Value> {
    let symbol = query.get("symbol").map(String::as_str).unwrap_or_default();
    let cents = symbol.bytes().map(u64::from).sum::<u64>() * 97 % 40_000 + 1_000;
    let dollars = |c: u64| c as f64 / 100.0;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    axum::Json(json!({
        "c": dollars(cents),
        "d": 1.25,
        "dp": 0.6,
        "h": dollars(cents + 200),
        "l": dollars(cents - 200),
        "o": dollars(cents - 100),
        "pc": dollars(cents - 125),
        "t": now,
    }))
}
