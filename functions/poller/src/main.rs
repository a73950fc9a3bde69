//! Lambda entry point of `poller`: builds the poller's adapters once per container, then
//! answers the one-minute rule's wake-ups and the tick queue's batches.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use market_data::services::{PollerServices, StartupError};
use market_data::{Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env().await.map_err(StartupError::from)?;
    let services = PollerServices::from_config(&config)
        .await
        .map_err(StartupError::from)?;
    let services = &services;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Lambda always gives a deadline ahead; one already past is an emulator's
            // (cargo lambda watch), and the invocation runs without one.
            let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
            let deadline = (event.context.deadline > now_ms)
                .then(|| poller::deadline_instant(event.context.deadline));
            if deadline.is_none() {
                tracing::warn!(
                    deadline_ms = event.context.deadline,
                    "the invocation's deadline has already passed: running without one"
                );
            }
            poller::handle_json(&services.wake_up, &services.ticks, event.payload, deadline)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "poll failed");
                    Error::from(e)
                })
        },
    ))
    .await
}
