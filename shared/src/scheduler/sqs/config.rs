//! Settings of the SQS tick queue: `POLL_QUEUE_URL`, and the endpoint override
//! (`AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`) for moto.

use crate::config::{ConfigError, Env};

/// SQS tick queue settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsQueueConfig {
    /// The queue's URL (the template passes it to the poller and the API).
    pub queue_url: String,
    /// Endpoint override, for moto.
    pub endpoint: Option<String>,
}

impl SqsQueueConfig {
    /// The settings, or `None` without `POLL_QUEUE_URL` (ticks wait in this process).
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(queue_url) = env.get("POLL_QUEUE_URL") else {
            return Ok(None);
        };
        if !queue_url.starts_with("https://") && !queue_url.starts_with("http://") {
            return Err(ConfigError::invalid(
                "POLL_QUEUE_URL",
                format!("{queue_url:?} is not a queue URL"),
            ));
        }
        Ok(Some(Self {
            queue_url,
            endpoint: env
                .get("AWS_ENDPOINT_URL_SQS")
                .or_else(|| env.get("AWS_ENDPOINT_URL")),
        }))
    }

    /// What the runner's banner and `/ready` show.
    pub fn describe(&self) -> String {
        format!("sqs queue {}", self.queue_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::vars;

    fn load(pairs: &[(&str, &str)]) -> Result<Option<SqsQueueConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        SqsQueueConfig::from_env(&Env::new(&lookup, None))
    }

    #[test]
    fn the_queue_is_optional_and_must_be_a_url() {
        assert!(load(&[]).unwrap().is_none());
        let c = load(&[
            ("POLL_QUEUE_URL", "http://127.0.0.1:5000/123456789012/ticks"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let err = load(&[("POLL_QUEUE_URL", "ticks")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("POLL_QUEUE_URL"), "{err}");
    }
}
