//! The HTTP status API and page (SPEC section 5), as an actix-web
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

mod routes;
mod sse;

pub(crate) use sse::EventHub;

use actix_web::web;

use crate::runtime::Handle;

/// Mounts `/healthz`, `/readyz`, `/metrics`, `/api/queues`,
/// `/api/queues/{id}`, `/api/events` and `/` for `handle`.
///
/// When the settings name `http.auth_token_env`, every route but the health
/// checks needs `Authorization: Bearer <token>` (or `?access_token=` for the
/// page's event stream, which browsers cannot send headers on).
pub fn configure(handle: Handle) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| routes::register(cfg, handle.clone())
}
