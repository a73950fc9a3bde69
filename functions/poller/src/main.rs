//! Lambda entry point of `poller`: builds the shared state once per container, then runs
//! the polling job each scheduled event names.

use anyhow::Context;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use market_data::{Config, Services, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env().await.context("invalid configuration")?;
    let services = Services::from_config(&config)
        .await
        .context("could not set up the adapters")?;
    for p in services.ports() {
        tracing::info!(port = p.port, adapter = %p.adapter, "adapter");
    }
    let services = &services;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            poller::handle_json(services, event.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
