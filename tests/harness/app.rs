//! The application under test: the real router over real adapters, configured the way
//! the functions are (through `Config::load`), each test on its own slice of the stack.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use market_data::{Config, Services};
use tower::ServiceExt;

use crate::fake_finnhub::FakeFinnhub;
use crate::postgres::TestDb;
use crate::{kafka, redis};

/// The API key the fake Finnhub is called with.
pub const TEST_FINNHUB_KEY: &str = "test-finnhub-key-0123456789";

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    /// Its status code.
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as JSON (`Null` when empty or not JSON).
    pub json: serde_json::Value,
    /// Its body as text.
    pub text: String,
}

impl TestResponse {
    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts this is an RFC 9457 problem of `status`, as the API promises every error is:
    /// `application/problem+json`, the same `status` in the body, a `type` and a `title`, no
    /// `price`, and a `detail`, which it returns.
    #[track_caller]
    pub fn problem_detail(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}",
            self.text
        );
        let body = &self.json;
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        assert!(
            body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        assert!(
            body.get("price").is_none(),
            "an error never carries a price: {body}"
        );
        body["detail"]
            .as_str()
            .expect("detail is always present")
            .to_owned()
    }

    /// Asserts this is a problem of `status` (see [`Self::problem_detail`]) whose `detail`
    /// contains `detail_has`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, detail_has: &str) {
        let detail = self.problem_detail(status);
        assert!(
            detail.contains(detail_has),
            "{detail:?} lacks {detail_has:?}"
        );
    }
}

/// The app, its fake provider and the slices of the stack it was given.
pub struct TestApp {
    /// The configuration it was built from.
    pub config: Config,
    /// The shared state the router serves.
    pub services: Services,
    /// The router, as Lambda and the local runner serve it.
    pub router: Router,
    /// The HTTP edge the router serves behind.
    pub edge: std::sync::Arc<price_api::edge::Edge>,
    /// The provider stand-in.
    pub finnhub: FakeFinnhub,
    /// This test's database, when asked for.
    pub db: Option<TestDb>,
    /// This test's topic, when asked for.
    pub topic: Option<String>,
    /// This test's Redis key prefix, when asked for.
    pub redis_prefix: Option<String>,
}

/// Chooses which real services the app uses; the rest stay on embedded defaults.
#[derive(Default)]
pub struct TestAppBuilder {
    vars: HashMap<String, String>,
    postgres: bool,
    redis: Option<String>,
    kafka: bool,
    finnhub_key: bool,
    metrics: Option<market_data::telemetry::Metrics>,
}

impl TestAppBuilder {
    /// A fresh, migrated database (migrated at start-up, as `DATABASE_MIGRATE_ON_START` does).
    pub fn postgres(mut self) -> Self {
        self.postgres = true;
        self
    }

    /// The stack's Redis under a key prefix of this test's own.
    pub fn redis(self) -> Self {
        self.redis_at(&redis::url())
    }

    /// A Redis at `url` (a private one, or one that is not there).
    pub fn redis_at(mut self, url: &str) -> Self {
        self.redis = Some(url.to_owned());
        self
    }

    /// A topic of this test's own on the stack's broker.
    pub fn kafka(mut self) -> Self {
        self.kafka = true;
        self
    }

    /// Finnhub configured with [`TEST_FINNHUB_KEY`], pointing at the fake.
    pub fn finnhub(mut self) -> Self {
        self.finnhub_key = true;
        self
    }

    /// The provider `fake` plays, configured with a key and pointing at it.
    pub fn provider(mut self, fake: &crate::FakeProvider) -> Self {
        for (name, value) in fake.env() {
            self.vars.insert(name, value);
        }
        self
    }

