//! Self-signed TLS identities for the mock servers (rcgen), and rustls configurations built
//! from them with the `ring` provider (no OpenSSL, no aws-lc).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::MockError;

/// A certificate and its key. The certificate is self-signed: trust it by giving `cert_pem`
/// to a client as its CA file (dircache's `ca_file`), or expect a verification failure.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsIdentity {
    /// A fresh self-signed certificate (ECDSA P-256) valid now for these names; a name that
    /// parses as an IP address becomes an IP SAN (`&["localhost", "127.0.0.1"]`).
    pub fn self_signed(names: &[&str]) -> Result<TlsIdentity, MockError> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let params =
            rcgen::CertificateParams::new(names).map_err(|e| MockError::Cert(e.to_string()))?;
        TlsIdentity::from_params(params)
    }

    /// Like [`TlsIdentity::self_signed`], but valid only in the year 2000: a client that
    /// trusts it must still refuse it as expired.
    pub fn expired(names: &[&str]) -> Result<TlsIdentity, MockError> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params =
            rcgen::CertificateParams::new(names).map_err(|e| MockError::Cert(e.to_string()))?;
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        TlsIdentity::from_params(params)
    }

    /// An identity from PEM text (e.g. a certificate the demo binary wrote). With an empty
    /// `key_pem` it can only be trusted ([`TlsIdentity::client_config`]), not served.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<TlsIdentity, MockError> {
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| MockError::Cert(e.to_string()))?;
        let key_der = if key_pem.trim().is_empty() {
            Vec::new()
        } else {
            PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| MockError::Cert(e.to_string()))?
                .secret_pkcs8_der()
                .to_vec()
        };
        Ok(TlsIdentity {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            cert_der: cert.to_vec(),
            key_der,
        })
    }

    fn from_params(params: rcgen::CertificateParams) -> Result<TlsIdentity, MockError> {
        let key = rcgen::KeyPair::generate().map_err(|e| MockError::Cert(e.to_string()))?;
        let cert = params.self_signed(&key).map_err(|e| MockError::Cert(e.to_string()))?;
        Ok(TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// Writes `cert_pem` to a file (for a client's CA file setting).
    pub fn write_cert_pem(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, &self.cert_pem)
    }

    /// The rustls server configuration presenting this certificate (TLS 1.2 and 1.3).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, MockError> {
        let cert = CertificateDer::from(self.cert_der.clone());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| MockError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| MockError::Tls(e.to_string()))?;
        Ok(Arc::new(config))
    }

    /// A rustls client configuration that trusts exactly this certificate (for tests that
    /// talk to a mock server themselves).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, MockError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert_der.clone()))
            .map_err(|e| MockError::Tls(e.to_string()))?;
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| MockError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
