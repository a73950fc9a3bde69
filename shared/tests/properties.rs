//! Property tests (proptest) of what reads untrusted input: the symbol parser, the price-event
//! decoder and the moving averages. Thousands of generated inputs each; none may panic, and
//! what is accepted must be what the rules say.

use chrono::DateTime;
use market_data::domain::{
    AverageKind, AverageSpec, MAX_SYMBOL_LEN, PriceEvent, PricePoint, Symbol, averages_at,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

fn is_symbol_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || ".-^=:".contains(c)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn the_symbol_parser_never_panics_and_accepts_only_the_pattern(raw in any::<String>()) {
        if let Ok(symbol) = Symbol::parse(&raw) {
            let s = symbol.as_str();
            prop_assert!(!s.is_empty() && s.chars().count() <= MAX_SYMBOL_LEN);
            prop_assert!(s.chars().all(is_symbol_char));
            prop_assert!(s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()));
            let again = Symbol::parse(s);
            prop_assert_eq!(again, Ok(symbol.clone()), "normalising twice changes nothing");
        }
    }

    #[test]
    fn symbol_like_input_is_accepted_whatever_its_case(raw in "[a-zA-Z0-9][a-zA-Z0-9.\\-^=:]{0,14}") {
        let symbol = Symbol::parse(&raw).unwrap();
        prop_assert_eq!(symbol.as_str(), raw.to_ascii_uppercase());
    }

    #[test]
    fn the_event_decoder_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = PriceEvent::decode(&bytes);
    }

    #[test]
    fn the_event_decoder_never_panics_on_json_of_any_shape(
        symbol in prop_oneof![Just(serde_json::Value::Null), any::<String>().prop_map(Into::into), any::<i64>().prop_map(Into::into)],
        price in prop_oneof![Just(serde_json::Value::Null), any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)), any::<String>().prop_map(Into::into), any::<i64>().prop_map(Into::into)],
        timestamp in prop_oneof![any::<String>().prop_map(serde_json::Value::from), (0i64..4_102_444_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap().to_rfc3339().into())],
        source in any::<String>(),
        id in prop_oneof![any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string().into()), any::<String>().prop_map(serde_json::Value::from)],
    ) {
        let json = serde_json::json!({
            "symbol": symbol, "price": price, "timestamp": timestamp,
            "source": source, "raw_response_id": id,
        });
        if let Ok(event) = PriceEvent::decode(json.to_string().as_bytes()) {
            prop_assert!(event.price > Decimal::ZERO);
            prop_assert!(!event.source.trim().is_empty());
            let again = PriceEvent::decode(&event.to_json().unwrap()).unwrap();
            prop_assert_eq!(again, event);
        }
    }

    #[test]
    fn an_average_list_parser_never_panics(raw in any::<String>()) {
        if let Ok(specs) = AverageSpec::parse_list(&raw) {
            prop_assert!(!specs.is_empty());
            prop_assert!(specs.iter().all(|s| (1..=1000).contains(&s.window)));
        }
    }

    #[test]
    fn averages_lie_within_the_prices_and_ignore_arrival_order(
        cents in proptest::collection::vec(1i64..10_000_000, 1..60),
        window in 1u16..12,
        ema in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let spec = AverageSpec { kind: if ema { AverageKind::Ema } else { AverageKind::Sma }, window };
        let symbol = Symbol::parse("PROP").unwrap();
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let points: Vec<PricePoint> = cents.iter().enumerate().map(|(i, c)| PricePoint {
            raw_response_id: Uuid::from_u128(i as u128),
            symbol: symbol.clone(),
            price: Decimal::new(*c, 2),
            // Pairs of points share a quote time.
            quote_time: t0 + chrono::Duration::seconds((i / 2) as i64),
            source: "prop".into(),
        }).collect();
        let newest = points.last().unwrap().quote_time;

        let mut shuffled = points.clone();
        let mut rng = seed;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        shuffled.sort_by_key(PricePoint::order_key);
        let a = averages_at(&symbol, &points, &[newest], &[spec]);
        let b = averages_at(&symbol, &shuffled, &[newest], &[spec]);
        prop_assert_eq!(&a, &b);

        prop_assert_eq!(a.len(), usize::from(points.len() >= usize::from(window)));
        if let Some(avg) = a.first() {
            let lo = points.iter().map(|p| p.price).min().unwrap();
            let hi = points.iter().map(|p| p.price).max().unwrap();
            prop_assert!(avg.value >= lo.round_dp(12) - Decimal::new(1, 12));
            prop_assert!(avg.value <= hi.round_dp(12) + Decimal::new(1, 12));
        }
    }
}
