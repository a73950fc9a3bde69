//! Metrics: the port, and its CloudWatch Embedded Metric Format (EMF) adapter.
//!
//! On Lambda, a JSON line with an `_aws` member written to stdout becomes CloudWatch metrics
//! with no API call and no agent: that is the EMF adapter. Locally metrics go to the debug
//! log, or nowhere. Dimensions are few and bounded (function, provider, tier, failure kind),
//! never a symbol or a client, so the number of metric series stays small.

use std::io::Write;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Map, Value, json};

/// What a measurement counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Occurrences.
    Count,
    /// Elapsed time.
    Milliseconds,
    /// An age or a wait too long for milliseconds to read well.
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The metric's name (`CacheHit`, `ProviderLatency`, ...).
    pub name: &'static str,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// Its dimensions beyond the function's name.
    pub dimensions: Vec<(&'static str, String)>,
}

/// The metrics port.
pub trait MetricsSink: Send + Sync {
    /// Records one measurement. Must not block for long nor fail the caller.
    fn record(&self, measurement: Measurement);
}

/// The handle code records through: cheap to clone, with shorthands.
#[derive(Clone)]
pub struct Metrics(Arc<dyn MetricsSink>);

impl Metrics {
    /// Records to `sink`.
    pub fn new(sink: Arc<dyn MetricsSink>) -> Self {
        Self(sink)
    }

    /// Records nothing.
    pub fn none() -> Self {
        Self(Arc::new(NoMetrics))
    }

    /// Counts one occurrence of `name`.
    pub fn count(&self, name: &'static str, dimensions: Vec<(&'static str, String)>) {
        self.0.record(Measurement {
            name,
            value: 1.0,
            unit: Unit::Count,
            dimensions,
        });
    }

    /// Records a value of `name`, counted in occurrences (a batch size, say).
    pub fn amount(&self, name: &'static str, value: f64, dimensions: Vec<(&'static str, String)>) {
        self.0.record(Measurement {
            name,
            value,
            unit: Unit::Count,
            dimensions,
        });
    }

    /// Records a duration of `name` in milliseconds.
    pub fn millis(&self, name: &'static str, ms: f64, dimensions: Vec<(&'static str, String)>) {
        self.0.record(Measurement {
            name,
            value: ms,
            unit: Unit::Milliseconds,
            dimensions,
        });
    }
}

impl Metrics {
    /// Records an age or a long wait of `name` in seconds.
    pub fn seconds(&self, name: &'static str, secs: f64, dimensions: Vec<(&'static str, String)>) {
        self.0.record(Measurement {
            name,
            value: secs,
            unit: Unit::Seconds,
            dimensions,
        });
    }
}

/// Drops every measurement.
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn record(&self, _: Measurement) {}
}

/// Writes each measurement to the log at debug level (local runs).
pub struct LogMetrics;

impl MetricsSink for LogMetrics {
    fn record(&self, m: Measurement) {
        tracing::debug!(metric = m.name, value = m.value, unit = m.unit.as_str(), dimensions = ?m.dimensions, "metric");
    }
}

type LineWriter = Box<dyn Fn(&[u8]) + Send + Sync>;

/// Writes each measurement as one EMF line.
pub struct EmfMetrics {
    namespace: String,
    function: String,
    write: LineWriter,
}

impl EmfMetrics {
    /// EMF lines on standard output, where Lambda sends them to CloudWatch.
    pub fn stdout(namespace: &str, function: &str) -> Self {
        Self::new(
            namespace,
            function,
            Box::new(|line| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line);
            }),
        )
    }

    /// EMF lines handed to `write`, one call per line (newline included).
    pub fn new(namespace: &str, function: &str, write: LineWriter) -> Self {
        Self {
            namespace: namespace.to_owned(),
            function: function.to_owned(),
            write,
        }
    }

    /// The EMF document of one measurement.
    pub fn document(&self, m: &Measurement) -> Value {
        let mut dimension_names = vec![Value::from("Function")];
        let mut doc = Map::new();
        doc.insert("Function".into(), Value::from(self.function.clone()));
        for (name, value) in &m.dimensions {
            dimension_names.push(Value::from(*name));
            doc.insert((*name).into(), Value::from(value.clone()));
        }
        doc.insert(m.name.into(), json!(m.value));
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": Utc::now().timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": [{"Name": m.name, "Unit": m.unit.as_str()}],
                }],
            }),
        );
        Value::Object(doc)
    }
}

impl MetricsSink for EmfMetrics {
    fn record(&self, m: Measurement) {
        if let Ok(mut line) = serde_json::to_vec(&self.document(&m)) {
            line.push(b'\n');
            (self.write)(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn an_emf_line_declares_its_metric_and_dimensions() {
        let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&lines);
        let emf = EmfMetrics::new(
            "MarketData",
            "price-api",
            Box::new(move |l| sink.lock().unwrap().extend_from_slice(l)),
        );
        let metrics = Metrics::new(Arc::new(emf));
        metrics.millis(
            "ProviderLatency",
            12.5,
            vec![("Provider", "finnhub".into())],
        );
        metrics.count("CacheMiss", vec![]);

        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let docs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d["ProviderLatency"], 12.5);
        assert_eq!(d["Provider"], "finnhub");
        assert_eq!(d["Function"], "price-api");
        let cw = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "MarketData");
        assert_eq!(cw["Dimensions"], json!([["Function", "Provider"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "ProviderLatency", "Unit": "Milliseconds"}])
        );
        assert!(d["_aws"]["Timestamp"].as_i64().unwrap() > 0);
        assert_eq!(docs[1]["CacheMiss"], 1.0);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
    }
}
