//! A local stand-in for any of the HTTP providers besides Finnhub (which keeps its own
//! `fake_finnhub`), answering on the paths and in the shapes each provider documents,
//! errors inside 200 bodies included.
//!
//! One server per provider per test. Each symbol can be given a [`ProviderReply`]; the
//! documented answers come from the recorded samples under `tests/fixtures/providers/`. The
//! server counts requests (a batch call is one) and the symbols each named, and records
//! the credential each carried, so tests can check what the service sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// Which provider the fake plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Twelve Data: `/quote?symbol=A,B`.
    TwelveData,
    /// Alpha Vantage: `/query?function=GLOBAL_QUOTE&symbol=A`.
    AlphaVantage,
    /// Massive: `/v2/aggs/ticker/A/prev`.
    Massive,
    /// FMP: `/stable/quote?symbol=A`.
    Fmp,
    /// Tiingo: `/iex/?tickers=a,b`.
    Tiingo,
    /// Yahoo: `/v8/finance/chart/A`.
    Yahoo,
}

impl Kind {
    /// The folder of its recorded samples, and its id in the service.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TwelveData => "twelvedata",
            Kind::AlphaVantage => "alphavantage",
            Kind::Massive => "massive",
            Kind::Fmp => "fmp",
            Kind::Tiingo => "tiingo",
            Kind::Yahoo => "yahoo",
        }
    }

    /// The prefix of its variables (`TWELVEDATA_API_KEY`, …).
    pub fn env_prefix(self) -> String {
        self.name().to_uppercase()
    }
}

