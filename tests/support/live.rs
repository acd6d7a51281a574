//! A live instance for reading `/metrics` as a scraper does: in-process on
//! the built-in simulator, its status API on a loopback port the system
//! picks, and every family its poll source gives served, event drops
//! included (its one callback is a webhook answering 410 Gone, which drops
//! every event).

use std::net::SocketAddr;
use std::time::Duration;

use queuewatch::config::{CallbackSettings, Settings, Source};
use queuewatch::{Handle, QueueWatch};

use super::webhook::Receiver;

/// Longest wait for the first samples: one interval, a slow CI box.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running instance (see the module); [`Live::stop`] ends it.
pub struct Live {
    pub handle: Handle,
    pub addr: SocketAddr,
    client: awc::Client,
    gone: Receiver,
}

/// One `/metrics` answer.
pub struct Answer {
    pub content_type: String,
    pub vary: Option<String>,
    pub body: String,
}

/// The sample names of every line past the first `{` or space: the same in
/// both text formats (`x_total`, `x_bucket`, gauges as they are).
pub fn sample_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l[..l.find(['{', ' ']).unwrap_or(l.len())].to_owned())
        .collect()
}

impl Live {
    /// `queues` queues (ids of the set `tag`) polled from `source` every 5 s.
    pub async fn start(source: Source, tag: u32, queues: usize) -> Live {
        let gone = Receiver::answering(410);
        let mut settings = Settings::for_queues(super::queue_ids(tag, queues));
        settings.poll.source = source;
        settings.poll.interval = Duration::from_secs(5);
        settings.http.bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        settings.callbacks = vec![CallbackSettings::Webhook {
            url: gone.url("/hook"),
            secret_env: None,
        }];
        let handle = QueueWatch::new(settings)
            .start()
            .await
            .expect("queuewatch starts");
        let addr = handle.http_addr().expect("the status API listens");
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish();
        Live {
            handle,
            addr,
            client,
            gone,
        }
    }

    /// GET `/metrics` with `accept` (`None`: no `Accept` header).
    pub async fn metrics(&self, accept: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("http://{}/metrics", self.addr));
        if let Some(accept) = accept {
            request = request.insert_header(("Accept", accept));
        }
        let mut response = request.send().await.expect("GET /metrics");
        assert_eq!(response.status().as_u16(), 200, "GET /metrics");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (content_type, vary) = (header("content-type").unwrap_or_default(), header("vary"));
        let body = response.body().limit(16 << 20).await.expect("body");
        Answer {
            content_type,
            vary,
            body: String::from_utf8(body.to_vec()).expect("UTF-8"),
        }
    }

    /// The classic text (as curl gets it) once it has a sample named each
    /// of `names`; panics after [`WAIT`].
    pub async fn serving(&self, names: &[&str]) -> String {
        let mut last = String::new();
        let found = super::wait::poll(WAIT, async || {
            last = self.metrics(Some("*/*")).await.body;
            let served = sample_names(&last);
            names
                .iter()
                .all(|n| served.contains(*n))
                .then(|| last.clone())
        })
        .await;
        found.unwrap_or_else(|| panic!("not within {WAIT:?}: samples {names:?} in\n{last}"))
    }

    /// Shuts the instance down, then the webhook receiver.
    pub async fn stop(self) {
        self.handle.shutdown().await;
        self.gone.stop(false).await;
    }
}

/// The sample names served by live instances of both kinds of source
/// (`guest_position`: depth and wait; `observations`: depth and agents),
/// once each serves its per-queue gauges and the event drops.
pub async fn served_names(tag: u32) -> std::collections::BTreeSet<String> {
    let mut served = std::collections::BTreeSet::new();
    for (source, gauge, tag) in [
        (
            Source::GuestPosition,
            "queuewatch_queue_estimated_wait_seconds",
            tag,
        ),
        (Source::Observations, "queuewatch_queue_agents", tag + 1),
    ] {
        let live = Live::start(source, tag, 2).await;
        let text = live
            .serving(&[
                "queuewatch_polls_total",
                "queuewatch_queue_depth",
                gauge,
                "queuewatch_event_drops_total",
            ])
            .await;
        served.extend(sample_names(&text));
        live.stop().await;
    }
    served
}
