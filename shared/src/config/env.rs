//! The one reader of the environment every settings type uses.
//!
//! Each adapter's settings read their own variables through [`Env`]: a typed number within a
//! range, a flag, one of a few words, a URL, or a secret given either as a value or as the id
//! of a Secrets Manager secret (`*_SECRET_ID`). Every error names the variable to fix and
//! never the value of a secret.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::bounded::parse_bounded;
use crate::secrets::{SecretError, SecretStore, SecretsManager};

/// Why the configuration cannot be used. Every variant names the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value that cannot be used.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// Both a value and a secret id were given for the same setting.
    #[error("set only one of {var} and {secret_var}")]
    Ambiguous {
        /// The variable holding the value.
        var: &'static str,
        /// The variable naming the secret.
        secret_var: &'static str,
    },
    /// A `*_SECRET_ID` could not be resolved.
    #[error("{var}: {source}")]
    Secret {
        /// The `*_SECRET_ID` variable.
        var: &'static str,
        /// What the secret store said.
        #[source]
        source: SecretError,
    },
}

impl ConfigError {
    /// `var` holds a value that cannot be used, for `reason`.
    pub fn invalid(var: &'static str, reason: impl Display) -> Self {
        Self::Invalid {
            var,
            reason: reason.to_string(),
        }
    }
}

/// What a secret holds, so each kind is read by its own field and no other.
///
/// A JSON secret is read by the field its kind uses; a secret that is not JSON is the value
/// itself. Guessing a field (`api_key`, else `password`, else `url`) would take a client named
/// `url` out of an `API_KEYS` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    /// The whole secret is the value, JSON or not (`API_KEYS`).
    Whole,
    /// A JSON secret holds the value in this field (`api_key`, `password`, `url`).
    Field(&'static str),
}

/// Where variables are looked up.
enum Lookup<'a> {
    Map(&'a HashMap<String, String>),
    Fn(&'a dyn Fn(&str) -> Option<String>),
}

/// The environment as the settings types read it: variables by name (blank counts as unset)
/// and the secret store that resolves `*_SECRET_ID` variables.
pub struct Env<'a> {
    lookup: Lookup<'a>,
    secrets: Option<&'a dyn SecretStore>,
}

/// The process environment, read once, with a Secrets Manager client when any variable names
/// a secret.
pub struct ProcessEnv {
    vars: HashMap<String, String>,
    secrets: Option<SecretsManager>,
}

impl ProcessEnv {
    /// Reads the process environment; creates a Secrets Manager client only when a
    /// `*_SECRET_ID` variable is set.
    pub async fn read() -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let secrets = if vars.keys().any(|k| k.ends_with("_SECRET_ID")) {
            Some(SecretsManager::from_env().await)
        } else {
            None
        };
        Self { vars, secrets }
    }

    /// The reader over this environment.
    pub fn env(&self) -> Env<'_> {
        Env {
            lookup: Lookup::Map(&self.vars),
            secrets: self.secrets.as_ref().map(|s| s as &dyn SecretStore),
        }
    }
}

impl<'a> Env<'a> {
    /// A reader over `lookup` (a variable's value by name) and `secrets`.
    pub fn new(
        lookup: &'a dyn Fn(&str) -> Option<String>,
        secrets: Option<&'a dyn SecretStore>,
    ) -> Self {
        Self {
            lookup: Lookup::Fn(lookup),
            secrets,
        }
    }

    /// The trimmed value of `var`; `None` when unset or blank.
    pub fn get(&self, var: &str) -> Option<String> {
        let raw = match &self.lookup {
            Lookup::Map(map) => map.get(var).cloned(),
            Lookup::Fn(f) => f(var),
        };
        raw.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// `var` as a whole number within `range`, or `default` when unset.
    pub fn number<T>(
        &self,
        var: &'static str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_bounded(&raw, range).map_err(|e| ConfigError::invalid(var, e)),
        }
    }

    /// `var` as a flag (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`), or `default`.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::invalid(
                var,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    /// `var` as one of `choices` (names compared without case); `None` when unset.
    pub fn one_of<T: Copy>(
        &self,
        var: &'static str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&raw))
            .map(|(_, value)| Some(*value))
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                ConfigError::invalid(
                    var,
                    format!("expected one of {}, got {raw:?}", names.join(", ")),
                )
            })
    }

    /// `var` parsed by `FromStr`, its error put in the variable's context; `None` when unset.
    pub fn parsed<T>(&self, var: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(var)
            .map(|raw| raw.parse::<T>().map_err(|e| ConfigError::invalid(var, e)))
            .transpose()
    }

    /// `var` as an `http(s)` base URL without its trailing `/`, or `default` when unset.
    pub fn base_url(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let url = self.get(var).unwrap_or_else(|| default.to_owned());
        check_scheme(var, url.as_str(), &["http", "https"])?;
        Ok(url.trim_end_matches('/').to_owned())
    }

    /// The value of `var`, or of the secret named by `secret_var` read as `field` says;
    /// `None` when neither is set.
    pub async fn secret(
        &self,
        var: &'static str,
        secret_var: &'static str,
        field: SecretField,
    ) -> Result<Option<SecretString>, ConfigError> {
        match (self.get(var), self.get(secret_var)) {
            (Some(_), Some(_)) => Err(ConfigError::Ambiguous { var, secret_var }),
            (Some(value), None) => Ok(Some(SecretString::from(value))),
            (None, None) => Ok(None),
            (None, Some(id)) => {
                let raw = self.secret_by_id(secret_var, &id).await?;
                secret_field(raw, field).map(Some).map_err(|missing| {
                    ConfigError::invalid(
                        secret_var,
                        format!("the secret is a JSON object without a {missing:?} field"),
                    )
                })
            }
        }
    }

    /// The whole secret `id`, which `secret_var` named.
    pub async fn secret_by_id(
        &self,
        secret_var: &'static str,
        id: &str,
    ) -> Result<SecretString, ConfigError> {
        let store = self.secrets.ok_or_else(|| {
            ConfigError::invalid(secret_var, "is set but no secret store is available")
        })?;
        store
            .secret_string(id)
            .await
            .map_err(|source| ConfigError::Secret {
                var: secret_var,
                source,
            })
    }
}

