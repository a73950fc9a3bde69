//! The CloudWatch Embedded Metric Format lines an app writes, kept for a test to read: the
//! very lines Lambda would send to CloudWatch, so a test checks names, dimensions and values.

use std::sync::{Arc, Mutex};

use market_data::telemetry::{EmfMetrics, Metrics};
use serde_json::Value;

/// Every EMF line written, parsed.
#[derive(Clone, Default)]
pub struct EmfLines(Arc<Mutex<Vec<Value>>>);

impl EmfLines {
    /// Metrics that write here (function dimension `test`); give them to the app builder.
    pub fn metrics(&self) -> Metrics {
        let lines = self.clone();
        Metrics::new(Arc::new(EmfMetrics::new(
            "MarketData",
            "test",
            Box::new(move |line| {
                let doc = serde_json::from_slice(line).expect("an EMF line is JSON");
                lines.0.lock().unwrap().push(doc);
            }),
        )))
    }

    /// The lines declaring metric `name`.
    pub fn named(&self, name: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["Name"] == name))
            })
            .cloned()
            .collect()
    }

    /// The sum of metric `name`'s values over every line that declares it.
    pub fn total(&self, name: &str) -> f64 {
        self.named(name)
            .iter()
            .filter_map(|l| l[name].as_f64())
            .sum()
    }
}
