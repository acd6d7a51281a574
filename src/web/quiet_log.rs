//! Malformed client requests are the client's problem, not ours.
//!
//! actix-http reports a connection that sent garbage, reset mid-request or
//! stalled at `error` level (`stream error: request parse error: ...`).
//! Anyone who can reach a port could flood the log that way, and an
//! operator would read it as a fault of queuewatch. [`QuietClientErrors`]
//! wraps the process logger and hands those records on at `debug` instead.

use log::{Level, Log, Metadata, Record};

/// Targets of actix-http's HTTP/1 and HTTP/2 connection dispatchers.
const DISPATCHER_TARGETS: [&str; 2] = ["actix_http::h1", "actix_http::h2"];

/// `stream error: <DispatchError>` texts that a client causes.
const CLIENT_CAUSED: [&str; 4] = [
    "stream error: request parse error",
    "stream error: I/O error",
    "stream error: request did not complete within the specified timeout",
    "stream error: connection shutdown timeout",
];

/// A [`Log`] that passes every record to `inner`, except client-caused
/// connection errors of actix-http, which it passes at `debug` level.
///
/// ```no_run
/// let logger = env_logger::Builder::from_env(env_logger::Env::default()).build();
/// queuewatch::web::QuietClientErrors::install(logger).expect("no other logger yet");
/// ```
pub struct QuietClientErrors<L> {
    inner: L,
}

impl<L: Log> QuietClientErrors<L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> QuietClientErrors<L> {
        QuietClientErrors { inner }
    }
}

impl QuietClientErrors<env_logger::Logger> {
    /// Installs `logger`, wrapped, as the process logger with its own level filter.
    pub fn install(logger: env_logger::Logger) -> Result<(), log::SetLoggerError> {
        let max = logger.filter();
        log::set_boxed_logger(Box::new(QuietClientErrors::new(logger)))?;
        log::set_max_level(max);
        Ok(())
    }
}

fn from_dispatcher(target: &str) -> bool {
    DISPATCHER_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether a record is a client-caused connection error to demote.
fn client_caused(record: &Record<'_>) -> bool {
    if record.level() > Level::Warn || !from_dispatcher(record.target()) {
        return false;
    }
    let text = match record.args().as_str() {
        Some(text) => std::borrow::Cow::Borrowed(text),
        None => std::borrow::Cow::Owned(record.args().to_string()),
    };
    CLIENT_CAUSED.iter().any(|prefix| text.starts_with(prefix))
}

impl<L: Log> Log for QuietClientErrors<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
            || (from_dispatcher(metadata.target())
                && self.inner.enabled(
                    &Metadata::builder()
                        .level(Level::Debug)
                        .target(metadata.target())
                        .build(),
                ))
    }

    fn log(&self, record: &Record<'_>) {
        if !client_caused(record) {
            self.inner.log(record);
            return;
        }
        let metadata = Metadata::builder()
            .level(Level::Debug)
            .target(record.target())
            .build();
        if self.inner.enabled(&metadata) {
            self.inner.log(
                &Record::builder()
                    .metadata(metadata)
                    .args(*record.args())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use log::{Level, LevelFilter, Log, Record};

    use super::QuietClientErrors;

    /// Records what reaches it, as (level, target, text).
    #[derive(Clone)]
    struct Capture {
        max: LevelFilter,
        seen: Arc<Mutex<Vec<(Level, String, String)>>>,
    }

    impl Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= self.max
        }
        fn log(&self, record: &Record<'_>) {
            if self.enabled(record.metadata()) {
                self.seen.lock().unwrap().push((
                    record.level(),
                    record.target().to_owned(),
                    record.args().to_string(),
                ));
            }
        }
        fn flush(&self) {}
    }

    fn run(max: LevelFilter, level: Level, target: &str, text: &str) -> Vec<(Level, String)> {
        let capture = Capture {
            max,
            seen: Arc::default(),
        };
        let logger = QuietClientErrors::new(capture.clone());
        logger.log(
            &Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{text}"))
                .build(),
        );
        let seen = capture.seen.lock().unwrap();
        seen.iter().map(|(l, _, t)| (*l, t.clone())).collect()
    }

    #[test]
    fn client_caused_errors_go_to_debug() {
        const H1: &str = "actix_http::h1::dispatcher";
        for text in [
            "stream error: request parse error: invalid Header provided",
            "stream error: request parse error: message head is too large",
            "stream error: I/O error: Connection reset by peer (os error 104)",
            "stream error: request did not complete within the specified timeout",
        ] {
            assert_eq!(run(LevelFilter::Info, Level::Error, H1, text), []);
            assert_eq!(
                run(LevelFilter::Debug, Level::Error, H1, text),
                [(Level::Debug, text.to_owned())]
            );
        }
        // Our own faults keep their level, and other targets are untouched.
        for (target, text) in [
            (H1, "stream error: service error"),
            (H1, "stream error: internal error"),
            ("queuewatch::web", "stream error: request parse error: x"),
            ("actix_http::h1x", "stream error: request parse error: x"),
        ] {
            assert_eq!(
                run(LevelFilter::Info, Level::Error, target, text),
                [(Level::Error, text.to_owned())]
            );
        }
        assert_eq!(run(LevelFilter::Info, Level::Debug, H1, "parse"), []);
        assert!(QuietClientErrors::new(Capture {
            max: LevelFilter::Debug,
            seen: Arc::default()
        })
        .enabled(
            &log::Metadata::builder()
                .level(Level::Error)
                .target(H1)
                .build()
        ));
    }
}
