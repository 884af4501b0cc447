//! HTTPS for the system under test: a throwaway self-signed certificate made at start.
//!
//! Load tests against TLS need a server that speaks it without anyone managing keys, so
//! the certificate lives only in memory and clients are expected to skip verification.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::SutError;

/// Builds an acceptor whose certificate names `localhost`, the loopback addresses and
/// `bind_ip` when it is a specific address; ALPN offers `h2` then `http/1.1`.
pub(crate) fn acceptor(bind_ip: IpAddr) -> Result<TlsAcceptor, SutError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !bind_ip.is_unspecified() && !bind_ip.is_loopback() {
        names.push(bind_ip.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| SutError::Tls(format!("generating the self-signed certificate: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SutError::Tls(format!("choosing protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| SutError::Tls(format!("loading the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn builds_an_acceptor_offering_h2_and_http1() {
        let acceptor = acceptor(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        let Ok(acceptor) = acceptor else {
            panic!("acceptor failed: {acceptor:?}", acceptor = acceptor.err());
        };
        let alpn = &acceptor.config().alpn_protocols;
        assert_eq!(alpn, &vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
