//! Lambda entry point of `db-migrate`: hands each custom-resource event to
//! [`db_migrate::handle`], with the invocation's deadline.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use market_data::config::ProcessEnv;
use market_data::telemetry;
use tokio::time::Instant;

/// How long the work may take when the invocation has no deadline ahead (an emulator's:
/// `cargo lambda invoke`); on Lambda the function's timeout decides.
const NO_DEADLINE_BUDGET: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    // Redirects are not followed: the presigned URL is the only place the answer may go.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let http = &http;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline(event.context.deadline);
            // Read per invocation: a secret changed since the last deploy is read afresh.
            let process = ProcessEnv::read().await;
            let answer = db_migrate::handle(&process.env(), http, event.payload, deadline)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "CloudFormation was not answered");
                    Error::from(e)
                })?;
            Ok::<_, Error>(serde_json::json!({
                "status": if answer.success { "SUCCESS" } else { "FAILED" },
                "reason": answer.reason,
            }))
        },
    ))
    .await
}

/// The invocation's deadline (milliseconds since the epoch) on this process's clock; one
/// already past (an emulator's) gives [`NO_DEADLINE_BUDGET`] from now.
fn deadline(deadline_ms: u64) -> Instant {
    let now_ms = u64::try_from(epoch_ms()).unwrap_or(0);
    if deadline_ms <= now_ms {
        tracing::warn!(
            deadline_ms,
            "the invocation's deadline has already passed: using a default"
        );
        return Instant::now() + NO_DEADLINE_BUDGET;
    }
    Instant::now() + Duration::from_millis(deadline_ms - now_ms)
}

/// Milliseconds since the epoch.
fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
