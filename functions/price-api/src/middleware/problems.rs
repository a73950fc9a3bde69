//! Every error a problem: the framework's plain error responses converted, panics caught.

use std::any::Any;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use http_body_util::BodyExt;

use super::MAX_BODY_BYTES;
use crate::problem::Problem;

/// Longest error body from an inner layer that is carried over into `detail`.
const MAX_DETAIL_BYTES: usize = 1024;

/// Turns the plain error responses of the framework (routing's 405, an extractor's
/// rejection, the body limit's 413: empty or `text/plain`) into problems, keeping their
/// status and message. Responses a handler shaped itself (JSON) pass untouched.
pub async fn problem_for_errors(request: Request, next: Next) -> Response<Body> {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_plain(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_DETAIL_BYTES)])
                .trim()
                .to_owned()
        }
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() {
        default_detail(status)
    } else {
        text
    };
    let mut problem = Problem::for_status(status, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

fn is_plain(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    }
}

fn default_detail(status: StatusCode) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method".into(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes")
        }
        s => s.canonical_reason().unwrap_or("request failed").to_owned(),
    }
}

/// The answer when a handler panics: a 500 problem; the process and other requests go on.
pub fn panic_problem(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %message, "handler panicked");
    Problem::for_status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server failed while handling this request",
    )
    .into_response()
}
