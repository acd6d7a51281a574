//! YAML to [`Settings`] through serde-saphyr, with the key path of any error.
//!
//! serde-saphyr gives the line and column of a failure
//! ([`serde_saphyr::Error::location`]); [`serde_path_to_error`] wraps its
//! deserializer to record which key was being read. Both end up in
//! [`ConfigError::Parse`].

use std::fs::{File, FileType};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_path_to_error::{Segment, Track};

use super::error::ConfigError;
use super::settings::Settings;
use super::validate::shorten;

/// Parses settings.yaml text into [`Settings`] without validating values.
/// A file that parses is read once, without the key tracking; one that
/// fails is read again with it, for the key path of the failure.
pub(crate) fn parse(text: &str) -> Result<Settings, ConfigError> {
    match serde_saphyr::from_str_with_options(text, options()) {
        Ok(settings) => Ok(settings),
        Err(_) => parse_tracked(text),
    }
}

/// [`parse`] with the key path of a failure.
fn parse_tracked(text: &str) -> Result<Settings, ConfigError> {
    let mut failed_at: Option<String> = None;
    let result =
        serde_saphyr::with_deserializer_from_str_with_options(text, options(), |deserializer| {
            let mut track = Track::new();
            let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
            let parsed = Settings::deserialize(tracked);
            if parsed.is_err() {
                failed_at = Some(key_path(&track.path()));
            }
            parsed
        });
    result.map_err(|err| parse_error(&err, failed_at.as_deref().unwrap_or("")))
}

/// Largest settings file accepted, in bytes (16 MiB).
pub const MAX_SETTINGS_BYTES: u64 = 16 * 1024 * 1024;

/// The bytes of a settings file: only a regular file (after following links)
/// of at most [`MAX_SETTINGS_BYTES`]. The kind is checked before the file is
/// opened, because opening a FIFO for reading blocks until a writer comes.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let regular = |file_type: FileType| -> Result<(), ConfigError> {
        match file_kind(file_type) {
            None => Ok(()),
            Some(kind) => Err(ConfigError::NotAFile {
                path: path.to_path_buf(),
                kind,
            }),
        }
    };
    let too_large = || ConfigError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_SETTINGS_BYTES,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    regular(metadata.file_type())?;
    if metadata.len() > MAX_SETTINGS_BYTES {
        return Err(too_large());
    }
    let file = File::open(path).map_err(io)?;
    // The path may have been swapped between the two looks: check what was opened.
    regular(file.metadata().map_err(io)?.file_type())?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(MAX_SETTINGS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// What a non-regular file is, for the error message; `None` for a regular file.
fn file_kind(file_type: FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some("a FIFO");
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return Some("a device");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

/// The file's bytes as text, or a parse error pointing at the first bad byte.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let good = &bytes[..err.valid_up_to()];
        // The prefix is valid UTF-8 by definition.
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ConfigError::Parse {
            message: "the file is not UTF-8 text".to_owned(),
            line: Some(line),
            column: Some(column),
        }
    })
}

/// Defaults, except: unknown tags are errors, plain messages (no source snippet, we report position
/// ourselves), and a node budget large enough for 100 000 queues while
/// still bounding hostile input (alias bombs, deep nesting stay limited).
fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // `!!python/object:x`, `!custom`: an error, not silently dropped.
    options.reject_unsupported_tags = true;
    options.budget = serde_saphyr::budget! {
        max_events: 8_000_000,
        max_nodes: 4_000_000,
    };
    options
}

fn parse_error(err: &serde_saphyr::Error, path: &str) -> ConfigError {
    let location = err.location();
    let line = location.map(|l| usize::try_from(l.line()).unwrap_or(usize::MAX));
    let column = location.map(|l| usize::try_from(l.column()).unwrap_or(usize::MAX));
    // Operator wording (not the developer hints such as "use from_str_multiple").
    let mut message = err.render_with_options(serde_saphyr::render_options! {
        formatter: &serde_saphyr::UserMessageFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
    });
    if let Some(l) = location {
        let suffix = format!(" at line {}, column {}", l.line(), l.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message.truncate(stripped.len());
        }
    }
    if !path.is_empty() {
        message = format!("{path}: {message}");
    }
    ConfigError::Parse {
        message,
        line,
        column,
    }
}

/// `queues[3].interval` style path; empty for the document root.
fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                if is_plain_key(key) {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{:?}", shorten(key)));
                }
            }
            Segment::Unknown => break,
        }
    }
    out
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
