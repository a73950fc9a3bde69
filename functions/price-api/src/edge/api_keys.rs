//! API keys: who a request is, when the API is configured to ask.
//!
//! Keys come from `API_KEYS` or the secret named by `API_KEYS_SECRET_ID`, as JSON: either an
//! object of names to keys (`{"team-a": "k1", "team-b": "k2"}`) or a list that can give a
//! key its own limits and powers (`[{"name": "team-a", "key": "k1", "per_minute": 600,
//! "burst": 100, "max_jobs": 20, "max_symbol_ticks_per_minute": 120, "admin": false}]`).
//! `max_jobs` and `max_symbol_ticks_per_minute` bound the polling jobs a key owns (the
//! defaults are `POLL_MAX_JOBS_PER_KEY` and `POLL_MAX_SYMBOL_TICKS_PER_MINUTE`); an `admin`
//! key sees and manages every key's jobs.
//! Keys are kept only as SHA-256 digests and compared in constant time, so neither the
//! comparison's duration nor a memory dump gives a key away.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use market_data::ratelimit::{Quota, QuotaError};

/// Shortest key accepted: anything shorter is guessable.
pub const MIN_KEY_LEN: usize = 16;

/// One client's key.
#[derive(Clone)]
pub struct ApiKey {
    /// The client's name: in logs and rate-limit keys, never the key itself.
    pub name: String,
    /// Its own limit, when it has one; else the default limit applies.
    pub quota: Option<Quota>,
    /// Its own limit of polling jobs, when it has one.
    pub max_jobs: Option<u32>,
    /// Its own limit of symbol-ticks per minute across its jobs, when it has one.
    pub max_symbol_ticks_per_minute: Option<u32>,
    /// Whether it sees and manages every key's jobs.
    pub admin: bool,
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("max_jobs", &self.max_jobs)
            .field(
                "max_symbol_ticks_per_minute",
                &self.max_symbol_ticks_per_minute,
            )
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// Every accepted key.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
}

