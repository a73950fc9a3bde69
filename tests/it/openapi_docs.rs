//! The OpenAPI document and the pages rendering it, with no internet.

use std::collections::BTreeSet;

use harness::TestApp;
use price_api::problem::Problem;
use price_api::routes::health::{Health, Readiness};
use price_api::routes::history::{HistoryResponse, PointResponse};
use price_api::routes::latest::PriceResponse;
use price_api::routes::moving_average::AverageResponse;
use price_api::routes::poll::{JobList, JobView, PollAccepted, PollRequest};
use serde_json::Value;

/// The routes the API offers, as method and path.
const API_ROUTES: &[(&str, &str)] = &[
    ("get", "/prices/latest"),
    ("get", "/prices/history"),
    ("get", "/prices/moving-average"),
    ("get", "/health"),
    ("get", "/ready"),
    ("post", "/prices/poll"),
    ("get", "/prices/poll"),
    ("get", "/prices/poll/{job_id}"),
    ("delete", "/prices/poll/{job_id}"),
    ("post", "/prices/poll/{job_id}/pause"),
    ("post", "/prices/poll/{job_id}/resume"),
];

async fn document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    r.json
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::builder().build().await;
    let served = document(&app).await;
    let generated = serde_json::to_value(price_api::openapi()).unwrap();
    assert_eq!(served, generated);
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(served["info"]["title"], "Market Data API");
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::builder().build().await;
    let doc = document(&app).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);

    for (method, path) in &documented {
        let uri = format!(
            "{}?symbol=AAPL",
            path.replace("{job_id}", "poll_0123456789abcdef0123456789abcdef")
        );
        let request = http::Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(uri)
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let r = app.send(request).await;
        let unrouted = r.json["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("no route for"));
        assert!(
            r.status != 405 && !unrouted,
            "{method} {path} is documented but not served: {}",
            r.status
        );
    }
}

#[tokio::test]
async fn every_error_is_documented_as_a_problem() {
    let app = TestApp::builder().build().await;
    let doc = document(&app).await;
    let latest = &doc["paths"]["/prices/latest"]["get"]["responses"];
    for status in ["400", "401", "404", "429", "502", "503"] {
        let content = &latest[status]["content"]["application/problem+json"];
        assert_eq!(
            content["schema"]["$ref"], "#/components/schemas/Problem",
            "{status}: {content}"
        );
        assert!(content.get("example").is_some(), "{status} has an example");
    }
}

/// Parses `example` as the type its schema names.
fn check_example(schema: &Value, example: &Value, context: &str) {
    let name = schema["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_else(|| panic!("{context}: schema without $ref: {schema}"));
    let parsed = match name {
        "Problem" => serde_json::from_value::<Problem>(example.clone()).map(|_| ()),
        "PriceResponse" => serde_json::from_value::<PriceResponse>(example.clone()).map(|_| ()),
        "HistoryResponse" => serde_json::from_value::<HistoryResponse>(example.clone()).map(|_| ()),
        "PointResponse" => serde_json::from_value::<PointResponse>(example.clone()).map(|_| ()),
        "AverageResponse" => serde_json::from_value::<AverageResponse>(example.clone()).map(|_| ()),
        "Health" => serde_json::from_value::<Health>(example.clone()).map(|_| ()),
        "Readiness" => serde_json::from_value::<Readiness>(example.clone()).map(|_| ()),
        "PollRequest" => serde_json::from_value::<PollRequest>(example.clone()).map(|_| ()),
        "PollAccepted" => serde_json::from_value::<PollAccepted>(example.clone()).map(|_| ()),
        "JobView" => serde_json::from_value::<JobView>(example.clone()).map(|_| ()),
        "JobList" => serde_json::from_value::<JobList>(example.clone()).map(|_| ()),
        other => panic!("{context}: no type known for schema {other}"),
    };
    parsed
        .unwrap_or_else(|e| panic!("{context}: example does not parse as {name}: {e}\n{example}"));
}

#[tokio::test]
async fn every_example_parses_as_the_type_it_describes() {
    let app = TestApp::builder().build().await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            let reference = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
            check_example(&reference, example, name);
            checked += 1;
        }
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(content) = response.get("content").and_then(Value::as_object) else {
                    continue;
                };
                for (media, body) in content {
                    let context = format!("{method} {path} {status} {media}");
                    if let Some(example) = body.get("example") {
                        check_example(&body["schema"], example, &context);
                        checked += 1;
                    }
                    if let Some(examples) = body.get("examples").and_then(Value::as_object) {
                        for example in examples.values() {
                            check_example(&body["schema"], &example["value"], &context);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked >= 12, "only {checked} examples found");
}

/// Every `src`/`href` of a page, which must all be local.
fn references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            refs.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    refs
}

async fn page(app: &TestApp, uri: &str) -> (String, http::HeaderMap) {
    let r = app.get(uri).await;
    assert_eq!(r.status, 200, "{uri}");
    (r.text, r.headers)
}

#[tokio::test]
async fn swagger_ui_works_offline() {
    let app = TestApp::builder().build().await;
    let redirect = app.get("/docs").await;
    assert!(
        matches!(redirect.status, 301 | 303 | 307 | 308),
        "{}",
        redirect.status
    );
    let (html, _) = page(&app, "/docs/").await;
    assert!(html.contains("swagger-ui"), "{html}");
    let refs = references(&html);
    assert!(!refs.is_empty());
    for r in &refs {
        assert!(
            !r.starts_with("http:") && !r.starts_with("https:") && !r.starts_with("//"),
            "external asset {r}"
        );
        let (_, _) = page(&app, &format!("/docs/{}", r.trim_start_matches("./"))).await;
    }
    let (init, _) = page(&app, "/docs/swagger-initializer.js").await;
    assert!(init.contains("/openapi.json"), "{init}");
}

#[tokio::test]
async fn redoc_works_offline() {
    let app = TestApp::builder().build().await;
    let (html, headers) = page(&app, "/redoc").await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.contains(r#"spec-url="openapi.json""#), "{html}");
    let refs = references(&html);
    assert_eq!(refs, ["redoc/redoc.standalone.js"]);
    let (js, headers) = page(&app, "/redoc/redoc.standalone.js").await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.len() > 500_000, "the whole ReDoc bundle is served");
}
