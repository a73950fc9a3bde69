//! Settings of the Twelve Data adapter: `TWELVEDATA_API_KEY` (or `TWELVEDATA_API_KEY_SECRET_ID`, read by its
//! `api_key` field), `TWELVEDATA_BASE_URL`, `TWELVEDATA_TIMEOUT_MS`, and its quota
//! (`TWELVEDATA_CALLS_PER_MINUTE`, `_PER_HOUR`, `_PER_DAY`; `0` is no limit) whose defaults are
//! the free tier's.

use crate::config::{ConfigError, Env};
use crate::providers::settings::{ProviderSettings, QuotaLimits, SettingNames};

/// The variables and defaults of Twelve Data.
pub const SETTINGS: SettingNames = SettingNames {
    key: "TWELVEDATA_API_KEY",
    secret_id: "TWELVEDATA_API_KEY_SECRET_ID",
    base_url: "TWELVEDATA_BASE_URL",
    timeout_ms: "TWELVEDATA_TIMEOUT_MS",
    quota: [
        "TWELVEDATA_CALLS_PER_MINUTE",
        "TWELVEDATA_CALLS_PER_HOUR",
        "TWELVEDATA_CALLS_PER_DAY",
    ],
    default_base_url: "https://api.twelvedata.com",
    default_quota: QuotaLimits {
        per_minute: 8,
        per_hour: 0,
        per_day: 800,
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
