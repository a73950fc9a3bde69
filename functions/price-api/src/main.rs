//! Lambda entry point of `price-api`: builds the shared state once per container, then
//! hands the router to the Lambda runtime (API Gateway HTTP API, REST API or ALB events).

use anyhow::Context;
use market_data::{Config, Services, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env().await.context("invalid configuration")?;
    let services = Services::from_config(&config)
        .await
        .context("could not set up the adapters")?;
    for p in services.ports() {
        tracing::info!(port = p.port, adapter = %p.adapter, "adapter");
    }
    lambda_http::run(price_api::router(services)).await
}
