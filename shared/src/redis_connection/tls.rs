//! The Redis client for a URL: plain, TLS trusting the webpki roots (ElastiCache), or TLS
//! trusting the CAs of `REDIS_CA_FILE` (a server with a CA of its own).

use secrecy::ExposeSecret;

use super::{RedisConfig, RedisFailure};
use crate::cause::Cause;

/// The client for `config`'s URL and CAs. Errors never quote the URL: it may hold the token.
pub(super) fn client(config: &RedisConfig) -> Result<redis::Client, RedisFailure> {
    let url = config.url.expose_secret();
    if url.starts_with("rediss://") {
        // redis builds its rustls configuration from the process default provider.
        crate::tls::install_default_provider();
    }
    let client = match &config.ca_file {
        None => redis::Client::open(url),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                RedisFailure(Cause::msg(format!(
                    "REDIS_CA_FILE {}: cannot read it: {e}",
                    path.display()
                )))
            })?;
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
        }
    };
    client.map_err(|e| {
        RedisFailure(Cause::msg(format!(
            "invalid REDIS_URL or REDIS_CA_FILE: {:?}",
            e.kind()
        )))
    })
}
