//! Every HTTP provider adapter besides Finnhub against a fake answering as the provider
//! documents: a quote, an unknown symbol, each limit and error shape (inside 200 bodies
//! too), malformed bodies, slow and hanging answers, and batch calls where there are some.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use harness::fake_provider::cents;
use harness::{FakeProvider, Kind, ProviderReply};
use market_data::config::Config;
use market_data::domain::{ProviderId, Symbol};
use market_data::providers::{ProviderError, ProviderGuards, Providers, QuoteProvider};
use rust_decimal::Decimal;

const ALL: [Kind; 6] = [
    Kind::TwelveData,
    Kind::AlphaVantage,
    Kind::Massive,
    Kind::Fmp,
    Kind::Tiingo,
    Kind::Yahoo,
];

/// The adapter the service would build for `fake`, through the real configuration path.
async fn adapter(fake: &FakeProvider) -> Arc<dyn QuoteProvider> {
    let mut vars: HashMap<String, String> = fake.env().into_iter().collect();
    vars.insert(
        format!("{}_TIMEOUT_MS", fake.kind().env_prefix()),
        "500".into(),
    );
    let config = Config::load(|k| vars.get(k).cloned(), None).await.unwrap();
    let providers =
        Providers::from_config(&config.providers, ProviderGuards::new([], None)).unwrap();
    let id: ProviderId = fake.kind().name().parse().unwrap();
    assert_eq!(config.providers.chain, vec![id]);
    providers.get(id).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

fn class(e: &ProviderError) -> &'static str {
    e.kind()
}

#[tokio::test]
async fn each_adapter_reads_a_quote_exactly_and_sends_its_credential() {
    for kind in ALL {
        let fake = FakeProvider::start(kind).await;
        let p = adapter(&fake).await;
        let fetched = p
            .quote(&sym("AAPL"))
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(fetched.quote.provider.as_str(), kind.name());
        assert_eq!(
            fetched.quote.price,
            Decimal::new(cents("AAPL") as i64, 2),
            "{kind:?}"
        );
        assert!(fetched.quote.quote_time <= chrono::Utc::now(), "{kind:?}");
        assert!(!fetched.raw.is_null());
        let credential = fake.credentials().pop().unwrap();
        match kind {
            Kind::Yahoo => assert_eq!(credential, None),
            _ => assert!(
                credential
                    .as_deref()
                    .is_some_and(|c| c.ends_with(&format!("test-{}-key", kind.name()))),
                "{kind:?}: {credential:?}"
            ),
        }
    }
}

#[tokio::test]
async fn each_adapter_says_unknown_symbol_in_its_providers_way() {
    for kind in ALL {
        let fake = FakeProvider::start(kind).await;
        fake.reply("ZZZZZ", ProviderReply::Unknown);
        let result = adapter(&fake).await.quote(&sym("ZZZZZ")).await;
        assert_eq!(result.err(), Some(ProviderError::NotFound), "{kind:?}");
    }
}

/// Each documented limit and error shape, with the class it must get.
fn documented_errors(kind: Kind) -> Vec<(ProviderReply, &'static str)> {
    use ProviderReply::{Fixture, Raw};
    match kind {
        Kind::TwelveData => vec![
            (Fixture(200, "unknown_symbol.json"), "not_found"),
            (Fixture(404, "unknown_symbol.json"), "not_found"),
            (Fixture(200, "bad_key.json"), "credentials_refused"),
            (Fixture(401, "bad_key.json"), "credentials_refused"),
            (Fixture(200, "out_of_credits.json"), "rate_limited"),
            (Fixture(429, "out_of_credits.json"), "rate_limited"),
            (Fixture(200, "plan.json"), "plan_restricted"),
            (Fixture(403, "plan.json"), "plan_restricted"),
        ],
        Kind::AlphaVantage => vec![
            (Fixture(200, "rate_limited.json"), "rate_limited"),
            (Fixture(200, "rate_limited_note.json"), "rate_limited"),
            (Fixture(200, "bad_key.json"), "credentials_refused"),
            (Fixture(200, "premium.json"), "plan_restricted"),
        ],
        Kind::Massive => vec![
            (Fixture(429, "rate_limited.json"), "rate_limited"),
            (Raw(429, "application/json", String::new()), "rate_limited"),
            (Fixture(401, "bad_key.json"), "credentials_refused"),
            (Fixture(403, "not_authorized.json"), "plan_restricted"),
        ],
        Kind::Fmp => vec![
            (Fixture(429, "limit_reach.json"), "rate_limited"),
            (Fixture(200, "limit_reach.json"), "rate_limited"),
            (Fixture(401, "bad_key.json"), "credentials_refused"),
            (Fixture(402, "restricted.json"), "plan_restricted"),
        ],
        Kind::Tiingo => vec![
            (Fixture(429, "rate_limited.json"), "rate_limited"),
            (Fixture(200, "rate_limited.json"), "rate_limited"),
            (Fixture(401, "bad_key.json"), "credentials_refused"),
        ],
        Kind::Yahoo => vec![(
            Raw(429, "text/plain", "Too Many Requests".into()),
            "rate_limited",
        )],
    }
}

