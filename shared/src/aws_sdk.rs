//! The one configuration every AWS SDK client of this service starts from.
//!
//! The SDK's own settings (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`, ...) plus bounded
//! waits: a cold start or a request must not hang on an endpoint that does not answer.
//! Loading it reads the environment and sets up the credentials chain, so a process loads it
//! once and builds each service's client from it.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK configuration from the environment, with the service's timeouts.
pub async fn load() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}
