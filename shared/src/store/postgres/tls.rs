//! TLS of the PostgreSQL connections (`tokio-postgres` over rustls).
//!
//! `sslmode=require` verifies the server against the RDS CA bundle built into the binary
//! (`shared/certs/rds-ca-bundle.pem`; RDS certificates are not among the public web roots), or
//! against the CAs of `DATABASE_CA_FILE`, and checks that the certificate names the host
//! connected to. `prefer` encrypts without verifying, as libpq does; `disable` never calls
//! the connector.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::config::{DatabaseConfig, SslMode};
use crate::cause::Cause;
use crate::store::StoreError;
use crate::tls::{CaError, parse_pem, provider, read_pem_file, root_store};

/// Amazon's RDS CAs (the global bundle and RDS Proxy's), with their source noted at the top.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../../certs/rds-ca-bundle.pem");

/// The connector the pool hands every new connection, as `config` asks.
pub(super) fn connector(config: &DatabaseConfig) -> Result<MakeRustlsConnect, StoreError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Unavailable(Cause::new(e)))?;
    let tls = match config.ssl_mode {
        SslMode::Require => builder
            .with_root_certificates(trusted_cas(config).map_err(tls_setup_error)?)
            .with_no_client_auth(),
        // Disable never reaches the connector; Prefer encrypts whatever the server shows.
        SslMode::Prefer | SslMode::Disable => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(tls))
}

/// `mode` as `tokio-postgres` spells it (the URL's own `sslmode` already decided `mode`).
pub(super) fn client_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require => tokio_postgres::config::SslMode::Require,
    }
}

/// The CAs a server's certificate must chain to under `require`.
fn trusted_cas(config: &DatabaseConfig) -> Result<rustls::RootCertStore, CaError> {
    match &config.ca_file {
        Some(path) => root_store(read_pem_file(path)?, &path.display().to_string()),
        None => rds_bundle(),
    }
}

/// The built-in RDS CA bundle as trust anchors.
fn rds_bundle() -> Result<rustls::RootCertStore, CaError> {
    const ORIGIN: &str = "the built-in RDS CA bundle";
    root_store(parse_pem(RDS_CA_BUNDLE, ORIGIN)?, ORIGIN)
}

fn tls_setup_error(e: CaError) -> StoreError {
    StoreError::Unavailable(Cause::new(e))
}

/// `sslmode=prefer`: accepts any certificate but still checks that the server holds its key
/// (the handshake's signatures), so the session is encrypted to whoever answered.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_certificate_of_the_rds_bundle_is_a_usable_trust_anchor() {
        let store = rds_bundle().unwrap();
        // 115 of the global bundle and 5 behind RDS Proxy (see the bundle's header).
        assert_eq!(store.len(), 120);
    }
}