/// Fails unless `url` starts with one of `schemes` and `://`.
pub fn check_scheme(var: &'static str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if schemes.contains(&s.as_str()) => Ok(()),
        _ => Err(ConfigError::invalid(
            var,
            format!(
                "expected a URL starting with {}://",
                schemes.join(":// or ")
            ),
        )),
    }
}

/// The value in `raw` as `field` says; `Err` names the field a JSON object lacks.
fn secret_field(raw: SecretString, field: SecretField) -> Result<SecretString, &'static str> {
    let SecretField::Field(name) = field else {
        return Ok(raw);
    };
    match serde_json::from_str::<serde_json::Value>(raw.expose_secret()) {
        Ok(serde_json::Value::Object(map)) => map
            .get(name)
            .and_then(|v| v.as_str())
            .map(|s| SecretString::from(s.to_owned()))
            .ok_or(name),
        _ => Ok(raw),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! An environment from pairs and a secret store with fixed answers, for the settings
    //! tests of every adapter.

    use std::collections::HashMap;

    use async_trait::async_trait;
    use secrecy::SecretString;

    use crate::secrets::{SecretError, SecretStore};

    /// Variables from `pairs`.
    pub fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Secrets by id: `plain`, `json-key` (`{"api_key"}`), `json-password`, `rds` (an RDS
    /// secret), `keys-with-url` (an `API_KEYS` map with a client named `url`).
    pub struct FakeSecrets;

    #[async_trait]
    impl SecretStore for FakeSecrets {
        async fn secret_string(&self, id: &str) -> Result<SecretString, SecretError> {
            let value = match id {
                "plain" => "plain-value",
                "json-key" => r#"{"api_key":"from-json"}"#,
                "json-password" => r#"{"username":"app","password":"from-json"}"#,
                "rds" => {
                    r#"{"username":"app","password":"p@ss word","host":"db.example","port":5432,"dbname":"market"}"#
                }
                "keys-with-url" => {
                    r#"{"url":"a-very-long-test-key-1","dashboard":"a-very-long-test-key-2"}"#
                }
                _ => {
                    return Err(SecretError::Unavailable {
                        id: id.to_owned(),
                        reason: "ResourceNotFoundException".into(),
                    });
                }
            };
            Ok(SecretString::from(value.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeSecrets;
    use super::*;

    fn env_of<'a>(lookup: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env::new(lookup, Some(&FakeSecrets))
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let lookup = |k: &str| match k {
            "A" => Some("  x ".to_owned()),
            "B" => Some("   ".to_owned()),
            _ => None,
        };
        let env = env_of(&lookup);
        assert_eq!(env.get("A").as_deref(), Some("x"));
        assert_eq!(env.get("B"), None);
    }

    #[test]
    fn numbers_flags_and_choices_name_their_variable() {
        let lookup = |k: &str| match k {
            "N" => Some("0".to_owned()),
            "F" => Some("maybe".to_owned()),
            "C" => Some("tls".to_owned()),
            _ => None,
        };
        let env = env_of(&lookup);
        assert_eq!(
            env.number::<u32>("N", 5, 1..=10).unwrap_err().to_string(),
            "N: expected a whole number from 1 to 10, got \"0\""
        );
        assert_eq!(env.number::<u32>("UNSET", 5, 1..=10).unwrap(), 5);
        assert!(
            env.flag("F", false)
                .unwrap_err()
                .to_string()
                .starts_with("F: ")
        );
        assert!(
            env.one_of("C", &[("ssl", 1), ("plaintext", 2)])
                .unwrap_err()
                .to_string()
                .starts_with("C: expected one of ssl, plaintext")
        );
    }

    #[tokio::test]
    async fn a_json_secret_is_read_by_its_own_field_only() {
        let lookup = |k: &str| match k {
            "KEY_SECRET_ID" => Some("json-key".to_owned()),
            "PASSWORD_SECRET_ID" => Some("json-key".to_owned()),
            "KEYS_SECRET_ID" => Some("keys-with-url".to_owned()),
            _ => None,
        };
        let env = env_of(&lookup);
        let key = env
            .secret("KEY", "KEY_SECRET_ID", SecretField::Field("api_key"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key.expose_secret(), "from-json");
        // A password secret holding only an api_key is refused, not guessed at.
        let err = env
            .secret(
                "PASSWORD",
                "PASSWORD_SECRET_ID",
                SecretField::Field("password"),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("PASSWORD_SECRET_ID: "), "{err}");
        // A whole-value secret keeps every field, `url` included.
        let keys = env
            .secret("KEYS", "KEYS_SECRET_ID", SecretField::Whole)
            .await
            .unwrap()
            .unwrap();
        assert!(keys.expose_secret().contains("dashboard"));
    }
}
