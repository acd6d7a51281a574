//! The HTTP status API and page (docs/http-api.md), as an actix-web
//! [`configure`] function: queuewatch's own server uses it, and an
//! integrator mounts it into their own `App`.
//!
//! ```no_run
//! # async fn demo(handle: queuewatch::Handle) -> std::io::Result<()> {
//! use actix_web::{App, HttpServer};
//! // Once, outside the factory: every worker then shares the page's sessions.
//! let routes = queuewatch::web::configure(handle);
//! HttpServer::new(move || App::new().configure(routes.clone()))
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! # }
//! ```

mod access;
mod metrics;
mod paging;
mod quiet_log;
mod routes;
mod session;
mod sse;
mod status;

pub use crate::actors::metrics::QueuePage;
pub use quiet_log::QuietClientErrors;
pub(crate) use sse::EventHub;
pub use status::{Readiness, Status};

use std::sync::Arc;

use actix_web::web;

/// Mounts `/healthz`, `/readyz`, `/metrics`, `/api/queues`,
/// `/api/queues/{id}`, `/api/events`, `/api/session` and `/` for `handle`
/// (a [`crate::Handle`], or anything else that tells the [`Status`]).
///
/// Every GET route answers GET and HEAD; other methods get 405 with
/// `Allow`. `/api/session` takes `POST` and `DELETE` (405 otherwise).
/// `/metrics` is OpenMetrics for clients whose `Accept` names
/// `application/openmetrics-text` (Prometheus does), the classic Prometheus
/// text format (0.0.4) for the rest (`*/*`, no `Accept`).
///
/// When the settings name `http.auth_token_env`, the API routes (all but
/// the health checks and the page) need `Authorization: Bearer <token>`
/// (any case of `Bearer`) or the session cookie that `POST /api/session`
/// hands out for the token (`HttpOnly; SameSite=Strict`, 12 hours). The
/// page loads without the token, asks for it once and uses the cookie
/// from then on, its event stream included: the token never travels in a
/// URL. The token is compared in constant time. Without a token, the
/// routes but the health checks answer only requests whose `Host` is a
/// loopback name or address or the bind address (421 otherwise), so that
/// a web page cannot reach them through DNS rebinding.
///
/// The page's sessions live in the returned function: call `configure`
/// once and clone the function into the `HttpServer::new` factory (as
/// above), so that every worker knows every session.
pub fn configure<S: Status>(handle: S) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let access = Arc::new(access::Access::new(handle.http_token(), handle.http_bind()));
    move |cfg: &mut web::ServiceConfig| routes::register(cfg, handle.clone(), access.clone())
}
