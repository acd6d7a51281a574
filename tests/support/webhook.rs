//! The webhook receiver of the tests (actix-web on 127.0.0.1:0), and the
//! Standard Webhooks signature check as a receiver does it, with an HMAC
//! built here independently of the crate's signing code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use tokio::sync::watch;

/// HMAC-SHA256 (RFC 2104) built here from plain SHA-256.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use ring::digest::{digest, SHA256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(digest(&SHA256, key).as_ref());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(message);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(digest(&SHA256, &inner).as_ref());
    digest(&SHA256, &outer).as_ref().to_vec()
}

/// The `v1,…` signature of a message with `key`.
pub fn signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let mac = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key, &signed));
    format!("v1,{mac}")
}

/// The Standard Webhooks signature check, as a receiver does it.
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let expected = signature(key, id, timestamp, body);
    // The header may hold several space-separated signatures.
    header.split(' ').any(|sig| sig == expected)
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub path: String,
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub answered: u16,
}

type Answer = dyn Fn(usize, &str) -> u16 + Send + Sync;

struct State {
    hits: Mutex<Vec<Hit>>,
    count: watch::Sender<usize>,
    /// Given the request's number (0-based) and its `webhook-id`: the status.
    answer: Box<Answer>,
    /// Sleep this long before answering (a slow receiver).
    delay: Duration,
}

/// A webhook receiver on 127.0.0.1:0: records every request (any path or
/// method) and answers what `answer` says.
pub struct Receiver {
    state: Arc<State>,
    addr: SocketAddr,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// `answer` gets the request's number (0-based) and its `webhook-id`;
    /// the status is sent `delay` later.
    pub fn start(
        delay: Duration,
        answer: impl Fn(usize, &str) -> u16 + Send + Sync + 'static,
    ) -> Receiver {
        let state = Arc::new(State {
            hits: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            answer: Box::new(answer),
            delay,
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Receiver {
            state,
            addr,
            server: handle,
        }
    }

    /// A receiver answering every request with `status` at once.
    pub fn answering(status: u16) -> Receiver {
        Receiver::start(Duration::ZERO, move |_, _| status)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` and `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// The callback's name for this endpoint (telemetry, logs).
    pub fn name(&self) -> String {
        format!("webhook:{}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the hits so far; panics after `within`.
    pub async fn until(&self, within: Duration, pred: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let mut count = self.state.count.subscribe();
        tokio::time::timeout(within, async {
            loop {
                let hits = self.hits();
                if pred(&hits) {
                    return hits;
                }
                count.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("receiver condition not met; hits: {:?}", self.hits()))
    }

    /// Stops the server (`graceful`: lets requests in flight finish).
    pub async fn stop(&self, graceful: bool) {
        self.server.stop(graceful).await;
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = header("webhook-id");
    let n = state.hits.lock().unwrap().len();
    let status = (state.answer)(n, id.as_deref().unwrap_or_default());
    state.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        path: req.path().to_owned(),
        id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body: body.to_vec(),
        answered: status,
    });
    state.count.send_modify(|c| *c += 1);
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if status == 429 {
        response.insert_header(("Retry-After", "2"));
    }
    response.finish()
}
