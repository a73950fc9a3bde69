//! Rate limiting on the real Redis, and its in-process fallback.

use std::collections::HashMap;

use harness::TestApp;
use harness::app::{TestResponse, apigw_v2_event};
use harness::redis::free_port;

/// Sends `n` requests at once and counts the answers by status.
async fn burst(app: &TestApp, n: usize) -> (HashMap<u16, usize>, Vec<TestResponse>) {
    let calls = (0..n).map(|_| app.get("/prices/latest?symbol=AAPL&provider=simulated"));
    let responses = futures::future::join_all(calls).await;
    let mut counts = HashMap::new();
    for r in &responses {
        *counts.entry(r.status).or_insert(0) += 1;
    }
    (counts, responses)
}

fn limited(builder: harness::app::TestAppBuilder) -> harness::app::TestAppBuilder {
    builder.env("RATE_LIMIT_PER_MINUTE", "50")
}

#[tokio::test]
async fn two_hundred_concurrent_requests_against_a_limit_of_fifty_let_exactly_fifty_through() {
    let app = limited(TestApp::builder().redis()).build().await;
    let (counts, responses) = burst(&app, 200).await;
    assert_eq!(counts.get(&200), Some(&50), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&150), "{counts:?}");

    let refused = responses.iter().find(|r| r.status == 429).unwrap();
    refused.problem_detail(429);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&retry),
        "one more request a minute / 50: {retry}"
    );
    assert_eq!(refused.headers["ratelimit-remaining"], "0");
    let allowed = responses.iter().find(|r| r.status == 200).unwrap();
    assert_eq!(allowed.headers["ratelimit-limit"], "50");
}

#[tokio::test]
async fn the_limit_holds_across_containers_sharing_redis() {
    let first = limited(TestApp::builder().redis()).build().await;
    let second = limited(TestApp::builder())
        .env("REDIS_URL", &harness::redis::url())
        .env("REDIS_KEY_PREFIX", first.redis_prefix.as_deref().unwrap())
        .build()
        .await;
    let ((a, _), (b, _)) = tokio::join!(burst(&first, 100), burst(&second, 100));
    let through = a.get(&200).unwrap_or(&0) + b.get(&200).unwrap_or(&0);
    assert_eq!(through, 50, "{a:?} {b:?}");
}

#[tokio::test]
async fn headers_count_the_quota_down() {
    let app = limited(TestApp::builder().redis()).build().await;
    let first = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(first.headers["ratelimit-limit"], "50");
    assert_eq!(first.headers["ratelimit-remaining"], "49");
    let reset: u64 = first.headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&reset), "{reset}");
    let second = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(second.headers["ratelimit-remaining"], "48");
}

#[tokio::test]
async fn with_redis_unreachable_the_in_process_limiter_takes_over() {
    let app = limited(TestApp::builder().redis_at(&format!("redis://127.0.0.1:{}", free_port())))
        .build()
        .await;
    let (counts, _) = burst(&app, 200).await;
    assert_eq!(counts.get(&200), Some(&50), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&150), "{counts:?}");
    assert!(app.edge.limiter.is_local());
}

#[tokio::test]
async fn on_embedded_defaults_the_limit_holds_in_process() {
    let app = limited(TestApp::builder()).build().await;
    let (counts, _) = burst(&app, 200).await;
    assert_eq!(counts.get(&200), Some(&50), "{counts:?}");
}

#[tokio::test]
async fn health_is_never_limited() {
    let app = TestApp::builder()
        .redis()
        .env("RATE_LIMIT_PER_MINUTE", "1")
        .build()
        .await;
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 200);
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 429);
    for _ in 0..5 {
        let health = app.get("/health").await;
        assert_eq!(health.status, 200);
        assert!(health.headers.get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn clients_are_told_apart_by_api_gateways_source_ip_never_by_x_forwarded_for() {
    let app = TestApp::builder()
        .redis()
        .env("RATE_LIMIT_PER_MINUTE", "1")
        .build()
        .await;
    let q = [("symbol", "AAPL")];
    let status = |r: serde_json::Value| r["statusCode"].as_u64().unwrap();
    assert_eq!(
        status(
            app.invoke_apigw_v2(apigw_v2_event(&q, &[], "198.51.100.1"))
                .await
        ),
        200
    );
    // The same client, pretending to be someone else.
    let spoofed = apigw_v2_event(&q, &[("x-forwarded-for", "192.0.2.99")], "198.51.100.1");
    assert_eq!(status(app.invoke_apigw_v2(spoofed).await), 429);
    // Another client.
    assert_eq!(
        status(
            app.invoke_apigw_v2(apigw_v2_event(&q, &[], "198.51.100.2"))
                .await
        ),
        200
    );
}

#[tokio::test]
async fn a_zero_limit_turns_rate_limiting_off() {
    let app = TestApp::builder()
        .redis()
        .env("RATE_LIMIT_PER_MINUTE", "0")
        .build()
        .await;
    let (counts, responses) = burst(&app, 100).await;
    assert_eq!(counts.get(&200), Some(&100));
    assert!(responses[0].headers.get("ratelimit-limit").is_none());
}

#[tokio::test]
async fn a_flood_of_refused_requests_costs_no_redis_call_each() {
    let app = TestApp::builder()
        .redis()
        .env("RATE_LIMIT_PER_MINUTE", "5")
        .build()
        .await;
    let mut statuses = HashMap::new();
    for _ in 0..50 {
        let r = app
            .get("/prices/latest?symbol=AAPL&provider=simulated")
            .await;
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&5), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&45), "{statuses:?}");
    // Five allowed, one refusal learnt from Redis; the other 44 refused here until Retry-After.
    assert_eq!(app.edge.limiter.shared_calls(), 6);
}

#[tokio::test]
async fn leases_save_round_trips_and_never_let_more_through_than_redis_allows() {
    // 600 a minute, burst 300: each process leases 3 requests at a time. A generous Redis
    // timeout keeps the in-process fallback (per container by design) out of this count.
    let quota = |builder: harness::app::TestAppBuilder| {
        builder
            .env("RATE_LIMIT_PER_MINUTE", "600")
            .env("RATE_LIMIT_BURST", "300")
            .env("REDIS_TIMEOUT_MS", "5000")
    };
    let first = quota(TestApp::builder().redis()).build().await;
    let second = quota(TestApp::builder())
        .env("REDIS_URL", &harness::redis::url())
        .env("REDIS_KEY_PREFIX", first.redis_prefix.as_deref().unwrap())
        .build()
        .await;
    let started = std::time::Instant::now();
    let ((a, _), (b, _)) = tokio::join!(burst(&first, 400), burst(&second, 400));
    let elapsed = started.elapsed().as_secs_f64();
    assert!(!first.edge.limiter.is_local() && !second.edge.limiter.is_local());
    let through = a.get(&200).unwrap_or(&0) + b.get(&200).unwrap_or(&0);
    // Never more than Redis's own GCRA lets through: the burst, plus what the sustained rate
    // (10 a second) refilled while the requests ran.
    let refilled = (elapsed * 10.0).ceil() as usize + 1;
    assert!(
        through <= 300 + refilled,
        "{through} through in {elapsed:.1} s"
    );
    // At most 2 processes × 2 leased requests lapse unused.
    assert!(through >= 300 - 4, "{through} through");
    // Requests arriving while a lease is being asked for wait for it instead of asking too.
    let calls = first.edge.limiter.shared_calls() + second.edge.limiter.shared_calls();
    assert!(calls < 400, "{calls} round trips for 800 requests");
}
