//! TLS pieces shared by the adapters that make their own TLS connections (PostgreSQL, and
//! Redis with a CA of its own): the one crypto provider, and trust anchors read from PEM.
//!
//! Two rustls crypto providers can end up compiled in through features (aws-lc-rs, which the
//! AWS SDKs and reqwest use, and ring); rustls then cannot pick one by itself and the first
//! TLS connection panics. So the configurations built here name aws-lc-rs explicitly, and
//! [`install_default_provider`] makes it the process default for the libraries that build
//! their own configuration (redis).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The crypto provider of every TLS configuration this crate builds.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes aws-lc-rs the process-wide default provider, unless one is already installed.
/// Idempotent; call it before handing TLS to a library that uses rustls's default.
pub fn install_default_provider() {
    // Err means a provider is already installed: whichever it is, it is one, not none.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Certificates that could not be used as trust anchors.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct CaError {
    /// Where they came from (a file's path, or the bundle's name).
    pub origin: String,
    /// What is wrong with them.
    pub reason: String,
}

/// The certificates of a PEM file, which must hold at least one.
pub fn read_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let origin = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| CaError {
        origin: origin.clone(),
        reason: format!("cannot read it: {e}"),
    })?;
    parse_pem(&pem, &origin)
}

/// The certificates of `pem` (text outside `BEGIN`/`END` blocks is ignored), at least one.
pub fn parse_pem(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError {
            origin: origin.to_owned(),
            reason: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(CaError {
            origin: origin.to_owned(),
            reason: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

/// A store of trust anchors holding every one of `certs`.
pub fn root_store(
    certs: Vec<CertificateDer<'static>>,
    origin: &str,
) -> Result<RootCertStore, CaError> {
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        store.add(cert).map_err(|e| CaError {
            origin: origin.to_owned(),
            reason: format!("certificate {} is not a usable CA: {e}", i + 1),
        })?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_is_not_a_certificate_is_refused_with_its_origin() {
        let err = parse_pem(b"# just a comment\n", "ca.pem").unwrap_err();
        assert_eq!(err.to_string(), "ca.pem: holds no PEM certificate");
        let err = read_pem_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/ca.pem: cannot read it"),
            "{err}"
        );
    }
}
