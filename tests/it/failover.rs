//! The failover chain end to end through the API, with several fake providers: who answers
//! when the first is out of quota, failing, refusing the key or not knowing the symbol,
//! what the answer says about it, and quotas shared by two apps through Redis.

use harness::app::TestAppBuilder;
use harness::{FakeProvider, Kind, ProviderReply, Reply, TestApp};
use serde_json::{Value, json};

/// The route of an answer as `(provider, outcome, reason)`.
fn route(body: &Value, field: &str) -> Vec<(String, String, String)> {
    body[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .iter()
        .map(|s| {
            (
                s["provider"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn step(p: &str, o: &str, r: &str) -> (String, String, String) {
    (p.into(), o.into(), r.into())
}

fn with(fakes: &[&FakeProvider], chain: &str) -> TestAppBuilder {
    let mut builder = TestApp::builder().env("PROVIDERS", chain);
    for fake in fakes {
        builder = builder.provider(fake);
    }
    builder
}

#[tokio::test]
async fn the_first_provider_out_of_quota_is_not_called_and_the_next_answers_saying_so() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let app = with(&[&twelve], "finnhub,twelvedata")
        .finnhub()
        .env("FINNHUB_CALLS_PER_MINUTE", "1")
        .build()
        .await;
    let first = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["provider"], "finnhub");
    assert_eq!(
        route(&first.json, "route"),
        vec![step("finnhub", "served", "served")]
    );

    let second = app.get("/prices/latest?symbol=MSFT").await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json["provider"], "twelvedata");
    assert_eq!(
        route(&second.json, "route"),
        vec![
            step("finnhub", "skipped", "rate_limited"),
            step("twelvedata", "served", "served")
        ]
    );
    assert_eq!(
        app.finnhub.calls("MSFT"),
        0,
        "a call known to be refused is never sent"
    );
}

#[tokio::test]
async fn a_failing_provider_passes_the_request_to_the_next() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    twelve.reply_all(ProviderReply::Raw(
        503,
        "text/html",
        "<html>down</html>".into(),
    ));
    let app = with(&[&twelve, &fmp], "twelvedata,fmp").build().await;
    let r = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["provider"], "fmp");
    assert_eq!(
        route(&r.json, "route"),
        vec![
            step("twelvedata", "failed", "unavailable"),
            step("fmp", "served", "served")
        ]
    );
}

#[tokio::test]
async fn a_provider_refusing_the_key_is_skipped_afterwards() {
    let tiingo = FakeProvider::start(Kind::Tiingo).await;
    let alpha = FakeProvider::start(Kind::AlphaVantage).await;
    tiingo.reply_all(ProviderReply::Fixture(401, "bad_key.json"));
    let app = with(&[&tiingo, &alpha], "tiingo,alpha_vantage")
        .build()
        .await;
    let r = app.get("/prices/latest?symbol=AAPL").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["provider"], "alphavantage");
    assert_eq!(
        route(&r.json, "route"),
        vec![
            step("tiingo", "failed", "credentials_refused"),
            step("alphavantage", "served", "served")
        ]
    );
    let r = app.get("/prices/latest?symbol=MSFT").await;
    assert_eq!(r.json["provider"], "alphavantage");
    assert_eq!(
        route(&r.json, "route")[0],
        step("tiingo", "skipped", "credentials_refused")
    );
    assert_eq!(
        tiingo.requests(),
        1,
        "the refused key is not tried again at once"
    );
}

#[tokio::test]
async fn an_unknown_symbol_at_one_provider_is_asked_of_the_next() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let massive = FakeProvider::start(Kind::Massive).await;
    twelve.reply("BRK.A", ProviderReply::Unknown);
    let app = with(&[&twelve, &massive], "twelvedata,polygon")
        .build()
        .await;
    let r = app.get("/prices/latest?symbol=BRK.A").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["provider"], "massive");
    assert_eq!(
        route(&r.json, "route"),
        vec![
            step("twelvedata", "failed", "not_found"),
            step("massive", "served", "served")
        ]
    );
}

#[tokio::test]
async fn unknown_is_404_only_when_every_provider_asked_says_so() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    twelve.reply("ZZZZZ", ProviderReply::Unknown);
    fmp.reply("ZZZZZ", ProviderReply::Unknown);
    let app = with(&[&twelve, &fmp], "twelvedata,fmp").build().await;
    let r = app.get("/prices/latest?symbol=ZZZZZ").await;
    r.assert_problem(
        404,
        "no provider has a quote for symbol ZZZZZ (asked: twelvedata, fmp)",
    );
    assert_eq!(r.json["type"], "/problems/unknown-symbol");

    // One provider failing for another reason is not "unknown": the answer is 503.
    fmp.reply(
        "ZZZZZ",
        ProviderReply::Raw(500, "text/plain", "oops".into()),
    );
    let r = app.get("/prices/latest?symbol=ZZZZZ").await;
    assert_eq!(r.status, 503, "{}", r.text);
}

