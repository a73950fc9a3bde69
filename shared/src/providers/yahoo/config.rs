//! Settings of the Yahoo chart adapter: off unless `YAHOO_ENABLED=true` (the endpoint is
//! unofficial and Yahoo's terms allow personal use only), `YAHOO_BASE_URL`,
//! `YAHOO_TIMEOUT_MS`, and a self-imposed quota (`YAHOO_CALLS_PER_MINUTE`, `_PER_HOUR`,
//! `_PER_DAY`; default 30 a minute, 1,000 a day) to stay polite.

use crate::config::{ConfigError, Env};
use crate::providers::settings::{ProviderSettings, QuotaLimits, SettingNames};

/// The variables and defaults of Yahoo (keyless: the key names are never read).
pub const SETTINGS: SettingNames = SettingNames {
    key: "YAHOO_API_KEY",
    secret_id: "YAHOO_API_KEY_SECRET_ID",
    base_url: "YAHOO_BASE_URL",
    timeout_ms: "YAHOO_TIMEOUT_MS",
    quota: [
        "YAHOO_CALLS_PER_MINUTE",
        "YAHOO_CALLS_PER_HOUR",
        "YAHOO_CALLS_PER_DAY",
    ],
    default_base_url: "https://query1.finance.yahoo.com",
    default_quota: QuotaLimits {
        per_minute: 30,
        per_hour: 0,
        per_day: 1_000,
    },
};

/// The settings when `YAHOO_ENABLED` is true, else `None`.
pub fn from_env(env: &Env<'_>) -> Result<Option<ProviderSettings>, ConfigError> {
    if !env.flag("YAHOO_ENABLED", false)? {
        return Ok(None);
    }
    ProviderSettings::keyless(env, &SETTINGS).map(Some)
}
