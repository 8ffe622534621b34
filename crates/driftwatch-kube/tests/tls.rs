//! The client over HTTPS, as it talks to a real API server: the server's certificate checked
//! against the cluster's CA (or not, with `insecure`), and a client certificate presented when
//! configured. The server is a few lines of rustls on 127.0.0.1 that answers every request
//! with one Pod; the certificates are in `tests/fixtures`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use driftwatch_kube::{ClientCertPem, KubeClient, KubeConfig, KubeError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &[u8] = include_bytes!("fixtures/ca.pem");
const SERVER: &[u8] = include_bytes!("fixtures/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("fixtures/server-key.pem");
const CLIENT: &[u8] = include_bytes!("fixtures/client.pem");
const CLIENT_KEY: &[u8] = include_bytes!("fixtures/client-key.pem");

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop","uid":"u-1"}}"#;

/// An HTTPS server for `connections` connections; the thread returns, for each, whether the
/// handshake completed and whether the client presented a certificate.
fn https_server(
    require_client_cert: bool,
    connections: usize,
) -> (String, JoinHandle<Vec<(bool, bool)>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CA).unwrap())
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let certs = CertificateDer::pem_slice_iter(SERVER)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    let config = Arc::new(builder.with_single_cert(certs, key).unwrap());

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for tcp in listener.incoming().take(connections) {
            let tcp = tcp.unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut handshake_ok = true;
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        handshake_ok = false;
                        break;
                    }
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            drop(reader);
            let client_cert = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
            if handshake_ok {
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{POD}",
                    POD.len()
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            seen.push((handshake_ok, client_cert));
        }
        seen
    });
    (url, thread)
}

fn config(url: &str) -> KubeConfig {
    KubeConfig {
        timeout: Duration::from_secs(10),
        ..KubeConfig::new(url)
    }
}

#[test]
fn the_server_certificate_is_checked_against_the_cluster_ca() {
    let (url, server) = https_server(false, 3);

    let trusted = KubeClient::new(KubeConfig {
        ca_pem: Some(CA.to_vec()),
        ..config(&url)
    })
    .unwrap();
    assert_eq!(trusted.get_pod("shop", "web-1").unwrap().uid, "u-1");

    // without the cluster's CA (the Mozilla roots only), the test CA is unknown
    let err = KubeClient::new(config(&url))
        .unwrap()
        .get_pod("shop", "web-1")
        .unwrap_err();
    assert!(matches!(err, KubeError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("GET /api/v1/namespaces/shop/pods/web-1: "),
        "{err}"
    );
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    let insecure = KubeClient::new(KubeConfig {
        insecure: true,
        ..config(&url)
    })
    .unwrap();
    assert_eq!(insecure.get_pod("shop", "web-1").unwrap().uid, "u-1");

    assert_eq!(
        server.join().unwrap(),
        [(true, false), (false, false), (true, false)]
    );
}

#[test]
fn a_configured_client_certificate_is_presented() {
    let (url, server) = https_server(true, 2);
    let with_cert = KubeClient::new(KubeConfig {
        ca_pem: Some(CA.to_vec()),
        client_cert: Some(ClientCertPem {
            cert_pem: CLIENT.to_vec(),
            key_pem: CLIENT_KEY.to_vec(),
        }),
        ..config(&url)
    })
    .unwrap();
    assert_eq!(with_cert.get_pod("shop", "web-1").unwrap().uid, "u-1");

    let without = KubeClient::new(KubeConfig {
        ca_pem: Some(CA.to_vec()),
        ..config(&url)
    })
    .unwrap();
    let err = without.get_pod("shop", "web-1").unwrap_err();
    assert!(matches!(err, KubeError::Transport { .. }), "{err:?}");

    assert_eq!(server.join().unwrap(), [(true, true), (false, false)]);
}
