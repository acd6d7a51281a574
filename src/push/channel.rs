//! One channel slot of the pool, as one task: set a channel up (create or
//! reuse one, connect its WebSocket, subscribe its topics, take a
//! snapshot), serve its socket (frames into the store, a ping when idle, a
//! watchdog), and set it up again when it fails, nears its expiry or is
//! announced closing. A replacement is connected, subscribed and
//! reconciled before the old channel is let go: no gap.
//!
//! While a channel is down its queues are on fallback polling; they are
//! back on push once the channel is back, resubscribed and a snapshot is in.
//!
//! (Past 400 lines: the set-up, the serving loop and the swap are one
//! state machine, and splitting it would scatter its transitions.)

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};

use super::frame::{self, Frame as Parsed};
use super::plan::{renew_at, NewChannel};
use super::pool::PoolShared;
use super::store::Link;
use super::timers::{attempt_after, AfterSilence, Due, Timers};
use crate::error::{ErrorKind, PollError};
use crate::genesys::channels::{Channel, Socket};
use crate::genesys::GenesysClient;
use crate::telemetry::{PushMessage, Reconnect};
use crate::QueueId;

/// The queues one slot carries (the pool's assignment).
pub(crate) type Topics = Arc<BTreeSet<QueueId>>;

/// A channel in service.
struct Live {
    channel: Channel,
    socket: Socket,
    /// The queues whose topics the channel carries (accepted ones only).
    topics: Topics,
    /// Its last frame, our last ping, and when to replace it (before it
    /// expires, or to retry a failed swap).
    timers: Timers,
}

/// How a channel we no longer serve is left (see `ChannelBook`).
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// Fine, and the first to reuse.
    Released,
    /// Its socket stayed silent: reused only as a last resort.
    Retired,
}

/// A set-up that failed: the channel it had taken, if any, and why.
type Failed = (Option<Channel>, PollError);

/// Why serving a channel ended.
#[derive(Debug)]
enum End {
    Closed(String),
    Watchdog,
    SocketClosing,
    Expiry,
    Topics,
}

