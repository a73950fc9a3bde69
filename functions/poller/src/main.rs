//! Lambda entry point of `poller`: builds the shared state once per container, then runs
//! the polling job each scheduled event names.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use market_data::{Services, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let services = Services::from_env().await?;
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
