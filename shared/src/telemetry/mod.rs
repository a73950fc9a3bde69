//! Logs and metrics, set up in one place for every binary.
//!
//! On Lambda (or with `LOG_FORMAT=json`) logs are JSON lines, one per event, which
//! CloudWatch Logs Insights can query; elsewhere they are compact text. `RUST_LOG` sets
//! the level (default `info`). Metrics are in [`metrics`].

mod config;
pub mod metrics;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

pub use config::{MetricsConfig, MetricsMode};
pub use metrics::{EmfMetrics, LogMetrics, Measurement, Metrics, MetricsSink, NoMetrics, Unit};

/// Whether this process runs inside AWS Lambda.
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Installs the global subscriber from the environment. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json =
        std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) || on_lambda();
    if json {
        init_json(filter, std::io::stdout);
    } else {
        // `try_init` fails only if a subscriber is already set; that one then stays.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .compact()
            .try_init();
    }
}

/// Installs a JSON subscriber writing to `writer`: what Lambda gets, and what tests capture.
pub fn init_json<W>(filter: EnvFilter, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}
