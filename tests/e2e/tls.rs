//! Corporate networks inspect TLS with their own CA: `--ca-cert` makes fetch trust it. The
//! test makes a CA and a server certificate for localhost, serves the catalog over HTTPS
//! with them, and checks that fetch refuses the server without the CA and accepts it with.

use std::sync::Arc;

use crate::support::http::Server;
use crate::support::*;

/// A CA certificate (PEM) and a rustls server configuration with a certificate it signed.
fn corporate_ca() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "ferry test corporate CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}

#[test]
fn an_extra_ca_certificate_is_trusted() {
    let s = Scratch::new();
    let (ca_pem, config) = corporate_ca();
    let (text, mut files) = catalog(&three_updates(), "");
    files.insert("catalog.json".into(), text.into_bytes());
    let server = Server::start_tls(files, config);
    let (secret, _) = s.key("signer");

    s.pack_run(&server.url("catalog.json"), &secret, &[], &[])
        .refused(4, &[&format!("download {}", server.url("catalog.json")), "certificate"]);

    let ca = s.path("corporate-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let bundle = s.pack(&server.url("catalog.json"), &secret, &["--ca-cert", ca.to_str().unwrap()]);
    assert!(bundle.is_file());
    assert_eq!(server.requests().len(), 4, "the catalog and three files came over HTTPS");
}
