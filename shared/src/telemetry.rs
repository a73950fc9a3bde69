//! Logging, set up in one place for every binary.
//!
//! On Lambda (or with `LOG_FORMAT=json`) logs are JSON lines, one per event, which
//! CloudWatch Logs Insights can query; elsewhere they are compact text. `RUST_LOG` sets
//! the level (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` fails only if a subscriber is already set (tests); that one then stays.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
