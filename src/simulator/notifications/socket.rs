//! One WebSocket session: heartbeats, pongs, what the registry sends, and
//! the close (graceful, after `socket_closing`, or abrupt).

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{CloseCode, Message, MessageStream, Session};
use tokio::time::{interval_at, sleep_until, Instant, MissedTickBehavior};

use super::super::shared::Shared;
use super::channels::{Attached, Outbound};
use super::messages;

/// Shortest period used (a zero period would spin).
const MIN_PERIOD: Duration = Duration::from_millis(1);
/// Longest period or grace used (keeps `Instant` arithmetic in range).
const MAX_PERIOD: Duration = Duration::from_secs(365 * 86_400);

/// A configured period within 1 ms ..= 1 year.
pub(crate) fn clamp_period(period: Duration) -> Duration {
    period.clamp(MIN_PERIOD, MAX_PERIOD)
}

/// How a session ends.
enum End {
    /// With a close frame (channel gone, replaced, closing grace over, client close).
    Close,
    /// Without a close frame (the `drop_socket` fault).
    Abrupt,
    /// The connection is already gone.
    Gone,
}

/// Runs the session of a new socket as a task of the current arbiter.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    channel_id: String,
    attached: Attached,
    session: Session,
    stream: MessageStream,
) {
    actix_rt::spawn(async move {
        let heartbeat = shared.notifications().config().heartbeat_period;
        let generation = attached.generation;
        let end = run(&shared, attached, session, stream, heartbeat).await;
        shared.notifications().socket_ended(&channel_id, generation);
        let how = match end {
            End::Close => "closed",
            End::Abrupt => "dropped",
            End::Gone => "gone",
        };
        log::debug!("simulator socket of channel {channel_id} {how}");
    });
}

async fn run(
    shared: &Shared,
    attached: Attached,
    mut session: Session,
    mut stream: MessageStream,
    heartbeat: Duration,
) -> End {
    let Attached {
        mut rx, stalled, ..
    } = attached;
    let heartbeat = clamp_period(heartbeat);
    let mut beat = interval_at(Instant::now() + heartbeat, heartbeat);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut closing_at: Option<Instant> = None;
    let end = loop {
        let close_timer = async {
            match closing_at {
                Some(at) => sleep_until(at).await,
                None => pending().await,
            }
        };
        let sent = tokio::select! {
            _ = beat.tick() => send(&mut session, &stalled, messages::heartbeat()).await,
            out = rx.recv() => match out {
                Some(Outbound::Text(text)) => send(&mut session, &stalled, text).await,
                Some(Outbound::Closing { text, grace }) => {
                    closing_at.get_or_insert(Instant::now() + grace.min(MAX_PERIOD));
                    send(&mut session, &stalled, text).await
                }
                Some(Outbound::Drop) => break End::Abrupt,
                None => break End::Close,
            },
            frame = stream.recv() => match frame {
                Some(Ok(Message::Text(text))) if messages::is_ping(&text) => {
                    shared.notifications().count_ping();
                    send(&mut session, &stalled, messages::pong()).await
                }
                Some(Ok(Message::Ping(bytes))) => {
                    silent(&stalled) || session.pong(&bytes).await.is_ok()
                }
                Some(Ok(Message::Close(_))) => break End::Close,
                Some(Ok(_)) => true,
                Some(Err(_)) | None => break End::Gone,
            },
            () = close_timer => break End::Close,
        };
        if !sent {
            break End::Gone;
        }
    };
    if let End::Close = end {
        let _ = session.close(Some(CloseCode::Normal.into())).await;
    }
    // Dropping the session and the stream ends the response: the connection closes.
    end
}

fn silent(stalled: &AtomicBool) -> bool {
    stalled.load(Ordering::Relaxed)
}

/// Sends a text frame unless stalled; false when the socket is gone.
async fn send(session: &mut Session, stalled: &AtomicBool, text: String) -> bool {
    silent(stalled) || session.text(text).await.is_ok()
}
