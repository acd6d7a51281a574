//! Telling two names of one file apart (`a.jsonl`, `./a.jsonl`, a link).

use std::path::{Component, Path, PathBuf};

/// Where a file path really points, for telling two names of one file
/// apart: made absolute against the working directory, `.` and `..`
/// resolved lexically, then links resolved for whatever part exists (the
/// file itself, else its directory).
pub(crate) fn resolve_file(path: &Path) -> PathBuf {
    let absolute = match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    };
    let lexical = normalize(&absolute);
    if let Ok(real) = std::fs::canonicalize(&lexical) {
        return real;
    }
    match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => match std::fs::canonicalize(parent) {
            Ok(real_parent) => real_parent.join(name),
            Err(_) => lexical,
        },
        _ => lexical,
    }
}

/// `.` dropped and `..` applied to the part before it, without the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` of the root is the root; at a relative start it stays.
                match out.components().next_back() {
                    Some(Component::Normal(_)) => {
                        out.pop();
                    }
                    Some(Component::RootDir | Component::Prefix(_)) => {}
                    _ => out.push(".."),
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
