//! The HTTP status API and page (docs/http-api.md), as an actix-web
//! [`configure`] function: queuewatch's own server uses it, and an
//! integrator mounts it into their own `App`.
//!
//! ```no_run
//! # async fn demo(handle: queuewatch::Handle) -> std::io::Result<()> {
//! use actix_web::{App, HttpServer};
//! HttpServer::new(move || App::new().configure(queuewatch::web::configure(handle.clone())))
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! # }
//! ```

mod metrics;
mod quiet_log;
mod routes;
mod sse;
mod status;

pub use quiet_log::QuietClientErrors;
pub(crate) use sse::EventHub;
pub use status::{Readiness, Status};

use actix_web::web;

/// Mounts `/healthz`, `/readyz`, `/metrics`, `/api/queues`,
/// `/api/queues/{id}`, `/api/events` and `/` for `handle` (a
/// [`crate::Handle`], or anything else that tells the [`Status`]).
///
/// Every route answers GET and HEAD; other methods get 405 with `Allow`.
/// `/metrics` is OpenMetrics for clients whose `Accept` names
/// `application/openmetrics-text` (Prometheus does), the classic Prometheus
/// text format (0.0.4) for the rest (`*/*`, no `Accept`).
///
/// When the settings name `http.auth_token_env`, every route but the health
/// checks needs `Authorization: Bearer <token>` (any case of `Bearer`; or
/// `?access_token=` for the page's event stream, which browsers cannot send
/// headers on); the token is compared in constant time. Without a token,
/// those routes answer only requests whose `Host` is a loopback name or
/// address or the bind address (421 otherwise), so that a web page cannot
/// reach them through DNS rebinding.
pub fn configure<S: Status>(handle: S) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| routes::register(cfg, handle.clone())
}
