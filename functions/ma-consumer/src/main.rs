//! Lambda entry point of `ma-consumer`: builds the shared state once per container, then
//! consumes every MSK event the event source mapping delivers.

use anyhow::Context;
use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use market_data::{Config, Services, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env().await.context("invalid configuration")?;
    let services = Services::from_config(&config)
        .await
        .context("could not set up the adapters")?;
    for p in services.ports() {
        tracing::info!(port = p.port, adapter = %p.adapter, "adapter");
    }
    let consumer = &services.consumer;
    lambda_runtime::run(service_fn(|event: LambdaEvent<KafkaEvent>| async move {
        ma_consumer::handle(consumer, &event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
