//! Lambda entry point of `ma-consumer`: builds the shared state once per container, then
//! consumes every MSK event the event source mapping delivers.

use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use market_data::{Services, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let services = Services::from_env().await?;
    let consumer = &services.consumer;
    lambda_runtime::run(service_fn(|event: LambdaEvent<KafkaEvent>| async move {
        ma_consumer::handle(consumer, &event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
