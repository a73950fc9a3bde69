//! Where metrics go: `METRICS` (`emf`, `log`, `off`; EMF by default on Lambda),
//! `METRICS_NAMESPACE`, and the function's name as the `Function` dimension.

use std::sync::Arc;

use super::{EmfMetrics, LogMetrics, Metrics};
use crate::config::{ConfigError, Env};

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    /// CloudWatch Embedded Metric Format lines on stdout (the default on Lambda).
    Emf,
    /// The debug log.
    Log,
    /// Nowhere (the default elsewhere).
    Off,
}

/// Metrics settings.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Where they go.
    pub mode: MetricsMode,
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The `Function` dimension: the Lambda function's name, or `local`.
    pub function: String,
}

impl MetricsConfig {
    /// The settings; EMF when running on Lambda and `METRICS` is unset, else off.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let function = env.get("AWS_LAMBDA_FUNCTION_NAME");
        let mode = env.one_of(
            "METRICS",
            &[
                ("emf", MetricsMode::Emf),
                ("log", MetricsMode::Log),
                ("off", MetricsMode::Off),
            ],
        )?;
        Ok(Self {
            mode: mode.unwrap_or(if function.is_some() {
                MetricsMode::Emf
            } else {
                MetricsMode::Off
            }),
            namespace: env
                .get("METRICS_NAMESPACE")
                .unwrap_or_else(|| "MarketData".into()),
            function: function.unwrap_or_else(|| "local".into()),
        })
    }

    /// The sink these settings ask for.
    pub fn build(&self) -> Metrics {
        match self.mode {
            MetricsMode::Emf => Metrics::new(Arc::new(EmfMetrics::stdout(
                &self.namespace,
                &self.function,
            ))),
            MetricsMode::Log => Metrics::new(Arc::new(LogMetrics)),
            MetricsMode::Off => Metrics::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::vars;

    fn load(pairs: &[(&str, &str)]) -> Result<MetricsConfig, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        MetricsConfig::from_env(&Env::new(&lookup, None))
    }

    #[test]
    fn emf_on_lambda_off_elsewhere_and_unknown_modes_refused() {
        assert_eq!(load(&[]).unwrap().mode, MetricsMode::Off);
        let c = load(&[("AWS_LAMBDA_FUNCTION_NAME", "market-data-dev-price-api")]).unwrap();
        assert_eq!(c.mode, MetricsMode::Emf);
        assert_eq!(c.function, "market-data-dev-price-api");
        let err = load(&[("METRICS", "prometheus")]).unwrap_err().to_string();
        assert!(err.starts_with("METRICS"), "{err}");
    }
}
