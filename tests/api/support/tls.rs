//! A private certificate authority for the TLS tests.

/// A private CA with a server certificate for `localhost` (files in `dir`: `ca.pem`,
/// `server.pem`, `server.key`) and a client certificate (`client_pem`, with its key; also
/// `client.pem` and `client.key` in `dir`).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub client_pem: String,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: rcgen gives every certificate the same subject, and OpenSSL (Redis,
    // PostgreSQL) takes a certificate whose issuer is its own subject for a self-signed one.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cps test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = leaf(&["localhost"], "localhost")
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = leaf(&["alcs"], "cps")
        .signed_by(&client_key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        client_pem: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
        dir,
    }
}

/// A certificate's parameters: its names and its subject's common name.
fn leaf(names: &[&str], common_name: &str) -> rcgen::CertificateParams {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
}

/// An HTTPS client that trusts the private CA, reaching `localhost` at `addr`; with the client
/// certificate when `identity`.
pub fn https_client(pki: &Pki, addr: std::net::SocketAddr, identity: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr);
    if identity {
        builder = builder.identity(reqwest::Identity::from_pem(pki.client_pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}