#[tokio::test]
async fn every_provider_failing_is_a_503_listing_each_reason() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    twelve.reply_all(ProviderReply::Fixture(200, "plan.json"));
    fmp.reply_all(ProviderReply::Fixture(429, "limit_reach.json"));
    let app = with(&[&twelve, &fmp], "finnhub,twelvedata,fmp")
        .finnhub()
        .build()
        .await;
    app.finnhub.reply("AAPL", Reply::Status(500, vec![]));
    let r = app.get("/prices/latest?symbol=AAPL").await;
    let detail = r.problem_detail(503);
    assert_eq!(r.json["type"], "/problems/no-provider");
    for part in [
        "finnhub: the provider is unavailable",
        "twelvedata: the provider's plan",
        "fmp: the provider's rate limit",
    ] {
        assert!(detail.contains(part), "{part} in {detail}");
    }
    assert_eq!(
        route(&r.json, "attempts"),
        vec![
            step("finnhub", "failed", "unavailable"),
            step("twelvedata", "failed", "plan_restricted"),
            step("fmp", "failed", "rate_limited")
        ]
    );
    assert!(
        r.headers.contains_key("retry-after"),
        "FMP said when to come back"
    );
}

#[tokio::test]
async fn a_pinned_provider_is_the_only_one_asked() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    fmp.reply("AAPL", ProviderReply::Unknown);
    let app = with(&[&twelve, &fmp], "twelvedata,fmp").build().await;
    let r = app.get("/prices/latest?symbol=AAPL&provider=FMP").await;
    r.assert_problem(404, "fmp has no quote for symbol AAPL");
    assert_eq!(twelve.requests(), 0);
    let r = app
        .get("/prices/latest?symbol=MSFT&provider=financial_modeling_prep")
        .await;
    assert_eq!(r.json["provider"], "fmp");
}

#[tokio::test]
async fn the_circuit_opens_after_consecutive_failures() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    twelve.reply_all(ProviderReply::Raw(
        502,
        "text/html",
        "<html>bad gateway</html>".into(),
    ));
    let app = with(&[&twelve, &fmp], "twelvedata,fmp").build().await;
    for s in ["A", "B", "C"] {
        let r = app.get(&format!("/prices/latest?symbol={s}")).await;
        assert_eq!(r.json["provider"], "fmp");
    }
    let r = app.get("/prices/latest?symbol=D").await;
    assert_eq!(
        route(&r.json, "route")[0],
        step("twelvedata", "skipped", "unavailable")
    );
    assert_eq!(twelve.requests(), 3, "an open circuit sends nothing");
}

#[tokio::test]
async fn two_apps_sharing_redis_never_exceed_a_providers_quota_together() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let prefix = harness::unique_name("quota");
    let build = || {
        with(&[&twelve], "twelvedata")
            .redis()
            .env("REDIS_KEY_PREFIX", &prefix)
            .env("TWELVEDATA_CALLS_PER_MINUTE", "0")
            .env("TWELVEDATA_CALLS_PER_DAY", "5")
            .build()
    };
    let (a, b) = (build().await, build().await);
    let mut served = 0;
    let mut refused = 0;
    for i in 0..8 {
        let (ua, ub) = (
            format!("/prices/latest?symbol=A{i}"),
            format!("/prices/latest?symbol=B{i}"),
        );
        let (ra, rb) = tokio::join!(a.get(&ua), b.get(&ub));
        for r in [ra, rb] {
            match r.status {
                200 => served += 1,
                503 => {
                    assert_eq!(
                        r.json["type"], "/problems/provider-rate-limited",
                        "{}",
                        r.text
                    );
                    refused += 1;
                }
                other => panic!("unexpected {other}: {}", r.text),
            }
        }
    }
    assert_eq!(twelve.requests(), 5, "the day's quota, across both apps");
    assert_eq!((served, refused), (5, 11));
}

