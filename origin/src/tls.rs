//! TLS server configurations (rustls with the `ring` provider) offering ALPN `h2` and
//! `http/1.1`: from PEM certificate and key files, or a self-signed certificate for
//! local use (`localhost`, `127.0.0.1`, `::1`).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// ALPN protocols, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid PEM ({source})")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key found")]
    NoKey { path: PathBuf },
    #[error("the certificate and key from {cert} and {key} were refused: {source}")]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS configuration: {0}")]
    Config(rustls::Error),
}

/// A server configuration from a PEM certificate chain and a PEM private key (PKCS#8,
/// PKCS#1 or SEC1).
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key.to_owned(),
        },
        source => TlsError::Pem {
            path: key.to_owned(),
            source,
        },
    })?;
    build(chain, private).map_err(|source| TlsError::Rejected {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// A self-signed certificate and the configuration serving it.
pub struct SelfSigned {
    pub config: Arc<ServerConfig>,
    /// The certificate, PEM, for clients to trust.
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
}

/// A fresh self-signed certificate for `localhost`, `127.0.0.1` and `::1`.
pub fn self_signed() -> Result<SelfSigned, TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names)?;
    let cert_der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let config = build(vec![cert_der.clone()], key).map_err(TlsError::Config)?;
    Ok(SelfSigned {
        config,
        cert_pem: cert.pem(),
        cert_der,
    })
}

fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_offers_h2_and_http1() {
        let s = self_signed().expect("self-signed");
        assert_eq!(
            s.config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(s.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn pem_files_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("origin-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key_pair = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        let cert = params.self_signed(&key_pair).expect("cert");
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(&key_path, key_pair.serialize_pem()).expect("write");
        let config = from_pem_files(&cert_path, &key_path).expect("config");
        assert_eq!(config.alpn_protocols.len(), 2);

        let missing = dir.join("missing.pem");
        let err = from_pem_files(&missing, &key_path).expect_err("missing");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        // A key file given as the certificate: no certificate in it.
        let err = from_pem_files(&key_path, &key_path).expect_err("no cert");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let err = from_pem_files(&cert_path, &cert_path).expect_err("no key");
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