    /// Measurements go to `metrics` instead of where `METRICS` says.
    pub fn metrics(mut self, metrics: market_data::telemetry::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Any other variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Starts the fake provider, prepares the slices asked for and builds the app.
    pub async fn build(mut self) -> TestApp {
        let finnhub = FakeFinnhub::start().await;
        self.vars
            .insert("FINNHUB_BASE_URL".into(), finnhub.base_url().to_owned());
        if self.finnhub_key {
            self.vars
                .insert("FINNHUB_API_KEY".into(), TEST_FINNHUB_KEY.into());
        }
        let db = if self.postgres {
            let db = TestDb::create().await;
            self.vars.insert("DATABASE_URL".into(), db.url.clone());
            self.vars
                .insert("DATABASE_MIGRATE_ON_START".into(), "true".into());
            Some(db)
        } else {
            None
        };
        let shared_prefix = self.vars.get("REDIS_KEY_PREFIX").cloned();
        let redis_prefix = self.redis.map(|url| {
            // A prefix given with `env` is kept: two apps sharing it play two containers.
            let prefix = shared_prefix.unwrap_or_else(redis::unique_prefix);
            self.vars.insert("REDIS_URL".into(), url);
            self.vars.insert("REDIS_KEY_PREFIX".into(), prefix.clone());
            prefix
        });
        let topic = if self.kafka {
            let topic = kafka::create_topic(3).await;
            self.vars
                .insert("KAFKA_BOOTSTRAP_SERVERS".into(), kafka::bootstrap());
            self.vars.insert("KAFKA_TOPIC".into(), topic.clone());
            Some(topic)
        } else {
            None
        };
        let vars = self.vars;
        let lookup = |k: &str| vars.get(k).cloned();
        let env = market_data::config::Env::new(&lookup, None);
        let config = Config::read(&env).await.expect("valid test configuration");
        let edge = price_api::edge::EdgeConfig::from_env(&env)
            .await
            .expect("valid edge configuration");
        let services = match self.metrics {
            Some(metrics) => Services::with_metrics(&config, metrics).await,
            None => Services::from_config(&config).await,
        }
        .expect("services build");
        let state = price_api::AppState::new(services.api.clone(), edge);
        TestApp {
            config,
            router: price_api::router(state.clone()),
            edge: state.edge,
            services,
            finnhub,
            db,
            topic,
            redis_prefix,
        }
    }
}

impl TestApp {
    /// Chooses the app's services.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// The whole real stack: PostgreSQL, Redis, Kafka and Finnhub (the fake).
    pub async fn real_stack() -> Self {
        Self::builder()
            .postgres()
            .redis()
            .kafka()
            .finnhub()
            .build()
            .await
    }

    /// Sends `request` through the router.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET uri`.
    pub async fn get(&self, uri: &str) -> TestResponse {
        self.get_with(uri, &[]).await
    }

    /// `GET uri` with these headers.
    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    /// `POST uri` with `body` as it is (JSON or not), labelled `application/json`.
    pub async fn post_raw(&self, uri: &str, body: impl Into<Body>) -> TestResponse {
        self.send(
            Request::post(uri)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .expect("request"),
        )
        .await
    }

    /// `POST uri` with `body` as JSON.
    pub async fn post_json(&self, uri: &str, body: &serde_json::Value) -> TestResponse {
        self.post_raw(uri, body.to_string()).await
    }

    /// `DELETE uri`.
    pub async fn delete(&self, uri: &str) -> TestResponse {
        self.send(Request::delete(uri).body(Body::empty()).expect("request"))
            .await
    }

    /// Sends an API Gateway HTTP API (payload v2) event through `lambda_http`, exactly as
    /// the Lambda runtime would, and returns the response event as JSON.
    pub async fn invoke_apigw_v2(&self, event: serde_json::Value) -> serde_json::Value {
        let request: LambdaRequest =
            serde_json::from_value(event).expect("an API Gateway v2 event");
        let context = lambda_http::Context::default();
        let adapter = lambda_http::Adapter::from(self.router.clone());
        let response = adapter
            .oneshot(lambda_http::LambdaEvent::new(request, context))
            .await
            .expect("the adapter never fails");
        serde_json::to_value(response).expect("response event")
    }
}

/// The sample API Gateway v2 event of `local/events/`, asking for `query`.
pub fn apigw_v2_latest(query: &[(&str, &str)]) -> serde_json::Value {
    apigw_v2_event(query, &[], "203.0.113.10")
}

/// The sample event asking `/prices/latest` for `query`, with extra `headers`, as API
/// Gateway would deliver it from a client at `source_ip`.
pub fn apigw_v2_event(
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    source_ip: &str,
) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../local/events/apigw-v2-latest-price.json"
    ))
    .expect("sample event");
    event["requestContext"]["http"]["sourceIp"] = source_ip.into();
    event["requestContext"]["requestId"] = uuid::Uuid::new_v4().to_string().into();
    for (name, value) in headers {
        event["headers"][*name] = (*value).into();
    }
    // API Gateway sends the query string percent-encoded, and the parsed parameters decoded.
    let raw: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    event["rawQueryString"] = raw.join("&").into();
    event["queryStringParameters"] = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    event
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
