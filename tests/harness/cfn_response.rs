//! CloudFormation's side of a custom resource: the request events it sends, and the
//! presigned `ResponseURL` it waits on, played by a local HTTP server that keeps every answer.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its method (CloudFormation's URL accepts `PUT` only).
    pub method: Method,
    /// Its `Content-Type`, if it sent one (the presigned URL is signed without one).
    pub content_type: Option<String>,
    /// Its body, as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
}

/// A local stand-in for the presigned S3 URL a custom resource answers to.
pub struct ResponseUrl {
    /// The URL, with a query string like a presigned one's.
    pub url: String,
    received: mpsc::UnboundedReceiver<Received>,
}

impl ResponseUrl {
    /// Starts a server answering every request with `status` and keeping it.
    pub async fn start(status: StatusCode) -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new().fallback(
            |State((tx, status)): State<(mpsc::UnboundedSender<Received>, StatusCode)>,
             method: Method,
             headers: HeaderMap,
             body: Bytes| async move {
                let content_type = headers
                    .get("content-type")
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send(Received {
                    method,
                    content_type,
                    body,
                });
                status
            },
        );
        let app = app.with_state((tx, status));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the response server");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!(
                "http://{addr}/cloudformation-custom-resource-response-useast1/answer?X-Amz-Signature=s3cr3t-signature"
            ),
            received,
        }
    }

    /// The next answer, waiting at most 5 s for it.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("an answer within 5 s")
            .expect("the server is running")
    }

    /// Every answer received so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }
}

/// The stack the test events come from.
pub const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/market-data-dev/5b1e3c10-8d0e-11ef-9d3a-0a1b2c3d4e5f";

/// The custom resource's logical id in `template.yaml`.
pub const LOGICAL_ID: &str = "DatabaseMigrations";

/// A custom-resource request as CloudFormation sends it: `kind` is `Create`, `Update` or
/// `Delete`; `physical_id` is the id of the resource for Update and Delete.
pub fn event(kind: &str, response_url: &str, physical_id: Option<&str>) -> Value {
    let token = "arn:aws:lambda:us-east-1:123456789012:function:market-data-dev-db-migrate";
    let properties = json!({
        "ServiceToken": token,
        "CodeVersion": "arn:aws:lambda:us-east-1:123456789012:function:market-data-dev-db-migrate:3",
    });
    let mut event = json!({
        "RequestType": kind,
        "ServiceToken": token,
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": uuid::Uuid::new_v4().to_string(),
        "LogicalResourceId": LOGICAL_ID,
        "ResourceType": "AWS::CloudFormation::CustomResource",
        "ResourceProperties": properties,
    });
    if let Some(id) = physical_id {
        event["PhysicalResourceId"] = json!(id);
    }
    if kind == "Update" {
        event["OldResourceProperties"] = properties;
    }
    event
}
