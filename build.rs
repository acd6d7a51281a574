//! Code layout for release builds: the functions queuewatch runs
//! (`layout/queuewatch.order`, written by `layout/make.sh`) are linked next
//! to each other, so the code it keeps resident is about 2 MiB instead of
//! about 6 (BENCHMARKS.md, "Code layout").
//!
//! Only where the linker is known to be LLD, which reads the list: release
//! builds for x86_64 Linux (GNU) with Rust 1.90 or newer and no linker of
//! the user's choosing. Anywhere else, and with `QUEUEWATCH_CODE_LAYOUT=off`,
//! the build is as if this file did not exist.

use std::env;
use std::path::Path;
use std::process::Command;

const ORDER: &str = "layout/queuewatch.order";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=QUEUEWATCH_CODE_LAYOUT");
    if let Some(order) = order_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        // Names of functions that are gone since the list was made are skipped.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The list's path, when this build's linker is LLD and layout is wanted.
fn order_file() -> Option<String> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("QUEUEWATCH_CODE_LAYOUT") == "off"
        || var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        // A linker of the user's choosing may not be LLD.
        || env::var_os("RUSTC_LINKER").is_some()
        || ["linker", "fuse-ld", "link-self-contained"]
            .iter()
            .any(|flag| var("CARGO_ENCODED_RUSTFLAGS").contains(flag))
        || !rustc_links_with_lld(&var("RUSTC"))
    {
        return None;
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join(ORDER);
    order
        .is_file()
        .then(|| order.to_string_lossy().into_owned())
}

/// Rust 1.90 made LLD the default linker of x86_64-unknown-linux-gnu.
fn rustc_links_with_lld(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split(['.', '-'])
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
