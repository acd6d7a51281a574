//! Admin routes for demos and chaos testing from other processes.
//!
//! They need no authentication and are not counted in the request log:
//! - `GET /simulator/faults`: the fault set as JSON (`{"rules":[...]}`);
//! - `PUT /simulator/faults`: replace it (same JSON form as [`FaultSet`]);
//! - `DELETE /simulator/faults`: clear it;
//! - `GET /simulator/stats`: the counters ([`SimStats`](super::SimStats));
//! - `POST /simulator/revoke-tokens`: invalidate every issued token.
//!
//! The Notifications API has its own (`/simulator/channels`, ...): see the
//! `notifications::admin` module.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::faults::FaultSet;
use super::shared::Shared;

/// Registers the admin routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/simulator/faults")
            .route(web::get().to(get_faults))
            .route(web::put().to(put_faults))
            .route(web::delete().to(clear_faults)),
    )
    .route("/simulator/stats", web::get().to(stats))
    .route("/simulator/revoke-tokens", web::post().to(revoke_tokens));
}

async fn get_faults(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.faults.current())
}

async fn put_faults(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    match serde_json::from_slice::<FaultSet>(&body) {
        Ok(set) => {
            shared.faults.set(set);
            HttpResponse::Ok().json(shared.faults.current())
        }
        Err(err) => HttpResponse::BadRequest().json(json!({
            "error": "invalid_fault_set",
            "description": err.to_string(),
        })),
    }
}

async fn clear_faults(shared: web::Data<Shared>) -> HttpResponse {
    shared.faults.clear();
    HttpResponse::Ok().json(shared.faults.current())
}

async fn stats(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.log().stats())
}

async fn revoke_tokens(shared: web::Data<Shared>) -> HttpResponse {
    let revoked = shared.state().revoke_tokens();
    log::info!("simulator revoked {revoked} token(s)");
    HttpResponse::Ok().json(json!({ "revoked": revoked }))
}
