//! The `ma-consumer` function: MSK (Kafka) events in, price points and moving averages out.
//!
//! [`handle`] takes the event exactly as the MSK event source mapping delivers it (records
//! grouped by topic-partition, values base64-encoded) and hands the batch to the shared
//! [`PriceConsumer`]. The local runner's emulation of the event source and the tests call
//! the same function with an event of the same shape.

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use market_data::store::StoreError;
use market_data::usecases::{ConsumeReport, ConsumedRecord, PriceConsumer};

/// Why a batch was not consumed. Returned to Lambda as the invocation's error, so the event
/// source mapping delivers the same batch again; what was written of it is written once.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The database failed or could not be reached.
    #[error("batch not stored: {0}")]
    Store(#[from] StoreError),
}

impl HandlerError {
    /// Whether delivering the same batch again can succeed: yes when the database was away,
    /// no when it refused the statement (the batch itself is at fault).
    pub fn is_retryable(&self) -> bool {
        match self {
            HandlerError::Store(StoreError::Unavailable(_)) => true,
            HandlerError::Store(StoreError::Query(_) | StoreError::Rejected(_)) => false,
        }
    }
}

/// Consumes one MSK event. Records that are not valid price events, or that the database
/// refuses, become dead letters and the rest is stored; an unavailable database fails the
/// invocation, so that the event source delivers the batch again.
pub async fn handle(
    consumer: &PriceConsumer,
    event: &KafkaEvent,
) -> Result<ConsumeReport, HandlerError> {
    Ok(consumer.consume(&records(event)).await?)
}

/// The records of an MSK event, in partition then offset order, values decoded.
pub fn records(event: &KafkaEvent) -> Vec<ConsumedRecord> {
    let mut out: Vec<ConsumedRecord> = event
        .records
        .iter()
        .flat_map(|(group, records)| records.iter().map(move |r| record(group, r)))
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    out
}

fn record(group: &str, r: &KafkaRecord) -> ConsumedRecord {
    // The map key is `topic-partition`; the record names its topic too.
    let topic = r.topic.clone().unwrap_or_else(|| {
        group
            .rsplit_once('-')
            .map_or(group, |(topic, _)| topic)
            .to_owned()
    });
    let value = match &r.value {
        None => Err("record has no value".to_owned()),
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|e| format!("value is not base64: {e}")),
    };
    ConsumedRecord {
        topic,
        partition: i32::try_from(r.partition).unwrap_or(i32::MAX),
        offset: r.offset,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_msk_event_becomes_ordered_decoded_records() {
        let event: KafkaEvent = serde_json::from_value(serde_json::json!({
            "eventSource": "aws:kafka",
            "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/c/1",
            "bootstrapServers": "b-1:9098",
            "records": {
                "price-events-1": [
                    {"topic": "price-events", "partition": 1, "offset": 7, "timestamp": 1700000000000i64,
                     "timestampType": "CREATE_TIME", "key": "QUFQTA==", "value": "e30=", "headers": []}
                ],
                "price-events-0": [
                    {"topic": "price-events", "partition": 0, "offset": 9, "timestamp": 1700000000000i64,
                     "timestampType": "CREATE_TIME", "key": null, "value": "not base64!", "headers": []},
                    {"partition": 0, "offset": 10, "timestamp": 1700000000000i64,
                     "key": null, "value": null, "headers": []}
                ]
            }
        }))
        .unwrap();
        let records = records(&event);
        let summary: Vec<(String, i32, i64)> = records
            .iter()
            .map(|r| (r.topic.clone(), r.partition, r.offset))
            .collect();
        assert_eq!(
            summary,
            [
                ("price-events".to_owned(), 0, 9),
                ("price-events".to_owned(), 0, 10),
                ("price-events".to_owned(), 1, 7)
            ]
        );
        assert!(records[0].value.as_ref().unwrap_err().contains("base64"));
        assert_eq!(records[1].value, Err("record has no value".to_owned()));
        assert_eq!(records[2].value.as_deref(), Ok(&b"{}"[..]));
    }
}
