//! TLS for the API (contract section 2): TLS 1.2 and 1.3 only, with rustls and the `ring`
//! provider (no cmake needed, one provider in the graph), optionally requiring client
//! certificates signed by a configured CA (mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::setting::{Invalid, flag};

/// Builds the server configuration. Errors name the setting whose file is at fault.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, Invalid> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| {
            Invalid::new(
                "tls_cert",
                format!("cannot read certificates from {}: {e}", cert.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(Invalid::new(
            "tls_cert",
            format!("no certificate in {}", cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Invalid::new(
            "tls_key",
            format!("cannot read a private key from {}: {e}", key.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Invalid::new("tls_cert", format!("TLS: {e}")))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect)
                .map_err(|e| {
                    Invalid::new(
                        "tls_client_ca",
                        format!("cannot read certificates from {}: {e}", path.display()),
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(Invalid::new(
                    "tls_client_ca",
                    format!("no usable CA certificate in {}", path.display()),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Invalid::new("tls_client_ca", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| Invalid::new("tls_key", format!("does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// HTTPS for the listeners: the files, read (and the rustls configuration built) at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by these CAs (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Installs `ring` as the process's TLS provider, for the clients that take rustls's default
/// (Redis over `rediss://`, PostgreSQL with `sslmode`). Idempotent: the first call wins.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The files a TLS client is given: a CA to verify its server with (instead of the system
/// roots) and a certificate chain with its key to present (mutual TLS). Checked for presence
/// with the settings, read and parsed at start-up ([`ClientFiles::read`]).
#[derive(Debug, Clone, Default)]
pub struct ClientFiles {
    pub ca: Option<PathBuf>,
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The settings that name the CA, the certificate and the key (their ids), for errors.
    settings: [&'static str; 3],
}

/// The same files are the same configuration, whichever settings name them.
impl PartialEq for ClientFiles {
    fn eq(&self, other: &Self) -> bool {
        (&self.ca, &self.identity) == (&other.ca, &other.identity)
    }
}

impl Eq for ClientFiles {}

/// [`ClientFiles`] read: PEM bytes, each checked to hold what it should.
#[derive(Clone, Default)]
pub struct ClientMaterial {
    pub ca_pem: Option<Vec<u8>>,
    /// The certificate chain's PEM and the key's PEM.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientFiles {
    /// `settings` names the CA's, the certificate's and the key's setting (their ids). A
    /// certificate needs its key and a key its certificate.
    pub fn check(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        settings: [&'static str; 3],
    ) -> Result<Self, Invalid> {
        let required = |missing: &'static str, with: &str| {
            Invalid::new(missing, format!("required with {}", flag(with)))
        };
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => return Err(required(settings[2], settings[1])),
            (None, Some(_)) => return Err(required(settings[1], settings[2])),
        };
        Ok(Self {
            ca,
            identity,
            settings,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.identity.is_none()
    }

    /// Reads the files; an error names the setting whose file is at fault.
    pub fn read(&self) -> Result<ClientMaterial, Invalid> {
        let [ca_setting, cert_setting, key_setting] = self.settings;
        let ca_pem = match &self.ca {
            None => None,
            Some(path) => {
                let pem = read(path, ca_setting)?;
                let certs = certificates(&pem, path, ca_setting)?;
                let mut roots = RootCertStore::empty();
                if roots.add_parsable_certificates(certs).0 == 0 {
                    return Err(Invalid::new(
                        ca_setting,
                        format!("no usable CA certificate in {}", path.display()),
                    ));
                }
                Some(pem)
            }
        };
        let identity_pem = match &self.identity {
            None => None,
            Some((cert, key)) => {
                let cert_pem = read(cert, cert_setting)?;
                certificates(&cert_pem, cert, cert_setting)?;
                let key_pem = read(key, key_setting)?;
                PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    Invalid::new(
                        key_setting,
                        format!("cannot read a private key from {}: {e}", key.display()),
                    )
                })?;
                Some((cert_pem, key_pem))
            }
        };
        Ok(ClientMaterial {
            ca_pem,
            identity_pem,
        })
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, Invalid> {
    std::fs::read(path)
        .map_err(|e| Invalid::new(setting, format!("cannot read {}: {e}", path.display())))
}

/// The certificates in `pem`, at least one.
fn certificates(
    pem: &[u8],
    path: &Path,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Invalid::new(
                setting,
                format!("cannot read certificates from {}: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(Invalid::new(
            setting,
            format!("no certificate in {}", path.display()),
        ));
    }
    Ok(certs)
}
