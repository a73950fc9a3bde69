//! Generated request bodies and query strings against the router (proptest): whatever is
//! sent, the answer is a success or a problem+json 4xx, never a 5xx or a panic.

use harness::TestApp;
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<f64>().prop_map(
            |f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        ),
        "[a-zA-Z0-9 .:^=-]{0,20}".prop_map(Into::into),
        any::<String>().prop_map(Into::into),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Into::into),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("symbols".to_owned()),
                    Just("interval".to_owned()),
                    Just("provider".to_owned()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

#[test]
fn generated_poll_bodies_and_queries_never_get_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::builder().env("RATE_LIMIT_PER_MINUTE", "0").build());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(512));
    runner
        .run(&(body(), any::<String>()), |(body, query)| {
            let (post, get) = runtime.block_on(async {
                let post = app.post_raw("/prices/poll", body).await;
                let encoded: String = percent_encoding::utf8_percent_encode(
                    &query,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string();
                let get = app
                    .get(&format!(
                        "/prices/history?symbol={encoded}&limit={encoded}&cursor={encoded}"
                    ))
                    .await;
                (post, get)
            });
            for r in [&post, &get] {
                prop_assert!(r.status < 500, "{} {}", r.status, r.text);
                if r.status >= 400 {
                    prop_assert_eq!(r.content_type(), "application/problem+json");
                }
            }
            Ok(())
        })
        .unwrap();
}
