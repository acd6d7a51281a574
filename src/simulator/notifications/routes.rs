//! The REST routes of the Notifications API (through the API pipeline:
//! bearer check, faults, rate limit, request log) and the WebSocket upgrade.

use std::time::{Instant, SystemTime};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::super::observations::Rejection;
use super::super::queue_model::QueueState;
use super::super::responses::{
    add_correlation_header, correlation_id, default_message, genesys_error,
};
use super::super::routes::api_call;
use super::super::shared::Shared;
use super::super::state::SimState;
use super::channels::{ChannelError, Subscription};
use super::messages::Figures;
use super::socket;
use super::topics::{parse_body, TopicError};

/// `POST` creates a channel.
pub(crate) const CHANNELS_PATH: &str = "/api/v2/notifications/channels";
const CHANNEL_PATH: &str = "/api/v2/notifications/channels/{channel_id}";
const SUBSCRIPTIONS_PATH: &str = "/api/v2/notifications/channels/{channel_id}/subscriptions";
/// The WebSocket of a channel (its `connectUri`).
const SOCKET_PATH: &str = "/channels/{channel_id}";

/// Registers the Notifications routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(CHANNELS_PATH, web::post().to(create))
        .route(CHANNEL_PATH, web::head().to(exists))
        .service(
            web::resource(SUBSCRIPTIONS_PATH)
                .route(web::get().to(list))
                .route(web::put().to(replace))
                .route(web::post().to(add))
                .route(web::delete().to(clear)),
        )
        .route(SOCKET_PATH, web::get().to(connect));
}

/// `POST /api/v2/notifications/channels`.
async fn create(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let host = req.connection_info().host().to_owned();
    let registry = &shared;
    api_call(&req, &shared, Vec::new(), move |_, now, _| {
        let (id, expires) = registry.notifications().create(now, SystemTime::now());
        Ok(json!({
            "id": id,
            "connectUri": format!("ws://{host}/channels/{id}"),
            "expires": humantime::format_rfc3339_millis(expires).to_string(),
        }))
    })
    .await
}

/// `HEAD /api/v2/notifications/channels/{id}`: 200 while the channel lives, else 404.
async fn exists(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let id = channel_id(&req);
    let registry = &shared;
    api_call(&req, &shared, Vec::new(), move |_, now, _| {
        if registry.notifications().is_live(&id, now) {
            Ok(Value::Null)
        } else {
            Err(rejection(ChannelError::NotFound(id)))
        }
    })
    .await
}

/// `GET .../subscriptions`.
async fn list(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    subscriptions(req, shared, Ok(Subscription::List)).await
}

/// `PUT .../subscriptions`: replace the topic set.
async fn replace(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    subscriptions(req, shared, parse_body(&body).map(Subscription::Replace)).await
}

/// `POST .../subscriptions`: add topics.
async fn add(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    subscriptions(req, shared, parse_body(&body).map(Subscription::Add)).await
}

/// `DELETE .../subscriptions`: remove every topic.
async fn clear(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    subscriptions(req, shared, Ok(Subscription::Clear)).await
}

async fn subscriptions(
    req: HttpRequest,
    shared: web::Data<Shared>,
    call: Result<Subscription, TopicError>,
) -> HttpResponse {
    let id = channel_id(&req);
    let queue_ids = match &call {
        Ok(Subscription::Replace(ids) | Subscription::Add(ids)) => ids.clone(),
        _ => Vec::new(),
    };
    let registry = &shared;
    api_call(&req, &shared, queue_ids, move |state, now, _| {
        let call = call.map_err(|err| rejection(err.into()))?;
        let mut registry = registry.notifications();
        let topics = registry
            .subscribe(&id, call, now, |queue_id| figures(state, queue_id, now))
            .map_err(rejection)?;
        let entities: Vec<Value> = topics.into_iter().map(|id| json!({ "id": id })).collect();
        Ok(json!({ "entities": entities }))
    })
    .await
}

/// `GET /channels/{id}`: the WebSocket (no bearer: the URI is the credential).
async fn connect(req: HttpRequest, body: web::Payload, shared: web::Data<Shared>) -> HttpResponse {
    let id = channel_id(&req);
    if !shared.notifications().is_live(&id, Instant::now()) {
        let correlation = correlation_id();
        let status = StatusCode::NOT_FOUND;
        let mut response = genesys_error(status, default_message(status), &correlation);
        add_correlation_header(&mut response, &correlation);
        return response;
    }
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(err) => return err.error_response(),
    };
    // The channel may have gone between the check and now: then `attach` is None.
    let Some(attached) = shared.notifications().connect(&id, Instant::now()) else {
        let _ = session.close(None).await;
        return response;
    };
    socket::spawn(shared.into_inner(), id, attached, session, stream);
    response
}

/// The figures of a queue now, if it exists.
pub(crate) fn figures(state: &mut SimState, queue_id: &str, now: Instant) -> Option<Figures> {
    state.queue(queue_id, now).map(figures_of)
}

fn figures_of(queue: &QueueState) -> Figures {
    Figures {
        waiting: queue.waiting,
        interacting: queue.interacting,
        idle: queue.idle,
    }
}

fn rejection(err: ChannelError) -> Rejection {
    let status = match err {
        ChannelError::NotFound(_) => StatusCode::NOT_FOUND,
        ChannelError::Topics(_) => StatusCode::BAD_REQUEST,
    };
    (status, err.to_string())
}

fn channel_id(req: &HttpRequest) -> String {
    req.match_info()
        .get("channel_id")
        .unwrap_or_default()
        .to_owned()
}
