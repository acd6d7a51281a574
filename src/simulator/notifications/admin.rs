//! Admin routes of the Notifications API, for chaos runs from other processes.
//!
//! Like the other admin routes they need no authentication and are not
//! counted in the request log:
//! - `GET /simulator/channels`: `{"channels":[ChannelInfo...],"stats":NotificationStats}`
//!   (see [`ChannelInfo`](super::ChannelInfo), [`NotificationStats`](super::NotificationStats));
//! - `POST /simulator/channels/{id}/drop`: close the channel's socket abruptly
//!   (the channel stays; the client may reconnect);
//! - `POST /simulator/channels/{id}/stall` / `.../unstall`: the socket sends
//!   nothing (no heartbeats, pongs or topic messages) but stays open / talks again;
//! - `POST /simulator/channels/{id}/closing`: send `v2.system.socket_closing`,
//!   close after `socket_closing_grace`;
//! - `POST /simulator/channels/{id}/expire`: the channel is gone now (404, socket closed);
//! - `POST /simulator/channels/{id}/evict`: the same, counted as an eviction;
//! - `PUT /simulator/refused-topics`: body `["queueId",...]`: subscriptions to
//!   these queues' topics are refused from now on (`[]` clears);
//! - `PUT /simulator/queues/{id}/waiting`: body `{"waiting": n}` freezes the
//!   queue with `n` waiting, `{"waiting": null}` releases it.
//!
//! The channel actions answer `{"channel":id,"action":…,"applied":bool}`
//! (`applied` is false for `drop` and `closing` without a socket), or 404
//! for a channel that is not live; bad bodies get 400 `{"error":…,"description":…}`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::super::shared::Shared;
use super::control;

/// Registers the admin routes of the Notifications API.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/simulator/channels", web::get().to(channels))
        .route(
            "/simulator/channels/{channel_id}/{action}",
            web::post().to(action),
        )
        .route("/simulator/refused-topics", web::put().to(refused_topics))
        .route(
            "/simulator/queues/{queue_id}/waiting",
            web::put().to(waiting),
        );
}

async fn channels(shared: web::Data<Shared>) -> HttpResponse {
    let mut registry = shared.notifications();
    let channels = registry.infos(std::time::Instant::now());
    HttpResponse::Ok().json(json!({ "channels": channels, "stats": registry.stats() }))
}

async fn action(path: web::Path<(String, String)>, shared: web::Data<Shared>) -> HttpResponse {
    let (id, action) = path.into_inner();
    let live = shared
        .notifications()
        .is_live(&id, std::time::Instant::now());
    let applied = match action.as_str() {
        "drop" | "stall" | "unstall" | "closing" | "expire" | "evict" if !live => {
            return not_found(&format!("channel {id} is not live"));
        }
        "drop" => control::drop_socket(&shared, &id),
        "stall" => control::stall(&shared, &id, true),
        "unstall" => control::stall(&shared, &id, false),
        "closing" => control::announce_socket_closing(&shared, &id),
        "expire" => control::expire_channel(&shared, &id),
        "evict" => control::evict_channel(&shared, &id),
        _ => return not_found(&format!("no channel action '{action}'")),
    };
    HttpResponse::Ok().json(json!({ "channel": id, "action": action, "applied": applied }))
}

async fn refused_topics(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    match serde_json::from_slice::<Vec<String>>(&body) {
        Ok(queue_ids) => {
            let refused = queue_ids.len();
            control::refuse_topics(&shared, queue_ids);
            HttpResponse::Ok().json(json!({ "refused": refused }))
        }
        Err(err) => bad_request("invalid_refused_topics", &err.to_string()),
    }
}

#[derive(Deserialize)]
struct Waiting {
    waiting: Option<u32>,
}

async fn waiting(
    path: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let queue_id = path.into_inner();
    match serde_json::from_slice::<Waiting>(&body) {
        Ok(Waiting { waiting }) if control::pin_waiting(&shared, &queue_id, waiting) => {
            HttpResponse::Ok().json(json!({ "queue_id": queue_id, "waiting": waiting }))
        }
        Ok(_) => not_found(&format!("queue {queue_id} does not exist")),
        Err(err) => bad_request("invalid_waiting", &err.to_string()),
    }
}

fn not_found(description: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "not_found", "description": description }))
}

fn bad_request(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": error, "description": description }))
}
