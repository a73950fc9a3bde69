//! MSK IAM tokens, signed without AWS: the default credential chain reads the static keys
//! of the test environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, as `local/test.sh`
//! sets them), and the token must be what MSK's IAM authentication takes: a presigned
//! `kafka-cluster:Connect` URL for the cluster's region, base64url without padding.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use market_data::events::kafka::{KafkaConfig, KafkaContext, KafkaSecurity, msk_iam_token};
use rdkafka::ClientContext;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn access_key_id() -> String {
    std::env::var("AWS_ACCESS_KEY_ID")
        .expect("AWS_ACCESS_KEY_ID must be set (local/test.sh sets static test credentials)")
}

/// The presigned URL inside a token, after checking what MSK requires of it.
fn check_token(token: &str, region: &str) -> String {
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
    let (base, query) = url.split_once('?').unwrap();
    assert_eq!(base, format!("https://kafka.{region}.amazonaws.com/"));
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap())
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name} missing from {base}?…"))
    };
    assert_eq!(get("Action"), "kafka-cluster%3AConnect");
    assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    let credential = get("X-Amz-Credential");
    assert!(
        credential.starts_with(&format!("{}%2F", access_key_id())),
        "signed with another key: {credential}"
    );
    assert!(
        credential.ends_with(&format!("%2F{region}%2Fkafka-cluster%2Faws4_request")),
        "wrong scope: {credential}"
    );
    assert_eq!(get("X-Amz-Expires"), "900");
    let signature = get("X-Amz-Signature");
    assert_eq!(signature.len(), 64);
    assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
    url
}

#[test]
fn the_token_is_a_presigned_connect_url_for_the_region() {
    let before = now_ms();
    let token = msk_iam_token("eu-west-1").unwrap();
    let after = now_ms();
    check_token(&token.token, "eu-west-1");
    // X-Amz-Date has whole seconds: the signing time is at most a second before `before`.
    let lifetime = 900_000;
    assert!(
        (before - 1_000 + lifetime..=after + lifetime).contains(&token.expires_at_ms),
        "expires at {} (signed between {before} and {after})",
        token.expires_at_ms
    );
}

#[test]
fn tokens_for_other_regions_are_scoped_to_them() {
    let a = msk_iam_token("us-east-1").unwrap();
    let b = msk_iam_token("ap-southeast-2").unwrap();
    check_token(&a.token, "us-east-1");
    check_token(&b.token, "ap-southeast-2");
    assert_ne!(a.token, b.token);
}

#[test]
fn the_context_of_an_iam_config_hands_librdkafka_a_signed_token() {
    let config = KafkaConfig {
        bootstrap_servers: "b-1.example.kafka.eu-central-1.amazonaws.com:9098".into(),
        topic: "price-events".into(),
        delivery_timeout: std::time::Duration::from_secs(5),
        security: KafkaSecurity::MskIam {
            region: "eu-central-1".into(),
        },
    };
    let context = KafkaContext::for_config(&config);
    const { assert!(KafkaContext::ENABLE_REFRESH_OAUTH_TOKEN) };
    let token = context.generate_oauth_token(None).unwrap();
    check_token(&token.token, "eu-central-1");
    assert!(token.lifetime_ms > now_ms());
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_signed_from_inside_an_async_runtime() {
    // librdkafka may ask from inside a poll of the async consumer, on a runtime thread.
    let token = msk_iam_token("eu-west-1").unwrap();
    check_token(&token.token, "eu-west-1");
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_are_signed_from_inside_a_current_thread_runtime() {
    let token = msk_iam_token("eu-west-1").unwrap();
    check_token(&token.token, "eu-west-1");
}
