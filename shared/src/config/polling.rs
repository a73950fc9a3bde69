//! Settings of polling jobs: where jobs are stored, how they are scheduled, how fast the
//! poller may call providers. Kept apart from the rest of [`super::Config`] because only
//! the API (creating jobs) and the poller use them.

use std::time::Duration;

use super::ConfigError;

/// Default prefix of the EventBridge rule names of jobs.
pub const DEFAULT_RULE_PREFIX: &str = "mdb-poll-";

/// Polling settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingConfig {
    /// DynamoDB table of jobs (`JOBS_TABLE`); `None` means jobs are kept in memory.
    pub jobs_table: Option<String>,
    /// DynamoDB endpoint override (`AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`),
    /// for DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    /// ARN of the poller function (`POLLER_FUNCTION_ARN`): with it, jobs are scheduled by
    /// EventBridge rules; without it, by timers in this process.
    pub poller_function_arn: Option<String>,
    /// EventBridge endpoint override (`AWS_ENDPOINT_URL_EVENTBRIDGE`, else
    /// `AWS_ENDPOINT_URL`), for moto.
    pub eventbridge_endpoint: Option<String>,
    /// Prefix of job rule names (`POLL_RULE_PREFIX`), so several deployments share an account.
    pub rule_prefix: String,
    /// Provider calls of one tick in flight at once (`POLL_CONCURRENCY`).
    pub concurrency: usize,
    /// Finnhub calls per minute all pollers together may make (`POLL_FINNHUB_CALLS_PER_MINUTE`;
    /// Finnhub's free tier allows 60).
    pub finnhub_calls_per_minute: u32,
    /// How far ahead an invocation runs due ticks (`POLL_TICK_WINDOW_SECONDS`, default 60:
    /// the period of a `rate(1 minute)` rule; shorter only in tests).
    pub tick_window: Duration,
}

impl PollingConfig {
    /// Reads the settings through `lookup` (a variable's trimmed, non-empty value).
    pub fn load(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |var: &'static str, default: u64, min: u64, max: u64| {
            let Some(raw) = lookup(var) else {
                return Ok(default);
            };
            match raw.parse::<u64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(ConfigError::Invalid {
                    var,
                    reason: format!("expected a whole number from {min} to {max}, got {raw:?}"),
                }),
            }
        };
        let rule_prefix = lookup("POLL_RULE_PREFIX").unwrap_or_else(|| DEFAULT_RULE_PREFIX.into());
        let prefix_ok = rule_prefix.len() <= 20
            && rule_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !prefix_ok {
            return Err(ConfigError::Invalid {
                var: "POLL_RULE_PREFIX",
                reason: "at most 20 of A-Z a-z 0-9 . - _ (rule names are limited to 64)".into(),
            });
        }
        let table = lookup("JOBS_TABLE");
        if let Some(t) = &table {
            let ok = (3..=255).contains(&t.len())
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                return Err(ConfigError::Invalid {
                    var: "JOBS_TABLE",
                    reason: format!("{t:?} is not a DynamoDB table name"),
                });
            }
        }
        let arn = lookup("POLLER_FUNCTION_ARN");
        if let Some(a) = &arn
            && !a.starts_with("arn:")
        {
            return Err(ConfigError::Invalid {
                var: "POLLER_FUNCTION_ARN",
                reason: format!("{a:?} is not an ARN"),
            });
        }
        let general = lookup("AWS_ENDPOINT_URL");
        Ok(Self {
            jobs_table: table,
            dynamodb_endpoint: lookup("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| general.clone()),
            poller_function_arn: arn,
            eventbridge_endpoint: lookup("AWS_ENDPOINT_URL_EVENTBRIDGE").or(general),
            rule_prefix,
            concurrency: number("POLL_CONCURRENCY", 8, 1, 64)? as usize,
            finnhub_calls_per_minute: number("POLL_FINNHUB_CALLS_PER_MINUTE", 60, 1, 100_000)?
                as u32,
            tick_window: Duration::from_secs(number("POLL_TICK_WINDOW_SECONDS", 60, 1, 60)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<PollingConfig, ConfigError> {
        PollingConfig::load(&|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_are_embedded() {
        let c = load(&[]).unwrap();
        assert!(c.jobs_table.is_none() && c.poller_function_arn.is_none());
        assert_eq!(c.finnhub_calls_per_minute, 60);
        assert_eq!(c.tick_window, Duration::from_secs(60));
    }

    #[test]
    fn specific_endpoints_win_over_the_general_one() {
        let c = load(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8001"),
        ])
        .unwrap();
        assert_eq!(
            c.dynamodb_endpoint.as_deref(),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(
            c.eventbridge_endpoint.as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("JOBS_TABLE", "a b"),
            ("POLLER_FUNCTION_ARN", "poller"),
            ("POLL_RULE_PREFIX", "way-too-long-a-prefix-for-rules"),
            ("POLL_CONCURRENCY", "0"),
            ("POLL_FINNHUB_CALLS_PER_MINUTE", "lots"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
    }
}
