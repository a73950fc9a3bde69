//! Lambda entry point of `ma-consumer`: builds the point store once per container (no Kafka
//! producer, no Redis: the consumer uses neither), then consumes each MSK batch.

use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use market_data::services::{StartupError, consumer_from_config};
use market_data::{Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env().await.map_err(StartupError::from)?;
    let consumer = consumer_from_config(&config)
        .await
        .map_err(StartupError::from)?;
    let consumer = &consumer;
    lambda_runtime::run(service_fn(|event: LambdaEvent<KafkaEvent>| async move {
        ma_consumer::handle(consumer, &event.payload)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, retryable = e.is_retryable(), "batch failed");
                lambda_runtime::Error::from(e)
            })
    }))
    .await
}
