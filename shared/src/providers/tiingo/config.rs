//! Settings of the Tiingo adapter: `TIINGO_API_KEY` (or `TIINGO_API_KEY_SECRET_ID`, read by its
//! `api_key` field), `TIINGO_BASE_URL`, `TIINGO_TIMEOUT_MS`, and its quota
//! (`TIINGO_CALLS_PER_MINUTE`, `_PER_HOUR`, `_PER_DAY`; `0` is no limit) whose defaults are
//! the free tier's.

use crate::config::{ConfigError, Env};
use crate::providers::settings::{ProviderSettings, QuotaLimits, SettingNames};

/// The variables and defaults of Tiingo.
pub const SETTINGS: SettingNames = SettingNames {
    key: "TIINGO_API_KEY",
    secret_id: "TIINGO_API_KEY_SECRET_ID",
    base_url: "TIINGO_BASE_URL",
    timeout_ms: "TIINGO_TIMEOUT_MS",
    quota: [
        "TIINGO_CALLS_PER_MINUTE",
        "TIINGO_CALLS_PER_HOUR",
        "TIINGO_CALLS_PER_DAY",
    ],
    default_base_url: "https://api.tiingo.com",
    default_quota: QuotaLimits {
        per_minute: 0,
        per_hour: 50,
        per_day: 1000,
    },
};

/// The settings, or `None` without an API key.
pub async fn from_env(env: &Env<'_>) -> Result<Option<ProviderSettings>, ConfigError> {
    ProviderSettings::keyed(env, &SETTINGS).await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn key_base_url_and_quota_are_read_like_every_provider() {
        crate::providers::settings::testing::check_keyed(&super::SETTINGS).await;
    }
}
