//! HTTPS with the generated certificate: h2 and http/1.1 as negotiated by ALPN.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{StatusCode, Version};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use stampede_sut::Config;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::{H1, H2, start, tcp};

/// Accepts any certificate but still checks handshake signatures, and remembers
/// nothing: the server's certificate is throwaway by design.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

async fn connect(addr: SocketAddr, alpn: &[&[u8]]) -> TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = AcceptAnyCert(provider.signature_verification_algorithms);
    let mut config = ClientConfig::builder_with_provider(Arc::<CryptoProvider>::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp(addr).await)
        .await
        .expect("TLS handshake")
}

#[tokio::test]
async fn https_negotiates_h2_or_http1() {
    let server = start(Config {
        tls: true,
        ..Config::default()
    });
    let addr = server.local_addr();
    assert_eq!(server.url(), format!("https://127.0.0.1:{}", addr.port()));

    let stream = connect(addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let h2 = H2::over(stream, &addr.to_string()).await;
    let reply = h2.get("/bytes/100000").await;
    assert_eq!(
        (reply.status, reply.version),
        (StatusCode::OK, Version::HTTP_2)
    );
    assert_eq!(reply.body.len(), 100_000);

    let stream = connect(addr, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut h1 = H1::over(stream).await;
    for _ in 0..3 {
        let reply = h1.get("/").await;
        assert_eq!(
            (reply.status, reply.version),
            (StatusCode::OK, Version::HTTP_11)
        );
        assert_eq!(reply.text(), "ok");
    }
}

#[tokio::test]
async fn plain_http_is_refused_on_a_tls_port() {
    let server = start(Config {
        tls: true,
        ..Config::default()
    });
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<
        _,
        http_body_util::Empty<bytes::Bytes>,
    >(hyper_util::rt::TokioIo::new(tcp(server.local_addr()).await))
    .await
    .expect("handshake is local");
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .body(http_body_util::Empty::new())
        .expect("request");
    let result = sender.send_request(req).await;
    assert!(
        result.is_err(),
        "a TLS port answered plain HTTP: {result:?}"
    );
}