/// Why a key list cannot be used. Never quotes a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeysError {
    /// Not JSON of either accepted shape.
    #[error(
        "expected a JSON object of names to keys, or a list of {{name, key, per_minute?, burst?}}: {0}"
    )]
    Malformed(String),
    /// No key at all.
    #[error("no keys given")]
    Empty,
    /// A key too short to be safe.
    #[error("the key of {name:?} is shorter than {MIN_KEY_LEN} characters")]
    TooShort {
        /// The key's name.
        name: String,
    },
    /// Two keys with the same name, or the same key twice.
    #[error("{0:?} appears twice")]
    Duplicate(String),
    /// A limit that cannot be counted: zero, or faster than one request a microsecond.
    #[error("the limit of {name:?} is unusable: {source}")]
    BadQuota {
        /// The key's name.
        name: String,
        /// What is wrong with it.
        source: QuotaError,
    },
    /// A zero job limit.
    #[error(
        "the job limits of {name:?} (max_jobs, max_symbol_ticks_per_minute) must be at least 1"
    )]
    BadJobLimit {
        /// The key's name.
        name: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysJson {
    Map(std::collections::BTreeMap<String, String>),
    List(Vec<KeyJson>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyJson {
    name: String,
    key: String,
    per_minute: Option<u32>,
    burst: Option<u32>,
    #[serde(default)]
    max_jobs: Option<u32>,
    #[serde(default)]
    max_symbol_ticks_per_minute: Option<u32>,
    #[serde(default)]
    admin: bool,
}

impl ApiKeys {
    /// Parses the JSON of `API_KEYS`.
    pub fn parse(json: &str) -> Result<Self, ApiKeysError> {
        let parsed: KeysJson =
            serde_json::from_str(json).map_err(|e| ApiKeysError::Malformed(redact(&e)))?;
        let entries: Vec<KeyJson> = match parsed {
            KeysJson::Map(map) => map
                .into_iter()
                .map(|(name, key)| KeyJson {
                    name,
                    key,
                    per_minute: None,
                    burst: None,
                    max_jobs: None,
                    max_symbol_ticks_per_minute: None,
                    admin: false,
                })
                .collect(),
            KeysJson::List(list) => list,
        };
        if entries.is_empty() {
            return Err(ApiKeysError::Empty);
        }
        let mut keys: Vec<ApiKey> = Vec::with_capacity(entries.len());
        for e in entries {
            if e.key.chars().count() < MIN_KEY_LEN {
                return Err(ApiKeysError::TooShort { name: e.name });
            }
            let quota = match (e.per_minute, e.burst) {
                (None, None) => None,
                (per_minute, burst) => {
                    let per_minute = per_minute.unwrap_or(0);
                    let burst = burst.unwrap_or(per_minute);
                    match Quota::new(per_minute, burst) {
                        Ok(quota) => Some(quota),
                        Err(source) => {
                            return Err(ApiKeysError::BadQuota {
                                name: e.name,
                                source,
                            });
                        }
                    }
                }
            };
            if e.max_jobs == Some(0) || e.max_symbol_ticks_per_minute == Some(0) {
                return Err(ApiKeysError::BadJobLimit { name: e.name });
            }
            let digest = digest(&e.key);
            if keys.iter().any(|k| k.name == e.name || k.digest == digest) {
                return Err(ApiKeysError::Duplicate(e.name));
            }
            keys.push(ApiKey {
                name: e.name,
                quota,
                max_jobs: e.max_jobs,
                max_symbol_ticks_per_minute: e.max_symbol_ticks_per_minute,
                admin: e.admin,
                digest,
            });
        }
        Ok(Self { keys })
    }

    /// The key `presented` belongs to, if any. Every stored key is compared, in constant
    /// time, whatever matches, so timing says nothing about which key (or how much of one)
    /// was right.
    pub fn find(&self, presented: &str) -> Option<&ApiKey> {
        let wanted = digest(presented);
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&wanted)) {
                found = Some(key);
            }
        }
        found
    }

    /// The key named `name` (a [`crate::middleware::access::Caller`]'s), if any.
    pub fn by_name(&self, name: &str) -> Option<&ApiKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none (never true for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// serde_json's message can quote the input near the error: keep only its position.
fn redact(e: &serde_json::Error) -> String {
    format!("invalid JSON at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "alpha-key-0123456789";
    const B: &str = "bravo-key-0123456789";

    #[test]
    fn both_shapes_are_accepted() {
        let map = ApiKeys::parse(&format!(r#"{{"team-a":"{A}","team-b":"{B}"}}"#)).unwrap();
        assert_eq!(map.find(A).unwrap().name, "team-a");
        assert_eq!(map.find(B).unwrap().name, "team-b");
        let list = ApiKeys::parse(&format!(
            r#"[{{"name":"team-a","key":"{A}","per_minute":600,"burst":50}},{{"name":"team-b","key":"{B}"}}]"#
        ))
        .unwrap();
        assert_eq!(
            list.find(A).unwrap().quota,
            Some(Quota {
                per_minute: 600,
                burst: 50
            })
        );
        assert_eq!(list.find(B).unwrap().quota, None);
        let limited = ApiKeys::parse(&format!(
            r#"[{{"name":"a","key":"{A}","max_jobs":3,"max_symbol_ticks_per_minute":12}},{{"name":"root","key":"{B}","admin":true}}]"#
        ))
        .unwrap();
        let a = limited.by_name("a").unwrap();
        assert_eq!(
            (a.max_jobs, a.max_symbol_ticks_per_minute, a.admin),
            (Some(3), Some(12), false)
        );
        assert!(limited.by_name("root").unwrap().admin);
    }

    #[test]
    fn a_wrong_or_partial_key_matches_nothing() {
        let keys = ApiKeys::parse(&format!(r#"{{"team-a":"{A}"}}"#)).unwrap();
        for wrong in ["", "alpha", &A[..A.len() - 1], &format!("{A}x"), B] {
            assert!(keys.find(wrong).is_none(), "{wrong}");
        }
    }

    #[test]
    fn unsafe_lists_are_refused_without_quoting_keys() {
        let cases = [
            ("not json", "invalid JSON"),
            ("{}", "no keys"),
            (r#"{"a":"short"}"#, "shorter than"),
            (
                &format!(r#"[{{"name":"a","key":"{A}"}},{{"name":"a","key":"{B}"}}]"#),
                "twice",
            ),
            (
                &format!(r#"[{{"name":"a","key":"{A}"}},{{"name":"b","key":"{A}"}}]"#),
                "twice",
            ),
            (
                &format!(r#"[{{"name":"a","key":"{A}","per_minute":0}}]"#),
                "at least 1",
            ),
            (&format!(r#"{{"a":"{A}","b":"{A}x"#), "invalid JSON"),
            (
                &format!(r#"[{{"name":"a","key":"{A}","max_jobs":0}}]"#),
                "job limits",
            ),
        ];
        for (json, expected) in cases {
            let err = ApiKeys::parse(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
            assert!(!err.contains(A) && !err.contains("short\""), "{err}");
        }
    }

    #[test]
    fn a_limit_too_fine_to_count_is_refused_naming_its_key() {
        let json = format!(r#"[{{"name":"team-fast","key":"{A}","per_minute":60000001}}]"#);
        let err = ApiKeys::parse(&json).unwrap_err().to_string();
        assert!(
            err.contains("team-fast") && err.contains("60000000"),
            "{err}"
        );
        let fastest = format!(r#"[{{"name":"team-fast","key":"{A}","per_minute":60000000}}]"#);
        let keys = ApiKeys::parse(&fastest).unwrap();
        let quota = keys.find(A).unwrap().quota.unwrap();
        assert!(quota.interval_us() > 0);
    }

    #[test]
    fn debug_output_holds_no_key() {
        let keys = ApiKeys::parse(&format!(r#"{{"team-a":"{A}"}}"#)).unwrap();
        assert!(!format!("{keys:?}").contains(A));
    }
}
