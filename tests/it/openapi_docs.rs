//! The OpenAPI document and the pages rendering it, with no internet.

use std::collections::BTreeSet;

use harness::app::TestResponse;
use harness::{Reply, TestApp};
use price_api::openapi::examples;
use price_api::problem::Problem;
use price_api::routes::health::{ChainProvider, Health, Readiness};
use price_api::routes::history::{HistoryResponse, PointResponse};
use price_api::routes::latest::PriceResponse;
use price_api::routes::moving_average::AverageResponse;
use price_api::routes::poll::{JobList, JobView, PollAccepted, PollRequest};
use serde_json::{Value, json};

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
        "ChainProvider" => serde_json::from_value::<ChainProvider>(example.clone()).map(|_| ()),
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

/// Every problem example of the document: method, path, response status and the example.
fn problem_examples(doc: &Value) -> Vec<(String, String, u16, Value)> {
    let mut found = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let content = &response["content"]["application/problem+json"];
                if let Some(example) = content.get("example") {
                    let status = status.parse().unwrap();
                    found.push((method.clone(), path.clone(), status, example.clone()));
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn every_problem_example_is_a_problem_of_its_response_status() {
    let doc = serde_json::to_value(price_api::openapi()).unwrap();
    let examples = problem_examples(&doc);
    assert!(examples.len() >= 30, "only {} found", examples.len());
    for (method, path, status, example) in examples {
        let problem: Problem = serde_json::from_value(example.clone())
            .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}\n{example}"));
        assert_eq!(problem.status, status, "{method} {path}: {example}");
        assert!(problem.kind.starts_with("/problems/"), "{example}");
    }
}

/// The apps the documented problems are provoked on, each short of one thing.
struct Apps {
    /// Embedded defaults, with the averages of the examples.
    plain: TestApp,
    /// Finnhub configured (the fake), refusing the key for the example's symbol and not
    /// knowing the unknown one.
    finnhub: TestApp,
    /// API keys required.
    keyed: TestApp,
    /// A limit of one request a minute, used up.
    limited: TestApp,
    /// A database that is not there.
    store_away: TestApp,
    /// A job store that is not there.
    jobs_away: TestApp,
}

impl Apps {
    async fn build() -> Self {
        let plain = TestApp::builder()
            .env("MA_WINDOWS", examples::MA_WINDOWS)
            .build()
            .await;
        let finnhub = TestApp::builder().finnhub().build().await;
        finnhub
            .finnhub
            .reply(examples::SYMBOL, Reply::Status(401, vec![]));
        finnhub
            .finnhub
            .reply(examples::UNKNOWN_SYMBOL, Reply::Zeros);
        let keyed = TestApp::builder()
            .env("API_KEYS", r#"{"ops":"ops-key-0123456789abcdef"}"#)
            .build()
            .await;
        let limited = TestApp::builder()
            .env("RATE_LIMIT_PER_MINUTE", "1")
            .build()
            .await;
        assert_eq!(limited.get("/prices/latest?symbol=AAPL").await.status, 200);
        let store_away = TestApp::builder()
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
            .build()
            .await;
        let jobs_away = TestApp::builder()
            .env("JOBS_TABLE", "mdb_t_away")
            .env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
            .build()
            .await;
        Self {
            plain,
            finnhub,
            keyed,
            limited,
            store_away,
            jobs_away,
        }
    }

    /// Makes the API answer the problem documented for `status` of `method path`.
    async fn provoke(&self, method: &str, path: &str, status: u16) -> TestResponse {
        let path = path.replace("{job_id}", examples::JOB_ID);
        let job_route = path.starts_with("/prices/poll/");
        let any = || {
            let uri = format!("{path}?symbol={}", examples::SYMBOL);
            http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(uri)
                .body(axum::body::Body::from("{}"))
                .unwrap()
        };
        let latest = |query: &str| format!("/prices/latest?{query}");
        match (method, path.as_str(), status) {
            (_, _, 401) => self.keyed.send(any()).await,
            (_, _, 429) => self.limited.send(any()).await,
            ("get", "/prices/latest", 400) => {
                let provider = examples::UNKNOWN_PROVIDER;
                self.plain
                    .get(&latest(&format!("symbol=AAPL&provider={provider}")))
                    .await
            }
            ("get", "/prices/latest", 404) => {
                let symbol = examples::UNKNOWN_SYMBOL;
                self.finnhub.get(&latest(&format!("symbol={symbol}"))).await
            }
            ("get", "/prices/latest", 502) => {
                let symbol = examples::SYMBOL;
                self.finnhub.get(&latest(&format!("symbol={symbol}"))).await
            }
            ("get", "/prices/latest", 503) => {
                self.plain
                    .get(&latest("symbol=AAPL&provider=finnhub"))
                    .await
            }
            ("get", "/prices/history", 400) => {
                self.plain
                    .get("/prices/history?symbol=AAPL&from=yesterday")
                    .await
            }
            ("get", "/prices/moving-average", 400) => {
                self.plain
                    .get("/prices/moving-average?symbol=AAPL&window=7")
                    .await
            }
            ("get", "/prices/moving-average", 404) => {
                self.plain
                    .get("/prices/moving-average?symbol=AAPL&window=5")
                    .await
            }
            ("get", "/prices/history" | "/prices/moving-average", 503) => {
                self.store_away.send(any()).await
            }
            ("post", "/prices/poll", 400) => {
                let body = json!({"symbols": [examples::SYMBOL], "interval": 60,
                                  "provider": examples::UNKNOWN_PROVIDER});
                self.plain.post_json("/prices/poll", &body).await
            }
            ("post", "/prices/poll", 413) => {
                let big = vec![b' '; price_api::middleware::MAX_BODY_BYTES + 1];
                let request = http::Request::post("/prices/poll")
                    .header("content-type", "application/json")
                    .header("content-length", big.len())
                    .body(axum::body::Body::from(big))
                    .unwrap();
                self.plain.send(request).await
            }
            ("post", "/prices/poll", 422) => {
                let body = json!({"symbols": [examples::SYMBOL],
                                  "interval": examples::TOO_SHORT_INTERVAL});
                self.plain.post_json("/prices/poll", &body).await
            }
            ("post", "/prices/poll", 503) => {
                let body = json!({"symbols": [examples::SYMBOL], "interval": 60});
                self.jobs_away.post_json("/prices/poll", &body).await
            }
            ("get", "/prices/poll", 400) => self.plain.get("/prices/poll?limit=0").await,
            ("get", "/prices/poll", 503) => self.jobs_away.get("/prices/poll").await,
            (_, _, 404) if job_route => self.plain.send(any()).await,
            (_, _, 503) if job_route => self.jobs_away.send(any()).await,
            _ => panic!("no way to provoke {method} {path} {status} here: add one"),
        }
    }
}

/// A problem as far as it is the same every time: the seconds of a rate limit vary.
fn comparable(problem: &Value) -> Value {
    let mut problem = problem.clone();
    if problem["status"] == 429 {
        let detail = problem["detail"].as_str().unwrap_or_default();
        let mut masked = String::new();
        for c in detail.chars() {
            match c {
                '0'..='9' if masked.ends_with('#') => {}
                '0'..='9' => masked.push('#'),
                c => masked.push(c),
            }
        }
        problem["detail"] = masked.into();
    }
    problem
}

#[tokio::test]
async fn every_problem_example_is_what_the_api_answers() {
    let apps = Apps::build().await;
    let doc = document(&apps.plain).await;
    for (method, path, status, example) in problem_examples(&doc) {
        let answer = apps.provoke(&method, &path, status).await;
        answer.problem_detail(status);
        assert_eq!(
            comparable(&answer.json),
            comparable(&example),
            "{method} {path} {status}: the documented example is not what the API answers"
        );
    }
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
