//! A local stand-in for Finnhub's REST API, answering the way its documentation says.
//!
//! Each symbol can be given a [`Reply`]; the server counts calls per symbol and records
//! the API token each request carried, so tests can check what the service sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// How the fake answers `/quote` for a symbol.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(serde_json::Value),
    /// A realistic quote for the symbol, stamped now, or a second after the previous one
    /// of the symbol if that is later: a market trading, each call a new quote.
    Quote,
    /// Finnhub's answer for an unknown symbol: 200, every field zero.
    Zeros,
    /// This status with a Finnhub-style `{"error": ...}` body and these headers.
    Status(u16, Vec<(&'static str, String)>),
    /// 200 with this body verbatim, declared as JSON (for truncated or invalid JSON).
    RawJson(String),
    /// An HTML error page with this status, as a proxy in front of the API would send.
    Html(u16),
    /// Accepts the request and never answers.
    Hang,
    /// Waits, then answers as the inner reply.
    Delayed(Duration, Box<Reply>),
}

#[derive(Default)]
struct Shared {
    replies: Mutex<HashMap<String, Reply>>,
    calls: Mutex<HashMap<String, usize>>,
    tokens: Mutex<Vec<Option<String>>>,
    last_time: Mutex<HashMap<String, i64>>,
}

/// The running fake.
pub struct FakeFinnhub {
    base_url: String,
    shared: Arc<Shared>,
}

impl FakeFinnhub {
    /// Starts on a free local port; every symbol gets [`Reply::Quote`] until told otherwise.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/api/v1/quote", get(quote))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Finnhub");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/api/v1"),
            shared,
        }
    }

    /// The value for `FINNHUB_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// From now on, answer `symbol` with `reply`.
    pub fn reply(&self, symbol: &str, reply: Reply) {
        self.shared
            .replies
            .lock()
            .expect("replies")
            .insert(symbol.to_owned(), reply);
    }

    /// How many `/quote` requests named `symbol`.
    pub fn calls(&self, symbol: &str) -> usize {
        self.shared
            .calls
            .lock()
            .expect("calls")
            .get(symbol)
            .copied()
            .unwrap_or(0)
    }

    /// The `X-Finnhub-Token` of every request so far, in order.
    pub fn tokens(&self) -> Vec<Option<String>> {
        self.shared.tokens.lock().expect("tokens").clone()
    }
}

async fn quote(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let token = headers
        .get("x-finnhub-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.tokens.lock().expect("tokens").push(token.clone());
    let Some(symbol) = params.get("symbol").cloned() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": "Symbol is required."})),
        )
            .into_response();
    };
    *shared
        .calls
        .lock()
        .expect("calls")
        .entry(symbol.clone())
        .or_default() += 1;
    if token.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "Please use an API key."})),
        )
            .into_response();
    }
    let reply = shared
        .replies
        .lock()
        .expect("replies")
        .get(&symbol)
        .cloned()
        .unwrap_or(Reply::Quote);
    answer(&shared, reply, &symbol).await
}

async fn answer(shared: &Shared, reply: Reply, symbol: &str) -> Response {
    match reply {
        Reply::Json(v) => axum::Json(v).into_response(),
        Reply::Quote => {
            // A trading market: every call is a new quote, a second after the last at least.
            let mut quote = realistic_quote(symbol);
            let now = quote["t"].as_i64().unwrap_or_default();
            let mut last = shared.last_time.lock().expect("last time");
            let t = last.get(symbol).map_or(now, |l| now.max(l + 1));
            last.insert(symbol.to_owned(), t);
            quote["t"] = json!(t);
            axum::Json(quote).into_response()
        }
        Reply::Zeros => axum::Json(json!({"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0})).into_response(),
        Reply::Status(code, headers) => {
            let status = StatusCode::from_u16(code).expect("status");
            let mut response = (status, axum::Json(json!({"error": status.canonical_reason()}))).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Reply::RawJson(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Reply::Html(code) => (
            StatusCode::from_u16(code).expect("status"),
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Delayed(wait, inner) => {
            tokio::time::sleep(wait).await;
            Box::pin(answer(shared, *inner, symbol)).await
        }
    }
}

/// A quote shaped like Finnhub's documented example, with a price derived from the symbol.
pub fn realistic_quote(symbol: &str) -> serde_json::Value {
    let cents: u64 = symbol.bytes().map(u64::from).sum::<u64>() * 97 % 40_000 + 1_000;
    let dollars = |c: u64| c as f64 / 100.0;
    json!({
        "c": dollars(cents),
        "d": 1.25,
        "dp": 0.6,
        "h": dollars(cents + 200),
        "l": dollars(cents - 200),
        "o": dollars(cents - 100),
        "pc": dollars(cents - 125),
        "t": chrono::Utc::now().timestamp(),
    })
}