/// A recorded sample body of `kind`.
pub fn fixture(kind: Kind, name: &str) -> String {
    let path = format!(
        "{}/fixtures/providers/{}/{name}",
        env!("CARGO_MANIFEST_DIR"),
        kind.name()
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// How the fake answers for a symbol.
#[derive(Debug, Clone)]
pub enum ProviderReply {
    /// A realistic quote for the symbol, stamped now.
    Quote,
    /// The provider's documented answer for a symbol it does not know.
    Unknown,
    /// This status with this recorded sample as a JSON body (`"bad_key.json"`, …).
    Fixture(u16, &'static str),
    /// This status and body verbatim, with this content type.
    Raw(u16, &'static str, String),
    /// Accepts the request and never answers.
    Hang,
    /// Waits, then answers as the inner reply.
    Delayed(Duration, Box<ProviderReply>),
}

#[derive(Default)]
struct Shared {
    replies: Mutex<HashMap<String, ProviderReply>>,
    default: Mutex<Option<ProviderReply>>,
    symbol_calls: Mutex<HashMap<String, usize>>,
    requests: Mutex<usize>,
    credentials: Mutex<Vec<Option<String>>>,
}

/// The running fake.
pub struct FakeProvider {
    kind: Kind,
    base_url: String,
    shared: Arc<Shared>,
}

impl FakeProvider {
    /// Starts a fake of `kind` on a free local port; every symbol gets
    /// [`ProviderReply::Quote`] until told otherwise.
    pub async fn start(kind: Kind) -> Self {
        let shared = Arc::new(Shared::default());
        let state = (kind, Arc::clone(&shared));
        let app = Router::new()
            .route("/quote", get(by_query))
            .route("/query", get(by_query))
            .route("/stable/quote", get(by_query))
            .route("/iex/", get(by_query))
            .route("/v2/aggs/ticker/{symbol}/prev", get(by_path))
            .route("/v8/finance/chart/{symbol}", get(by_path))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake provider");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            kind,
            base_url: format!("http://{addr}"),
            shared,
        }
    }

    /// Which provider it plays.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The value for `<NAME>_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The variables that point the service at this fake, with a key.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = self.kind.env_prefix();
        let mut vars = vec![(format!("{p}_BASE_URL"), self.base_url.clone())];
        if self.kind == Kind::Yahoo {
            vars.push(("YAHOO_ENABLED".into(), "true".into()));
        } else {
            vars.push((
                format!("{p}_API_KEY"),
                format!("test-{}-key", self.kind.name()),
            ));
        }
        vars
    }

    /// From now on, answer `symbol` with `reply`.
    pub fn reply(&self, symbol: &str, reply: ProviderReply) {
        self.shared
            .replies
            .lock()
            .expect("replies")
            .insert(symbol.to_owned(), reply);
    }

    /// From now on, answer every symbol without a reply of its own with `reply`.
    pub fn reply_all(&self, reply: ProviderReply) {
        *self.shared.default.lock().expect("default") = Some(reply);
    }

    /// How many requests named `symbol` (alone or in a batch).
    pub fn calls(&self, symbol: &str) -> usize {
        self.shared
            .symbol_calls
            .lock()
            .expect("calls")
            .get(symbol)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests arrived (a batch call is one).
    pub fn requests(&self) -> usize {
        *self.shared.requests.lock().expect("requests")
    }

    /// The credential of every request so far (header or query), in order.
    pub fn credentials(&self) -> Vec<Option<String>> {
        self.shared.credentials.lock().expect("credentials").clone()
    }
}

type FakeState = (Kind, Arc<Shared>);

async fn by_query(
    State((kind, shared)): State<FakeState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let list = params
        .get("symbol")
        .or_else(|| params.get("tickers"))
        .cloned()
        .unwrap_or_default();
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("apikey").cloned())
        .or_else(|| params.get("token").cloned());
    let symbols: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    answer(kind, &shared, credential, symbols).await
}

async fn by_path(
    State((kind, shared)): State<FakeState>,
    headers: HeaderMap,
    Path(symbol): Path<String>,
) -> Response {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    answer(kind, &shared, credential, vec![symbol.to_uppercase()]).await
}

async fn answer(
    kind: Kind,
    shared: &Shared,
    credential: Option<String>,
    symbols: Vec<String>,
) -> Response {
    *shared.requests.lock().expect("requests") += 1;
    shared
        .credentials
        .lock()
        .expect("credentials")
        .push(credential);
    let replies: Vec<ProviderReply> = {
        let mut calls = shared.symbol_calls.lock().expect("calls");
        let table = shared.replies.lock().expect("replies");
        let default = shared.default.lock().expect("default").clone();
        symbols
            .iter()
            .map(|s| {
                *calls.entry(s.clone()).or_default() += 1;
                table
                    .get(s)
                    .cloned()
                    .or_else(|| default.clone())
                    .unwrap_or(ProviderReply::Quote)
            })
            .collect()
    };
    if symbols.len() > 1 {
        return batch(kind, &symbols, replies).await;
    }
    let (Some(symbol), Some(reply)) = (symbols.first(), replies.into_iter().next()) else {
        return (StatusCode::BAD_REQUEST, "no symbol").into_response();
    };
    single(kind, symbol, reply).await
}

async fn single(kind: Kind, symbol: &str, reply: ProviderReply) -> Response {
    match reply {
        ProviderReply::Quote => match kind {
            Kind::Tiingo => axum::Json(json!([quote_body(kind, symbol)])).into_response(),
            _ => axum::Json(quote_body(kind, symbol)).into_response(),
        },
        ProviderReply::Unknown => {
            let status = if kind == Kind::Yahoo { 404 } else { 200 };
            json_response(status, &unknown_body(kind, symbol))
        }
        ProviderReply::Fixture(status, name) => json_response(status, &fixture(kind, name)),
        ProviderReply::Raw(status, content_type, body) => (
            StatusCode::from_u16(status).expect("status"),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
        ProviderReply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        ProviderReply::Delayed(wait, inner) => {
            tokio::time::sleep(wait).await;
            Box::pin(single(kind, symbol, *inner)).await
        }
    }
}

/// A batch (Twelve Data, Tiingo): the first call-level failure answers the whole call;
/// otherwise each symbol's part, as the provider documents.
async fn batch(kind: Kind, symbols: &[String], replies: Vec<ProviderReply>) -> Response {
    let whole_call = replies.iter().find(|r| match r {
        ProviderReply::Quote | ProviderReply::Unknown => false,
        ProviderReply::Fixture(status, _) => kind != Kind::TwelveData || *status != 200,
        _ => true,
    });
    if let Some(reply) = whole_call {
        return single(kind, &symbols[0], reply.clone()).await;
    }
    match kind {
        Kind::Tiingo => {
            let items: Vec<Value> = symbols
                .iter()
                .zip(&replies)
                .filter(|(_, r)| matches!(r, ProviderReply::Quote))
                .map(|(s, _)| quote_body(kind, s))
                .collect();
            axum::Json(Value::Array(items)).into_response()
        }
        _ => {
            let mut object = serde_json::Map::new();
            for (s, r) in symbols.iter().zip(&replies) {
                let part = match r {
                    ProviderReply::Quote => quote_body(kind, s),
                    ProviderReply::Fixture(_, name) => {
                        serde_json::from_str(&fixture(kind, name)).expect("fixture JSON")
                    }
                    _ => serde_json::from_str(&unknown_body(kind, s)).expect("unknown JSON"),
                };
                object.insert(s.clone(), part);
            }
            axum::Json(Value::Object(object)).into_response()
        }
    }
}

fn json_response(status: u16, body: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response()
}

/// The price the fake quotes for `symbol`, in cents: the same for every provider.
pub fn cents(symbol: &str) -> u64 {
    symbol.bytes().map(u64::from).sum::<u64>() * 97 % 40_000 + 1_000
}

fn unknown_body(kind: Kind, symbol: &str) -> String {
    fixture(kind, "unknown_symbol.json").replace("ZZZZZ", symbol)
}

/// A realistic quote of `symbol` in `kind`'s shape, stamped now.
pub fn quote_body(kind: Kind, symbol: &str) -> Value {
    let c = cents(symbol);
    let p = |c: u64| format!("{}.{:02}", c / 100, c % 100);
    let n = |c: u64| c as f64 / 100.0;
    let now = chrono::Utc::now();
    let t = now.timestamp();
    match kind {
        Kind::TwelveData => json!({
            "symbol": symbol, "name": symbol, "exchange": "NASDAQ", "currency": "USD",
            "datetime": now.format("%Y-%m-%d").to_string(), "timestamp": t - 60, "last_quote_at": t,
            "open": p(c - 100), "high": p(c + 200), "low": p(c - 200), "close": p(c),
            "volume": "1000", "previous_close": p(c - 125), "change": "1.25",
            "percent_change": "0.60000", "is_market_open": true
        }),
        Kind::AlphaVantage => json!({"Global Quote": {
            "01. symbol": symbol, "02. open": p(c - 100), "03. high": p(c + 200),
            "04. low": p(c - 200), "05. price": p(c), "06. volume": "1000",
            "07. latest trading day": now.format("%Y-%m-%d").to_string(),
            "08. previous close": p(c - 125), "09. change": "1.2500", "10. change percent": "0.6000%"
        }}),
        Kind::Massive => json!({
            "ticker": symbol, "queryCount": 1, "resultsCount": 1, "adjusted": true,
            "results": [{"T": symbol, "v": 1000, "vw": n(c), "o": n(c - 100), "c": n(c),
                         "h": n(c + 200), "l": n(c - 200), "t": t * 1000, "n": 10}],
            "status": "OK", "request_id": "fake", "count": 1
        }),
        Kind::Fmp => json!([{
            "symbol": symbol, "name": symbol, "price": n(c), "changePercentage": 0.6,
            "change": 1.25, "volume": 1000, "dayLow": n(c - 200), "dayHigh": n(c + 200),
            "exchange": "NASDAQ", "open": n(c - 100), "previousClose": n(c - 125), "timestamp": t
        }]),
        Kind::Tiingo => json!({
            "ticker": symbol, "timestamp": now.to_rfc3339(), "last": n(c), "tngoLast": n(c),
            "prevClose": n(c - 125), "open": n(c - 100), "high": n(c + 200), "low": n(c - 200),
            "volume": 1000
        }),
        Kind::Yahoo => json!({"chart": {"result": [{
            "meta": {"currency": "USD", "symbol": symbol, "regularMarketPrice": n(c),
                     "regularMarketTime": t, "chartPreviousClose": n(c - 125),
                     "regularMarketDayHigh": n(c + 200), "regularMarketDayLow": n(c - 200)},
            "timestamp": [t], "indicators": {"quote": [{"open": [n(c - 100)]}]}
        }], "error": null}}),
    }
}