/// Runs slot `slot` until the pool stops (the task is dropped).
pub(crate) async fn run(slot: usize, shared: Rc<PoolShared>, mut topics: watch::Receiver<Topics>) {
    let task = Task { slot, shared };
    let mut rng = fastrand::Rng::new();
    let mut attempt: u32 = 0;
    let mut current: Option<Live> = None;
    let mut same: Option<Channel> = None;
    loop {
        let mut live = match current.take() {
            Some(live) => live,
            None => {
                let wanted = topics.borrow_and_update().clone();
                if wanted.is_empty() {
                    if let Some(channel) = same.take() {
                        task.release(channel, Leave::Released).await;
                    }
                    if topics.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                match task.setup(&wanted, same.take()).await {
                    Ok(live) => live,
                    Err((channel, error)) => {
                        if error.kind == ErrorKind::Cancelled {
                            return; // the budget closed: shutting down
                        }
                        // Still ours at Genesys: the next attempt tries it again.
                        same = channel;
                        task.down(&wanted, Reconnect::Failed, &error.to_string());
                        let delay = task.shared.tuning.backoff.delay(attempt, &mut rng);
                        attempt = attempt.saturating_add(1);
                        tokio::select! {
                            () = sleep(delay) => {}
                            _ = topics.changed() => {}
                        }
                        continue;
                    }
                }
            }
        };
        task.opened(&live);
        let opened = Instant::now();
        let end = match task
            .serve(&mut live, &mut topics, None::<Pin<&mut Never>>)
            .await
        {
            Served::End(end) => end,
            Served::Done(never) => match never {},
        };
        match end {
            End::Closed(why) => {
                task.down(&live.topics, Reconnect::Closed, &why);
                same = Some(live.channel);
            }
            End::Watchdog => {
                let why = format!(
                    "nothing received for {}",
                    humantime::format_duration(task.shared.tuning.watchdog)
                );
                task.down(&live.topics, Reconnect::Watchdog, &why);
                match live.timers.after_silence() {
                    AfterSilence::Reopen => same = Some(live.channel),
                    AfterSilence::Replace => {
                        log::warn!(
                            "push channel {}: silent again since it was reopened; \
                             a new channel replaces it",
                            live.channel.id
                        );
                        drop(live.socket);
                        task.release(live.channel, Leave::Retired).await;
                    }
                }
            }
            End::SocketClosing | End::Expiry => {
                let reason = if matches!(end, End::Expiry) {
                    Reconnect::Expiry
                } else {
                    Reconnect::SocketClosing
                };
                task.shared.telemetry().push_reconnect(reason);
                log::info!(
                    "push channel {}: replacing it ({}); the old one serves until the new one is in",
                    live.channel.id,
                    reason.as_str()
                );
                match task.swap(live, &mut topics).await {
                    Ok(new) => current = Some(new),
                    Err((old, error)) => {
                        log::warn!("push slot {slot}: replacement failed: {error}");
                        let delay = task.shared.tuning.backoff.delay(attempt, &mut rng);
                        attempt = attempt.saturating_add(1);
                        match old {
                            Some(mut old) => {
                                old.timers.renew = Instant::now() + delay;
                                current = Some(old);
                            }
                            None => sleep(delay).await,
                        }
                    }
                }
                continue;
            }
            End::Topics => {
                let wanted = topics.borrow_and_update().clone();
                match task.resubscribe(&mut live, &wanted).await {
                    Ok(()) => current = Some(live),
                    Err(error) => {
                        task.down(&live.topics, Reconnect::Failed, &error.to_string());
                        same = Some(live.channel);
                    }
                }
                continue;
            }
        }
        task.closed();
        attempt = attempt_after(attempt, opened.elapsed(), task.shared.tuning.watchdog);
        // Full jitter before reconnecting: channels that fell together
        // come back apart.
        let delay = task.shared.tuning.backoff.delay(attempt, &mut rng);
        attempt = attempt.saturating_add(1);
        sleep(delay).await;
    }
}

/// `future`'s output, or never.
async fn maybe<F: Future>(future: Option<Pin<&mut F>>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// A future that never completes (serving without a swap in progress).
type Never = std::future::Pending<std::convert::Infallible>;

enum Served<T> {
    End(End),
    Done(T),
}

struct Task {
    slot: usize,
    shared: Rc<PoolShared>,
}

impl Task {
    fn client(&self) -> GenesysClient {
        GenesysClient::for_thread(&self.shared.rest.options)
    }

    /// A channel for `wanted`: `same` again if it still exists, else a
    /// released one with life left, else a new one (never a 21st). A
    /// set-up that fails after taking a channel hands it back with the
    /// error: it is still counted at Genesys, so it must not be dropped.
    async fn setup(&self, wanted: &Topics, same: Option<Channel>) -> Result<Live, Failed> {
        let channel = match same {
            Some(channel) => match self.exists(&channel).await {
                Ok(true) => channel,
                Ok(false) => self.new_channel().await.map_err(|e| (None, e))?,
                Err(error) => return Err((Some(channel), error)),
            },
            None => self.new_channel().await.map_err(|e| (None, e))?,
        };
        let socket = match self.client().connect_channel(&channel).await {
            Ok(socket) => socket,
            Err(error) => return Err((self.keep_unless_gone(channel, &error), error)),
        };
        let now = Instant::now();
        let renew = renew_at(now, self.shared.instant_of(channel.expires, now));
        let mut live = Live {
            channel,
            socket,
            topics: Arc::new(BTreeSet::new()),
            timers: Timers::new(now, renew),
        };
        match self.resubscribe(&mut live, wanted).await {
            Ok(()) => Ok(live),
            Err(error) => {
                // Gone already forgotten by `resubscribe`.
                let channel = (error.kind != ErrorKind::NotFound).then_some(live.channel);
                Err((channel, error))
            }
        }
    }

    /// `channel` back after a failed call, unless the failure says it is
    /// gone (then it is forgotten).
    fn keep_unless_gone(&self, channel: Channel, error: &PollError) -> Option<Channel> {
        self.forget_if_gone(&channel.id, error);
        (error.kind != ErrorKind::NotFound).then_some(channel)
    }

    /// A 404 about channel `id`: it is gone at Genesys, no longer counted.
    fn forget_if_gone(&self, id: &str, error: &PollError) {
        if error.kind == ErrorKind::NotFound {
            self.shared.book().gone(id);
        }
    }

    /// HEAD: whether `channel` is still there (a 404 forgets it).
    async fn exists(&self, channel: &Channel) -> Result<bool, PollError> {
        let id = channel.id.clone();
        let exists = self
            .shared
            .rest
            .call(|client, token| {
                let id = id.clone();
                async move { client.channel_exists(&token, &id).await }
            })
            .await?;
        if !exists {
            self.shared.book().gone(&channel.id);
            self.shared.telemetry().push_reconnect(Reconnect::Gone);
            log::info!(
                "push: channel {} is gone at Genesys; a new one is set up",
                channel.id
            );
        }
        Ok(exists)
    }

    async fn new_channel(&self) -> Result<Channel, PollError> {
        let now = Instant::now();
        let (decision, expired) = {
            let mut book = self.shared.book();
            let expired = book.prune(now);
            (book.decide_new(now, self.shared.tuning.min_life), expired)
        };
        for id in expired {
            self.shared.take_released(&id);
        }
        match decision {
            NewChannel::Reuse(id) => {
                let channel = self.shared.take_released(&id);
                self.shared.book().taken(&id);
                match channel {
                    Some(channel) => Ok(channel),
                    None => Err(PollError::new(
                        ErrorKind::Connection,
                        "a released channel was lost",
                    )),
                }
            }
            NewChannel::Create => {
                let channel = self
                    .shared
                    .rest
                    .call(|client, token| async move { client.create_channel(&token).await })
                    .await?;
                let expires = self.shared.instant_of(channel.expires, now);
                self.shared.book().created(channel.id.clone(), expires);
                log::info!(
                    "push: channel {} created for slot {}",
                    channel.id,
                    self.slot
                );
                Ok(channel)
            }
            NewChannel::None => Err(PollError::new(
                ErrorKind::Connection,
                "every channel this OAuth client may hold is in use; a new one would evict one",
            )),
        }
    }

    /// Makes the channel carry `wanted`: PUT its topics, log the refused
    /// ones (those queues stay on polling), take a snapshot of the queues
    /// new to it, and put them on push.
    async fn resubscribe(&self, live: &mut Live, wanted: &Topics) -> Result<(), PollError> {
        let asked: Vec<String> = wanted.iter().map(|id| frame::topic_for(id)).collect();
        let id = live.channel.id.clone();
        let result = self
            .shared
            .rest
            .call(|client, token| {
                let (id, asked) = (id.clone(), asked.clone());
                async move { client.set_subscriptions(&token, &id, &asked).await }
            })
            .await;
        let got = match result {
            Ok(got) => got,
            Err(error) => {
                self.forget_if_gone(&live.channel.id, &error);
                return Err(error);
            }
        };
        let got: BTreeSet<&str> = got
            .iter()
            .filter_map(|t| frame::queue_of_topic(t))
            .collect();
        let mut accepted = BTreeSet::new();
        for queue in wanted.iter() {
            if got.contains(queue.as_str()) {
                accepted.insert(queue.clone());
            } else {
                self.shared.store.refuse(queue);
                log::warn!(
                    "push: queue {queue}: Genesys refused the subscription to its topic \
                     (no permission, or the queue is gone); it is polled with observations instead"
                );
            }
        }
        self.shared.store.accept(&accepted);
        let added: Vec<QueueId> = accepted.difference(&live.topics).cloned().collect();
        self.shared
            .rest
            .snapshot(&self.shared.store, &added)
            .await?;
        self.shared.store.set_link(&added, Link::Push);
        live.topics = Arc::new(accepted);
        Ok(())
    }

    /// Sets up a replacement while `old` keeps serving, then lets `old` go.
    /// On failure, gives `old` back if its socket still runs.
    async fn swap(
        &self,
        mut old: Live,
        topics: &mut watch::Receiver<Topics>,
    ) -> Result<Live, (Option<Live>, PollError)> {
        let wanted = topics.borrow().clone();
        let setup = self.setup(&wanted, None);
        tokio::pin!(setup);
        let (result, old) = match self.serve(&mut old, topics, Some(setup.as_mut())).await {
            Served::Done(result) => (result, Some(old)),
            Served::End(end) => {
                // The old socket ended first: its queues poll until the new one is in.
                self.down(
                    &old.topics,
                    Reconnect::Closed,
                    &format!("{end:?} during a swap"),
                );
                let channel = old.channel;
                drop(old.socket);
                self.release(channel, Leave::Released).await;
                (setup.await, None)
            }
        };
        match (result, old) {
            (Ok(new), Some(old)) => {
                self.release_live(old).await;
                Ok(new)
            }
            (Ok(new), None) => Ok(new),
            (Err((taken, error)), old) => {
                if let Some(channel) = taken {
                    self.release(channel, Leave::Released).await;
                }
                Err((old, error))
            }
        }
    }

    /// Serves `live`'s socket until it ends, or until `until` completes.
    async fn serve<T, F: Future<Output = T>>(
        &self,
        live: &mut Live,
        topics: &mut watch::Receiver<Topics>,
        mut until: Option<Pin<&mut F>>,
    ) -> Served<T> {
        let swapping = until.is_some();
        let tuning = &self.shared.tuning;
        loop {
            let (at, due) = live
                .timers
                .next(tuning.watchdog, tuning.ping_idle, swapping);
            tokio::select! {
                biased;
                done = maybe(until.as_mut().map(|f| f.as_mut())), if swapping => {
                    return Served::Done(done);
                }
                frame = live.socket.next() => {
                    let frame = match frame {
                        None => return Served::End(End::Closed("the socket closed".into())),
                        Some(Err(error)) => return Served::End(End::Closed(format!("socket error: {error}"))),
                        Some(Ok(frame)) => frame,
                    };
                    live.timers.last_frame = Instant::now();
                    if let Some(end) = self.on_frame(live, frame, swapping).await {
                        return Served::End(end);
                    }
                }
                () = sleep_until(at) => match due {
                    Due::Watchdog => return Served::End(End::Watchdog),
                    Due::Renew => return Served::End(End::Expiry),
                    Due::Ping => {
                        live.timers.last_sent = Instant::now();
                        let ping = Message::Text(frame::PING.into());
                        if let Err(error) = live.socket.send(ping).await {
                            return Served::End(End::Closed(format!("sending a ping: {error}")));
                        }
                    }
                },
                changed = topics.changed(), if !swapping => {
                    if changed.is_err() {
                        // The pool is gone: nothing more to serve.
                        return Served::End(End::Closed("the pool stopped".into()));
                    }
                    return Served::End(End::Topics);
                }
            }
        }
    }

    /// One frame; `Some` ends serving.
    async fn on_frame(&self, live: &mut Live, frame: Frame, swapping: bool) -> Option<End> {
        let telemetry = self.shared.telemetry();
        match frame {
            Frame::Text(bytes) => {
                let parsed = std::str::from_utf8(&bytes)
                    .map_err(|_| "not UTF-8".to_string())
                    .and_then(|text| frame::parse(text).map_err(|e| e.to_string()));
                match parsed {
                    Ok(Parsed::Observation(observation)) => {
                        telemetry.push_message(PushMessage::Observation);
                        if let Some(cell) = self.shared.store.cell(&observation.queue_id) {
                            cell.push(&observation.metrics, Instant::now());
                        }
                    }
                    Ok(Parsed::Heartbeat) => telemetry.push_message(PushMessage::Heartbeat),
                    Ok(Parsed::Pong) => telemetry.push_message(PushMessage::Pong),
                    Ok(Parsed::SocketClosing) => {
                        telemetry.push_message(PushMessage::SocketClosing);
                        if !swapping {
                            return Some(End::SocketClosing);
                        }
                    }
                    Ok(Parsed::Other { .. }) => telemetry.push_message(PushMessage::Other),
                    Err(error) => {
                        telemetry.push_message(PushMessage::Invalid);
                        self.shared.invalid_frame(&live.channel.id, &error);
                    }
                }
            }
            Frame::Ping(payload) => {
                if let Err(error) = live.socket.send(Message::Pong(payload)).await {
                    return Some(End::Closed(format!("answering a ping: {error}")));
                }
            }
            Frame::Pong(_) => telemetry.push_message(PushMessage::Pong),
            Frame::Close(reason) => {
                return Some(End::Closed(format!(
                    "the server closed the socket ({reason:?})"
                )));
            }
            Frame::Binary(_) | Frame::Continuation(_) => {
                telemetry.push_message(PushMessage::Invalid);
                self.shared
                    .invalid_frame(&live.channel.id, "a binary frame");
            }
        }
        None
    }

    /// The channel's queues are off push: they poll until it is back.
    fn down(&self, topics: &Topics, reason: Reconnect, why: &str) {
        self.closed();
        self.shared.store.set_link(topics.iter(), Link::Fallback);
        self.shared.telemetry().push_reconnect(reason);
        self.shared.channel_down(self.slot, topics.len(), why);
    }

    fn opened(&self, live: &Live) {
        self.shared.slot_open(self.slot, live.topics.len());
    }

    fn closed(&self) {
        self.shared.slot_closed(self.slot);
    }

    /// Lets a replaced channel go: socket closed, subscriptions cleared;
    /// it lives on at Genesys until it expires and may be reused.
    async fn release_live(&self, old: Live) {
        let mut socket = old.socket;
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
        drop(socket);
        self.release(old.channel, Leave::Released).await;
    }

    /// Lets `channel` go: its subscriptions cleared, kept for reuse as
    /// `leave` says. When the clearing fails for another reason than the
    /// channel being gone, it is kept as retired: still counted at Genesys,
    /// and a set-up that reuses it replaces its topics anyway.
    async fn release(&self, channel: Channel, leave: Leave) {
        let id = channel.id.clone();
        let cleared = self
            .shared
            .rest
            .call(|client, token| {
                let id = id.clone();
                async move { client.clear_subscriptions(&token, &id).await }
            })
            .await;
        let leave = match cleared {
            Ok(()) => leave,
            Err(error) if error.kind == ErrorKind::NotFound => {
                self.forget_if_gone(&channel.id, &error);
                return;
            }
            Err(error) => {
                log::debug!("push: releasing channel {}: {error}", channel.id);
                Leave::Retired
            }
        };
        {
            let mut book = self.shared.book();
            match leave {
                Leave::Released => book.released(&channel.id),
                Leave::Retired => book.retired(&channel.id),
            };
        }
        self.shared.put_released(channel);
    }
}
