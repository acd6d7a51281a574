//! What can go wrong loading settings: the file, its YAML, or its values.

use std::fmt;
use std::path::PathBuf;

/// At most this many problems are listed by `Display` (and by the binary),
/// then `... and N more`; [`ConfigError::problems`] keeps them all.
pub const SHOWN_PROBLEMS: usize = 50;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file asked for.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The path is not a regular file (a FIFO, a device, a directory, a socket).
    #[error("cannot read {}: it is {kind}, not a regular file", path.display())]
    NotAFile {
        /// The file asked for.
        path: PathBuf,
        /// What it is instead, e.g. `"a FIFO"`.
        kind: &'static str,
    },
    /// The file is larger than settings may be.
    #[error(
        "cannot read {}: it is larger than the {} MiB settings maximum",
        path.display(),
        limit / (1024 * 1024)
    )]
    TooLarge {
        /// The file asked for.
        path: PathBuf,
        /// The limit in bytes ([`crate::config::MAX_SETTINGS_BYTES`]).
        limit: u64,
    },
    /// The text is not valid YAML or does not fit the settings' shape: unknown
    /// key, wrong type, unparsable duration, missing `queues`.
    #[error("{}", ParseDisplay { message, line: *line, column: *column })]
    Parse {
        /// What is wrong, led by the key path when known, e.g.
        /// ``queues[0].interval: invalid duration "fast": ...``.
        message: String,
        /// 1-based line of the offending text, when known.
        line: Option<usize>,
        /// 1-based column (in characters) of the offending text, when known.
        column: Option<usize>,
    },
    /// The settings parsed but break rules; every broken rule is listed.
    #[error("{}", InvalidDisplay(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The validation problems (empty for I/O and parse errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

/// One broken rule, named by its key path with 0-based list indexes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    /// Key path such as `queues[3].interval` or `genesys.api_url`.
    pub path: String,
    /// What is wrong, e.g. `2s is below the 5s minimum`.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct ParseDisplay<'a> {
    message: &'a str,
    line: Option<usize>,
    column: Option<usize>,
}

impl fmt::Display for ParseDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " at line {line}, column {column}"),
            (Some(line), None) => write!(f, " at line {line}"),
            _ => Ok(()),
        }
    }
}

struct InvalidDisplay<'a>(&'a [Problem]);

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("invalid settings"),
            [one] => write!(f, "invalid settings: {one}"),
            all => {
                write!(f, "invalid settings ({} problems):", all.len())?;
                for problem in all.iter().take(SHOWN_PROBLEMS) {
                    write!(f, "\n  {problem}")?;
                }
                if all.len() > SHOWN_PROBLEMS {
                    write!(f, "\n  ... and {} more", all.len() - SHOWN_PROBLEMS)?;
                }
                Ok(())
            }
        }
    }
}
