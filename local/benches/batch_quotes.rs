//! A 50-symbol batch (`QuoteService::latest_many`, what `GET /prices/latest?symbols=` runs)
//! against 50 single requests (`QuoteService::latest`), one after another and all at once:
//! wall time and provider calls.
//!
//! ```sh
//! cargo bench -p market-data-local --bench batch_quotes
//! ```
//!
//! A stand-in for Twelve Data's `GET /quote?symbol=A,B,…` runs in this process and answers
//! after sleeping 50 ms per call (one symbol or a batch), counting the calls. The service
//! uses its embedded adapters (in-memory store, in-process bus, in-process cache and
//! quotas): what is measured is the provider round trips, not the stores. The quota is lifted
//! (`TWELVEDATA_CALLS_PER_*=0`): the free tier's 8 credits a minute would stop either shape
//! after 8 symbols. Each run asks for 50 symbols no run asked before, so nothing is cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use market_data::Services;
use market_data::config::Config;
use market_data::domain::Symbol;
use serde_json::{Value, json};

const PROVIDER_LATENCY: Duration = Duration::from_millis(50);
const SYMBOLS: usize = 50;
const REPEATS: usize = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls = Arc::new(AtomicUsize::new(0));
    let base_url = start_provider(Arc::clone(&calls)).await?;
    let vars: HashMap<&str, String> = [
        ("TWELVEDATA_API_KEY", "bench".to_owned()),
        ("TWELVEDATA_BASE_URL", base_url),
        ("TWELVEDATA_CALLS_PER_MINUTE", "0".into()),
        ("TWELVEDATA_CALLS_PER_DAY", "0".into()),
    ]
    .into_iter()
    .collect();
    let config = Config::load(|k| vars.get(k).cloned(), None).await?;
    let services = Services::from_config(&config).await?;
    let quotes = &services.api.quotes;

    println!("shape | runs (ms) | median (ms) | provider calls per run");
    println!("---|---|---:|---:");
    let mut round = 0;
    let mut next_symbols = || {
        round += 1;
        (0..SYMBOLS)
            .map(|i| Symbol::parse(&format!("R{round}S{i}")))
            .collect::<Result<Vec<_>, _>>()
    };
    for shape in [
        "batch of 50",
        "50 singles, one after another",
        "50 singles at once",
    ] {
        let mut times = Vec::with_capacity(REPEATS);
        let mut per_run = 0;
        for _ in 0..REPEATS {
            let symbols = next_symbols()?;
            let before = calls.load(Ordering::Relaxed);
            let started = Instant::now();
            let ok = match shape {
                "batch of 50" => quotes
                    .latest_many(&symbols, None)
                    .await
                    .iter()
                    .filter(|r| r.is_ok())
                    .count(),
                "50 singles, one after another" => {
                    let mut ok = 0;
                    for s in &symbols {
                        ok += usize::from(quotes.latest(s, None).await.is_ok());
                    }
                    ok
                }
                _ => futures::future::join_all(symbols.iter().map(|s| quotes.latest(s, None)))
                    .await
                    .iter()
                    .filter(|r| r.is_ok())
                    .count(),
            };
            times.push(started.elapsed());
            per_run = calls.load(Ordering::Relaxed) - before;
            anyhow::ensure!(ok == SYMBOLS, "{shape}: {ok} of {SYMBOLS} quoted");
        }
        let runs: Vec<String> = times
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1000.0))
            .collect();
        times.sort_unstable();
        println!(
            "{shape} | {} | {:.0} | {per_run}",
            runs.join(", "),
            times[REPEATS / 2].as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// Twelve Data's `/quote`: one object for one symbol, an object keyed by symbol for several.
async fn start_provider(calls: Arc<AtomicUsize>) -> anyhow::Result<String> {
    async fn quote(
        State(calls): State<Arc<AtomicUsize>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<Value> {
        calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PROVIDER_LATENCY).await;
        let list = q.get("symbol").cloned().unwrap_or_default();
        let symbols: Vec<&str> = list.split(',').collect();
        let now = chrono::Utc::now().timestamp();
        let one = |s: &str| {
            json!({"symbol": s, "close": "101.25000", "open": "100.00000", "high": "102.00000",
                   "low": "99.50000", "previous_close": "100.50000", "change": "0.75000",
                   "percent_change": "0.74627", "timestamp": now - 60, "last_quote_at": now})
        };
        axum::Json(if symbols.len() == 1 {
            one(symbols[0])
        } else {
            Value::Object(symbols.iter().map(|s| ((*s).to_owned(), one(s))).collect())
        })
    }
    let app = Router::new().route("/quote", get(quote)).with_state(calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}
