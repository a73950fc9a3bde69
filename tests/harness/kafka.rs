//! Kafka for tests: a topic and a consumer group per test, on the stack's broker.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;

use crate::{endpoint, unique_name};

/// The broker's bootstrap address.
pub fn bootstrap() -> String {
    endpoint("MDB_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
}

/// Creates a topic with `partitions` partitions that no other test uses.
pub async fn create_topic(partitions: i32) -> String {
    create_topic_at(&bootstrap(), partitions).await
}

/// Creates a topic with `partitions` partitions that no other test uses, on the broker at
/// `bootstrap`.
pub async fn create_topic_at(bootstrap: &str, partitions: i32) -> String {
    let topic = unique_name("mdb_t");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap_or_else(|e| {
            panic!("the broker at {bootstrap} must be running (local/test.sh starts it): {e}")
        });
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
    topic
}

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The key, as text.
    pub key: Option<String>,
    /// The value, as JSON.
    pub value: serde_json::Value,
    /// The value, as sent (JSON numbers with every digit).
    pub bytes: Vec<u8>,
    /// The partition it was on.
    pub partition: i32,
}

/// Reads `topic` from the beginning, in a new consumer group, until `count` records have
/// arrived or `within` has passed; returns what arrived.
pub async fn consume(topic: &str, count: usize, within: Duration) -> Vec<Record> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique_name("mdb_t_group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while records.len() < count {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => panic!("consume {topic}: {e}"),
            Ok(Ok(m)) => records.push(Record {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: serde_json::from_slice(m.payload().unwrap_or_default())
                    .expect("event value is JSON"),
                bytes: m.payload().unwrap_or_default().to_vec(),
                partition: m.partition(),
            }),
        }
    }
    records
}