#[tokio::test]
async fn a_batch_is_answered_from_the_cache_and_one_batch_call() {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    twelve.reply("ZZZZZ", ProviderReply::Unknown);
    fmp.reply("ZZZZZ", ProviderReply::Unknown);
    let app = with(&[&twelve, &fmp], "twelvedata,fmp").build().await;
    assert_eq!(app.get("/prices/latest?symbol=AAPL").await.status, 200);
    let r = app.get("/prices/latest?symbols=aapl,MSFT,IBM,ZZZZZ").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let quotes: Vec<&str> = r.json["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(quotes, ["AAPL", "MSFT", "IBM"]);
    assert_eq!(r.json["quotes"][0]["cached"], true);
    assert_eq!(r.json["quotes"][1]["provider"], "twelvedata");
    assert_eq!(
        r.json["errors"],
        json!([{
            "symbol": "ZZZZZ", "type": "/problems/unknown-symbol", "title": "Unknown symbol",
            "status": 404,
            "detail": "no provider has a quote for symbol ZZZZZ (asked: twelvedata, fmp)",
            "attempts": [
                {"provider": "twelvedata", "outcome": "failed", "reason": "not_found",
                 "detail": "the provider has no quote for this symbol"},
                {"provider": "fmp", "outcome": "failed", "reason": "not_found",
                 "detail": "the provider has no quote for this symbol"}
            ]
        }])
    );
    // One call for AAPL alone, one batch call for the three misses.
    assert_eq!(twelve.requests(), 2);
    assert_eq!((twelve.calls("MSFT"), twelve.calls("AAPL")), (1, 1));
}

#[tokio::test]
async fn a_batch_needs_one_to_fifty_valid_symbols_and_not_both_forms() {
    let app = TestApp::builder().build().await;
    let many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
    app.get(&format!("/prices/latest?symbols={}", many.join(",")))
        .await
        .assert_problem(400, "1 to 50 symbols, got 51");
    app.get("/prices/latest?symbols=,,")
        .await
        .assert_problem(400, "got 0");
    app.get("/prices/latest?symbols=AAPL,a%20b")
        .await
        .assert_problem(400, "invalid symbol");
    app.get("/prices/latest?symbol=AAPL&symbols=MSFT")
        .await
        .assert_problem(400, "not both");
    let r = app.get("/prices/latest?symbols=AAPL,MSFT").await;
    assert_eq!(r.json["quotes"][1]["provider"], "simulated");
}

#[tokio::test]
async fn ready_shows_the_chain_live_and_failovers_are_counted_with_the_answering_provider_on_record()
 {
    let twelve = FakeProvider::start(Kind::TwelveData).await;
    let fmp = FakeProvider::start(Kind::Fmp).await;
    twelve.reply_all(ProviderReply::Raw(
        503,
        "text/html",
        "<html>down</html>".into(),
    ));
    let lines = harness::EmfLines::default();
    let app = with(&[&twelve, &fmp], "twelvedata,fmp")
        .postgres()
        .redis()
        .kafka()
        .metrics(lines.metrics())
        .build()
        .await;
    let before = app.get("/ready").await;
    let chain = before.json["providers"].as_array().expect("the chain");
    let names: Vec<&str> = chain
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["twelvedata", "fmp"], "{}", before.text);
    assert_eq!(
        chain[0]["quota_left"]["a day"], 800,
        "Twelve Data's free tier"
    );
    assert_eq!(chain[0]["counted_in"], "redis");
    assert_eq!(chain[0]["circuit"], "closed");
    assert_eq!(chain[0]["configured"], true);

    for s in ["AAPL", "MSFT", "NVDA"] {
        let r = app.get(&format!("/prices/latest?symbol={s}")).await;
        assert_eq!(r.json["provider"], "fmp", "{}", r.text);
    }

    let after = app.get("/ready").await;
    let chain = after.json["providers"].as_array().expect("the chain");
    assert_eq!(chain[0]["quota_left"]["a day"], 797, "{}", after.text);
    assert!(
        chain[0]["circuit"]
            .as_str()
            .unwrap()
            .starts_with("open for "),
        "three failures open the circuit: {}",
        after.text
    );
    assert_eq!(
        chain[1]["quota_left"]["a day"], 247,
        "FMP's free tier, less 3"
    );
    assert_eq!(chain[1]["circuit"], "closed");

    let failovers = lines.named("ProviderFailover");
    assert_eq!(failovers.len(), 3, "{failovers:?}");
    for line in &failovers {
        assert_eq!(
            (line["Provider"].as_str(), line["Reason"].as_str()),
            (Some("twelvedata"), Some("unavailable"))
        );
    }

    // The raw rows and the events name the provider that answered.
    let db = app.db.as_ref().unwrap().client().await;
    let providers: Vec<String> = db
        .query("SELECT DISTINCT provider FROM raw_market_data", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(providers, ["fmp"]);
    let records = harness::kafka::consume(
        app.topic.as_deref().unwrap(),
        3,
        std::time::Duration::from_secs(20),
    )
    .await;
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record.value["source"], "fmp", "{:?}", record.value);
    }
}
