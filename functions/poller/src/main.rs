//! Lambda entry point of `poller`: builds the poller's adapters once per container, then
//! runs the due ticks of the job each EventBridge rule names.

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
    let ticks = &services.ticks;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            poller::handle_json(ticks, event.payload)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, retryable = e.is_retryable(), "poll failed");
                    Error::from(e)
                })
        },
    ))
    .await
}
