//! Lambda entry point of `price-api`: builds the API's adapters and edge once per container,
//! then hands the router to the Lambda runtime (API Gateway HTTP API, REST API or ALB events).

use market_data::config::ProcessEnv;
use market_data::services::{ApiServices, StartupError};
use market_data::{Config, telemetry};
use price_api::AppState;
use price_api::edge::EdgeConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let process = ProcessEnv::read().await;
    let env = process.env();
    let config = Config::read(&env).await.map_err(StartupError::from)?;
    let edge = EdgeConfig::from_env(&env)
        .await
        .map_err(StartupError::from)?;
    let api = ApiServices::from_config(&config)
        .await
        .map_err(StartupError::from)?;
    lambda_http::run(price_api::router(AppState::new(api, edge))).await
}