#[tokio::test]
async fn every_documented_limit_and_error_shape_is_classified_from_status_and_body() {
    for kind in ALL {
        let fake = FakeProvider::start(kind).await;
        let p = adapter(&fake).await;
        for (i, (reply, expected)) in documented_errors(kind).into_iter().enumerate() {
            let symbol = format!("E{i}");
            fake.reply(&symbol, reply.clone());
            let result = p.quote(&sym(&symbol)).await;
            let got = result.as_ref().err().map(class);
            assert_eq!(got, Some(expected), "{kind:?} {reply:?}: {result:?}");
        }
    }
}

#[tokio::test]
async fn rate_limits_carry_when_to_try_again() {
    for (kind, reply) in [
        (
            Kind::TwelveData,
            ProviderReply::Fixture(200, "out_of_credits.json"),
        ),
        (
            Kind::AlphaVantage,
            ProviderReply::Fixture(200, "rate_limited.json"),
        ),
        (Kind::Fmp, ProviderReply::Fixture(429, "limit_reach.json")),
        (
            Kind::Tiingo,
            ProviderReply::Fixture(429, "rate_limited.json"),
        ),
        (
            Kind::Massive,
            ProviderReply::Fixture(429, "rate_limited.json"),
        ),
    ] {
        let fake = FakeProvider::start(kind).await;
        fake.reply("AAPL", reply);
        match adapter(&fake).await.quote(&sym("AAPL")).await {
            Err(ProviderError::RateLimited {
                retry_after: Some(d),
            }) => {
                assert!(
                    d > Duration::ZERO && d <= Duration::from_secs(86_400),
                    "{kind:?}: {d:?}"
                )
            }
            other => panic!("{kind:?}: expected a rate limit with its reset, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_bodies_are_garbage_and_server_errors_unavailable() {
    for kind in ALL {
        let fake = FakeProvider::start(kind).await;
        let p = adapter(&fake).await;
        fake.reply(
            "TRUNC",
            ProviderReply::Raw(200, "application/json", r#"{"close":"26"#.into()),
        );
        fake.reply(
            "HTMLOK",
            ProviderReply::Raw(200, "text/html", "<html>hi</html>".into()),
        );
        fake.reply(
            "WRONG",
            ProviderReply::Raw(200, "application/json", r#"{"hello":"world"}"#.into()),
        );
        fake.reply(
            "E500",
            ProviderReply::Raw(500, "text/html", "<html>500</html>".into()),
        );
        fake.reply(
            "E503",
            ProviderReply::Raw(503, "application/json", "{}".into()),
        );
        for s in ["TRUNC", "HTMLOK", "WRONG"] {
            let result = p.quote(&sym(s)).await;
            // Tiingo's array has no entry for the ticker in `{"hello":…}`: still not a quote.
            assert!(
                matches!(
                    result,
                    Err(ProviderError::Garbage(_) | ProviderError::NotFound)
                ),
                "{kind:?} {s}: {result:?}"
            );
            if s != "WRONG" {
                assert!(
                    matches!(result, Err(ProviderError::Garbage(_))),
                    "{kind:?} {s}: {result:?}"
                );
            }
        }
        for s in ["E500", "E503"] {
            let result = p.quote(&sym(s)).await;
            assert!(
                matches!(result, Err(ProviderError::Unavailable(_))),
                "{kind:?} {s}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn slow_answers_within_the_timeout_are_read_and_hanging_ones_cut_off() {
    for kind in ALL {
        let fake = FakeProvider::start(kind).await;
        let p = adapter(&fake).await;
        fake.reply(
            "SLOW",
            ProviderReply::Delayed(Duration::from_millis(150), Box::new(ProviderReply::Quote)),
        );
        fake.reply("HANG", ProviderReply::Hang);
        assert!(p.quote(&sym("SLOW")).await.is_ok(), "{kind:?}");
        let result = p.quote(&sym("HANG")).await;
        assert!(
            matches!(&result, Err(ProviderError::Unavailable(m)) if m.contains("did not answer")),
            "{kind:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn batch_providers_answer_many_symbols_in_one_call() {
    for kind in [Kind::TwelveData, Kind::Tiingo] {
        let fake = FakeProvider::start(kind).await;
        fake.reply("ZZZZZ", ProviderReply::Unknown);
        let p = adapter(&fake).await;
        let symbols = [sym("AAPL"), sym("MSFT"), sym("ZZZZZ")];
        let out = p.quotes(&symbols).await;
        assert_eq!(fake.requests(), 1, "{kind:?}");
        assert_eq!(out[0].as_ref().unwrap().quote.symbol, sym("AAPL"));
        assert_eq!(
            out[1].as_ref().unwrap().quote.price,
            Decimal::new(cents("MSFT") as i64, 2)
        );
        assert_eq!(
            out[2].as_ref().err(),
            Some(&ProviderError::NotFound),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_batch_call_fails_each_of_its_symbols_the_same_way() {
    for kind in [Kind::TwelveData, Kind::Tiingo] {
        let fake = FakeProvider::start(kind).await;
        fake.reply_all(ProviderReply::Fixture(401, "bad_key.json"));
        let out = adapter(&fake)
            .await
            .quotes(&[sym("AAPL"), sym("MSFT")])
            .await;
        assert_eq!(fake.requests(), 1);
        for r in out {
            assert!(
                matches!(r, Err(ProviderError::CredentialsRefused(_))),
                "{kind:?}: {r:?}"
            );
        }
    }
}
