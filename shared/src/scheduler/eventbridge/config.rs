//! Settings of the EventBridge scheduler: `POLLER_FUNCTION_ARN` (the rules' target),
//! `POLL_RULE_PREFIX`, and the endpoint override (`AWS_ENDPOINT_URL_EVENTBRIDGE`, else
//! `AWS_ENDPOINT_URL`) for moto.

use crate::config::{ConfigError, Env};

/// Default prefix of the EventBridge rule names of jobs.
pub const DEFAULT_RULE_PREFIX: &str = "mdb-poll-";

/// EventBridge scheduler settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeConfig {
    /// ARN of the poller function the rules invoke.
    pub poller_function_arn: String,
    /// Prefix of job rule names, so several deployments share an account.
    pub rule_prefix: String,
    /// Endpoint override, for moto.
    pub endpoint: Option<String>,
}

impl EventBridgeConfig {
    /// The settings, or `None` without `POLLER_FUNCTION_ARN` (timers in this process).
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let rule_prefix = env
            .get("POLL_RULE_PREFIX")
            .unwrap_or_else(|| DEFAULT_RULE_PREFIX.into());
        let prefix_ok = rule_prefix.len() <= 20
            && rule_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !prefix_ok {
            return Err(ConfigError::invalid(
                "POLL_RULE_PREFIX",
                "at most 20 of A-Z a-z 0-9 . - _ (rule names are limited to 64)",
            ));
        }
        let Some(arn) = env.get("POLLER_FUNCTION_ARN") else {
            return Ok(None);
        };
        if !arn.starts_with("arn:") {
            return Err(ConfigError::invalid(
                "POLLER_FUNCTION_ARN",
                format!("{arn:?} is not an ARN"),
            ));
        }
        Ok(Some(Self {
            poller_function_arn: arn,
            rule_prefix,
            endpoint: env
                .get("AWS_ENDPOINT_URL_EVENTBRIDGE")
                .or_else(|| env.get("AWS_ENDPOINT_URL")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::vars;

    fn load(pairs: &[(&str, &str)]) -> Result<Option<EventBridgeConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        EventBridgeConfig::from_env(&Env::new(&lookup, None))
    }

    #[test]
    fn the_general_endpoint_applies_and_bad_values_name_their_variable() {
        assert!(load(&[]).unwrap().is_none());
        let c = load(&[
            (
                "POLLER_FUNCTION_ARN",
                "arn:aws:lambda:us-east-1:1:function:p",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.rule_prefix, DEFAULT_RULE_PREFIX);
        for (var, value) in [
            ("POLLER_FUNCTION_ARN", "poller"),
            ("POLL_RULE_PREFIX", "way-too-long-a-prefix-for-rules"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
    }
}
