//! Settings of the Alpha Vantage adapter: `ALPHAVANTAGE_API_KEY` (or `ALPHAVANTAGE_API_KEY_SECRET_ID`, read by its
//! `api_key` field), `ALPHAVANTAGE_BASE_URL`, `ALPHAVANTAGE_TIMEOUT_MS`, and its quota
//! (`ALPHAVANTAGE_CALLS_PER_MINUTE`, `_PER_HOUR`, `_PER_DAY`; `0` is no limit) whose defaults are
//! the free tier's.

use crate::config::{ConfigError, Env};
use crate::providers::settings::{ProviderSettings, QuotaLimits, SettingNames};

/// The variables and defaults of Alpha Vantage.
pub const SETTINGS: SettingNames = SettingNames {
    key: "ALPHAVANTAGE_API_KEY",
    secret_id: "ALPHAVANTAGE_API_KEY_SECRET_ID",
    base_url: "ALPHAVANTAGE_BASE_URL",
    timeout_ms: "ALPHAVANTAGE_TIMEOUT_MS",
    quota: [
        "ALPHAVANTAGE_CALLS_PER_MINUTE",
        "ALPHAVANTAGE_CALLS_PER_HOUR",
        "ALPHAVANTAGE_CALLS_PER_DAY",
    ],
    default_base_url: "https://www.alphavantage.co",
    default_quota: QuotaLimits {
        per_minute: 5,
        per_hour: 0,
        per_day: 25,
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
