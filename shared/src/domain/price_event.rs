//! The event published for every fetched quote (Kafka topic `price-events`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Quote, Symbol, check_price, check_quote_time};

/// The seed-compatible price event: exactly five fields, compact JSON, keyed by symbol.
///
/// `raw_response_id` names the stored raw response and is the idempotency key downstream:
/// a consumer that sees the same id twice must change nothing the second time. Fields a
/// later producer adds are ignored on the way in (DESIGN.md allows additive fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceEvent {
    /// The symbol, also the message key, so one symbol's events stay in order on one partition.
    pub symbol: Symbol,
    /// The price as a JSON number, as the seed's consumers expect, with exactly its digits.
    #[serde(with = "super::exact_json")]
    pub price: Decimal,
    /// The provider's quote time, RFC 3339 in UTC with a `Z`.
    pub timestamp: DateTime<Utc>,
    /// The provider's name (`finnhub`, `simulated`, ...).
    pub source: String,
    /// The id of the row in `raw_market_data` this event was made from.
    pub raw_response_id: Uuid,
}

impl PriceEvent {
    /// The event for a quote stored under `raw_response_id`.
    pub fn from_quote(quote: &Quote, raw_response_id: Uuid) -> Self {
        Self {
            symbol: quote.symbol.clone(),
            price: quote.price,
            timestamp: quote.quote_time,
            source: quote.provider.as_str().to_owned(),
            raw_response_id,
        }
    }

    /// The compact JSON sent as the message value.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a message value, refusing anything a consumer must not store: malformed JSON,
    /// a missing field, an invalid symbol, a price or a quote time the domain's rules refuse
    /// ([`check_price`], [`check_quote_time`] as of now), a source that is empty, long or holds
    /// control characters (PostgreSQL's `text` cannot hold a NUL).
    pub fn decode(value: &[u8]) -> Result<Self, EventDecodeError> {
        Self::decode_at(value, Utc::now())
    }

    /// [`decode`](Self::decode) with the clock given, for quote times checked as of `now`.
    pub fn decode_at(value: &[u8], now: DateTime<Utc>) -> Result<Self, EventDecodeError> {
        let event: Self = serde_json::from_slice(value)
            .map_err(|e| EventDecodeError::Malformed(e.to_string()))?;
        let invalid = |e: &dyn std::fmt::Display| EventDecodeError::Invalid(e.to_string());
        check_price(event.price).map_err(|e| invalid(&e))?;
        check_quote_time(event.timestamp, now).map_err(|e| invalid(&e))?;
        let source = event.source.trim();
        if source.is_empty()
            || source.len() > MAX_SOURCE_LEN
            || event.source.chars().any(char::is_control)
        {
            return Err(EventDecodeError::Invalid(format!(
                "source must be 1 to {MAX_SOURCE_LEN} characters, none of them control characters"
            )));
        }
        Ok(event)
    }
}

/// Longest provider name an event may carry.
const MAX_SOURCE_LEN: usize = 64;

/// Why a message value is not a price event; kept as the dead letter's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    /// Not JSON, not an object of the event's shape, or a field of the wrong type or format
    /// (symbols are validated while decoding).
    #[error("not a price event: {0}")]
    Malformed(String),
    /// Well-formed, but with a value no price event can have.
    #[error("invalid price event: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderId;
    use std::str::FromStr;

    fn quote() -> Quote {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Quote {
            symbol: Symbol::parse("AAPL").unwrap(),
            provider: ProviderId::Finnhub,
            price: Decimal::from_str("189.25").unwrap(),
            change: None,
            percent_change: None,
            high: Decimal::from_str("190").unwrap(),
            low: Decimal::from_str("188.1").unwrap(),
            open: Decimal::from_str("188.5").unwrap(),
            previous_close: Decimal::from_str("188.9").unwrap(),
            quote_time: t,
            fetched_at: t,
        }
    }

    #[test]
    fn serialises_exactly_the_seed_fields() {
        let id = Uuid::from_u128(7);
        let json: serde_json::Value =
            serde_json::from_slice(&PriceEvent::from_quote(&quote(), id).to_json().unwrap())
                .unwrap();
        let obj = json.as_object().unwrap();
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["price", "raw_response_id", "source", "symbol", "timestamp"]
        );
        assert_eq!(obj["price"], serde_json::json!(189.25));
        assert_eq!(obj["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(obj["source"], "finnhub");
        assert_eq!(obj["symbol"], "AAPL");
        assert_eq!(obj["raw_response_id"], id.to_string());
    }

    #[test]
    fn decodes_its_own_json_and_tolerates_added_fields() {
        let event = PriceEvent::from_quote(&quote(), Uuid::from_u128(3));
        assert_eq!(
            PriceEvent::decode(&event.to_json().unwrap()).unwrap(),
            event
        );
        let mut extra: serde_json::Value =
            serde_json::from_slice(&event.to_json().unwrap()).unwrap();
        extra["currency"] = "USD".into();
        assert_eq!(
            PriceEvent::decode(extra.to_string().as_bytes()).unwrap(),
            event
        );
    }

    #[test]
    fn refuses_what_a_consumer_must_not_store() {
        let id = Uuid::from_u128(3);
        let cases = [
            "".to_owned(),
            "not json".to_owned(),
            "{\"symbol\":\"AAPL\"}".to_owned(),
            format!(r#"{{"symbol":"AAPL","price":0,"timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":-1.5,"timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AA PL;","price":1.5,"timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":1.5,"timestamp":"yesterday","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":1.5,"timestamp":"2024-01-01T00:00:00Z","source":" ","raw_response_id":"{id}"}}"#),
            r#"{"symbol":"AAPL","price":1.5,"timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":"nope"}"#.to_owned(),
            r#"{"symbol":"AAPL","price":"1.5","timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":null}"#.to_owned(),
            format!(r#"{{"symbol":"AAPL","price":22674926334825745,"timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":1.5,"timestamp":"2024-01-01T00:00:00Z","source":"finn\u0000hub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":1.5,"timestamp":"-5000-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":1.5,"timestamp":"+55840-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
            format!(r#"{{"symbol":"AAPL","price":1.00000000000000000000000000001,"timestamp":"2024-01-01T00:00:00Z","source":"finnhub","raw_response_id":"{id}"}}"#),
        ];
        for case in cases {
            assert!(PriceEvent::decode(case.as_bytes()).is_err(), "{case}");
        }
    }

    #[test]
    fn round_trips_with_an_exact_price() {
        let event = PriceEvent::from_quote(&quote(), Uuid::from_u128(1));
        let back: PriceEvent = serde_json::from_slice(&event.to_json().unwrap()).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.price.to_string(), "189.25");
    }

    #[test]
    fn a_price_with_seventeen_digits_travels_exactly() {
        let mut q = quote();
        q.price = Decimal::from_str("0.30000000000000004").unwrap();
        let event = PriceEvent::from_quote(&q, Uuid::from_u128(1));
        let json = String::from_utf8(event.to_json().unwrap()).unwrap();
        assert!(json.contains(r#""price":0.30000000000000004,"#), "{json}");
        assert_eq!(PriceEvent::decode(json.as_bytes()).unwrap(), event);
    }
}
