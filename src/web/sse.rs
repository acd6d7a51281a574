//! Server-sent events: a hub that broadcasts every event's JSON (the one
//! serialisation all callbacks share); each client stream is bounded, and a
//! client that falls behind is dropped instead of growing memory.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::callbacks::shared::Delivery;

/// Events a client may fall behind by before it is dropped.
const CLIENT_BUFFER: usize = 1024;
/// A comment line at least this often keeps proxies from closing idle streams.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Receives every event (as a callback) and broadcasts its JSON: the
/// shared serialisation, not one of its own.
pub(crate) struct EventHub {
    sender: broadcast::Sender<Arc<str>>,
}

impl EventHub {
    pub(crate) fn new() -> EventHub {
        EventHub {
            sender: broadcast::channel(CLIENT_BUFFER).0,
        }
    }

    pub(crate) fn sender(&self) -> broadcast::Sender<Arc<str>> {
        self.sender.clone()
    }
}

impl Actor for EventHub {
    type Context = Context<Self>;
}

impl Handler<Delivery> for EventHub {
    type Result = ();

    fn handle(&mut self, delivery: Delivery, _: &mut Context<Self>) {
        let Delivery { event, ticket } = delivery;
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(event.json().clone());
        }
        ticket.delivered();
    }
}

/// The byte stream of one SSE client.
pub(crate) fn client_stream(
    mut events: broadcast::Receiver<Arc<str>>,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    async_stream(move |yielder| async move {
        yielder
            .send(Bytes::from_static(b": queuewatch events\n\n"))
            .await;
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(json) => {
                        let frame = format!(
                            "id: {id}\nevent: {kind}\ndata: {json}\n\n",
                            id = id_of(&json),
                            kind = kind_of(&json)
                        );
                        if !yielder.send(Bytes::from(frame)).await { return; }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        log::warn!("/api/events: a client fell {missed} events behind; dropping it");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = keep_alive.tick() => {
                    if !yielder.send(Bytes::from_static(b": keep-alive\n\n")).await { return; }
                }
            }
        }
    })
}

/// The event id from the event JSON (`{"type":..,"id":"<id>",..}`).
fn id_of(json: &str) -> &str {
    json.split_once(r#""id":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(id, _)| id)
}

fn kind_of(json: &str) -> &'static str {
    if json.starts_with(r#"{"type":"poll_failed""#) {
        "poll_failed"
    } else {
        "poll"
    }
}

/// A minimal generator: `body` pushes items through a bounded channel.
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Bytes, actix_web::Error>>
where
    F: FnOnce(Yielder) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    actix_rt::spawn(body(Yielder(tx)));
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok(bytes), rx))
    })
}

/// Sends one chunk to the client; `false` once the client is gone.
pub(crate) struct Yielder(tokio::sync::mpsc::Sender<Bytes>);

impl Yielder {
    async fn send(&self, bytes: Bytes) -> bool {
        self.0.send(bytes).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_name_the_event_and_its_id() {
        let json = r#"{"type":"poll_failed","id":"abc-123","queue_id":"q"}"#;
        assert_eq!(id_of(json), "abc-123");
        assert_eq!(kind_of(json), "poll_failed");
        assert_eq!(kind_of(r#"{"type":"poll","id":"x"}"#), "poll");
        assert_eq!(id_of("{}"), "");
    }
}
