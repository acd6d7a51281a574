#![cfg(feature = "simulator")]
//! One real TLS handshake: the client (rustls + ring) against a local HTTPS
//! server with a self-signed certificate. Without trusting that certificate
//! the handshake fails as a classified `connection` error, not a panic.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use queuewatch::error::ErrorKind;
use queuewatch::genesys::{tls, ClientOptions, Credentials, GenesysClient, TokenError};
use queuewatch::secret::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CERT: &[u8] = include_bytes!("fixtures/localhost-cert.pem");
const KEY: &[u8] = include_bytes!("fixtures/localhost-key.pem");

fn server_config() -> rustls::ServerConfig {
    let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(CERT)
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}

async fn token() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": "tls-token", "token_type": "bearer", "expires_in": 300
    }))
}

fn client(base: &str, roots: &[u8]) -> GenesysClient {
    GenesysClient::new(Arc::new(ClientOptions {
        api_base: base.to_string(),
        login_base: base.to_string(),
        request_timeout: Duration::from_secs(5),
        tls: tls::client_config(roots).unwrap(),
    }))
}

#[actix_rt::test]
async fn https_handshake_with_a_trusted_self_signed_certificate() {
    let server = HttpServer::new(|| App::new().route("/oauth/token", web::post().to(token)))
        .workers(1)
        .bind_rustls_0_23("127.0.0.1:0", server_config())
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let stop = server.handle();
    actix_rt::spawn(server);

    let credentials = Credentials {
        client_id: Secret::new("id"),
        client_secret: Secret::new("secret"),
    };
    for host in ["127.0.0.1", "localhost"] {
        let base = format!("https://{host}:{}", addr.port());
        let token = client(&base, CERT).fetch_token(&credentials).await.unwrap();
        assert_eq!(token.token.expose(), "tls-token");
        assert_eq!(token.expires_in, Duration::from_secs(300));

        // The Mozilla roots alone do not trust it: a classified failure.
        match client(&base, &[]).fetch_token(&credentials).await {
            Err(TokenError::Unavailable(e)) => assert_eq!(e.kind, ErrorKind::Connection, "{e}"),
            other => panic!("expected a TLS failure, got {other:?}"),
        }
    }
    stop.stop(true).await;
}
