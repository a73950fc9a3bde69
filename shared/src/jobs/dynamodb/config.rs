//! Settings of the DynamoDB job store: `JOBS_TABLE`, and the endpoint override
//! (`AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`) for DynamoDB Local.

use crate::config::{ConfigError, Env};

/// DynamoDB job store settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoJobsConfig {
    /// The table of jobs.
    pub table: String,
    /// Endpoint override, for DynamoDB Local.
    pub endpoint: Option<String>,
}

impl DynamoJobsConfig {
    /// The settings, or `None` without `JOBS_TABLE` (jobs kept in memory).
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(table) = env.get("JOBS_TABLE") else {
            return Ok(None);
        };
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(ConfigError::invalid(
                "JOBS_TABLE",
                format!("{table:?} is not a DynamoDB table name"),
            ));
        }
        Ok(Some(Self {
            table,
            endpoint: env
                .get("AWS_ENDPOINT_URL_DYNAMODB")
                .or_else(|| env.get("AWS_ENDPOINT_URL")),
        }))
    }

    /// What the runner's banner and `/ready` show.
    pub fn describe(&self) -> String {
        format!("dynamodb table {}", self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::testing::vars;

    fn load(pairs: &[(&str, &str)]) -> Result<Option<DynamoJobsConfig>, ConfigError> {
        let map = vars(pairs);
        let lookup = |k: &str| map.get(k).cloned();
        DynamoJobsConfig::from_env(&Env::new(&lookup, None))
    }

    #[test]
    fn the_specific_endpoint_wins_over_the_general_one() {
        assert!(load(&[]).unwrap().is_none());
        let c = load(&[
            ("JOBS_TABLE", "jobs"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8001"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:8001"));
        let err = load(&[("JOBS_TABLE", "a b")]).unwrap_err().to_string();
        assert!(err.starts_with("JOBS_TABLE"), "{err}");
    }
}
