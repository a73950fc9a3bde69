//! Lambda entry point of `price-api`: builds the shared state once per container, then
//! hands the router to the Lambda runtime (API Gateway HTTP API, REST API or ALB events).

use market_data::{Services, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let services = Services::from_env().await?;
    lambda_http::run(price_api::router(services)).await
}
