//! Settings of the Financial Modeling Prep adapter: `FMP_API_KEY` (or `FMP_API_KEY_SECRET_ID`, read by its
//! `api_key` field), `FMP_BASE_URL`, `FMP_TIMEOUT_MS`, and its quota
//! (`FMP_CALLS_PER_MINUTE`, `_PER_HOUR`, `_PER_DAY`; `0` is no limit) whose defaults are
//! the free tier's.

use crate::config::{ConfigError, Env};
use crate::providers::settings::{ProviderSettings, QuotaLimits, SettingNames};

/// The variables and defaults of Financial Modeling Prep.
pub const SETTINGS: SettingNames = SettingNames {
    key: "FMP_API_KEY",
    secret_id: "FMP_API_KEY_SECRET_ID",
    base_url: "FMP_BASE_URL",
    timeout_ms: "FMP_TIMEOUT_MS",
    quota: [
        "FMP_CALLS_PER_MINUTE",
        "FMP_CALLS_PER_HOUR",
        "FMP_CALLS_PER_DAY",
    ],
    default_base_url: "https://financialmodelingprep.com",
    default_quota: QuotaLimits {
        per_minute: 0,
        per_hour: 0,
        per_day: 250,
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
