//! Who sent a request, as far as the platform vouches for it.
//!
//! The address comes from API Gateway's request context on Lambda, or from the TCP
//! connection in the local runner; never from a header the client could write, such as
//! `X-Forwarded-For`.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::Request;
use lambda_http::request::RequestContext;

/// The client's address, or `unknown` when the platform gives none (tests, ALB).
pub fn address<B>(request: &Request<B>) -> String {
    if let Some(context) = request.extensions().get::<RequestContext>() {
        let ip = match context {
            RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
            RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        if let Some(ip) = ip {
            return ip;
        }
    }
    if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        return addr.ip().to_string();
    }
    "unknown".to_owned()
}

/// The ids the platform gave this request: API Gateway's and the Lambda invocation's.
pub fn platform_request_ids<B>(request: &Request<B>) -> (Option<String>, Option<String>) {
    let apigw = request
        .extensions()
        .get::<RequestContext>()
        .and_then(|context| match context {
            RequestContext::ApiGatewayV2(c) => c.request_id.clone(),
            RequestContext::ApiGatewayV1(c) => c.request_id.clone(),
            #[allow(unreachable_patterns)]
            _ => None,
        });
    let lambda = request
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty());
    (apigw, lambda)
}
