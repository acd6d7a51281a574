//! Plain HTTP over a blocking loopback socket, for servers in other
//! processes (the spawned binary). In-process servers need an async client:
//! a blocking one would stall the event loop that serves them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Writes `request` as it is and reads until the server closes.
fn exchange(addr: impl ToSocketAddrs, request: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// One hand-written HTTP/1.x request (the server must close after its
/// answer); the status and the body.
pub fn raw(addr: impl ToSocketAddrs, request: &str) -> (u16, String) {
    let response = exchange(addr, request, Duration::from_secs(10)).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// An HTTP/1.0 GET of `path`; the body, or `None` when nothing answers (yet).
pub fn try_get(addr: SocketAddr, path: &str) -> Option<String> {
    try_get_with(addr, path, "")
}

/// [`try_get`] with more header lines (`extra`: each ending in `\r\n`).
fn try_get_with(addr: SocketAddr, path: &str, extra: &str) -> Option<String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    let response = exchange(addr, &request, Duration::from_secs(5)).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
}

/// [`get`] with an `Accept` header (`/metrics`: see `support::metrics`).
pub fn get_accepting(addr: SocketAddr, path: &str, accept: &str) -> String {
    try_get_with(addr, path, &format!("Accept: {accept}\r\n"))
        .unwrap_or_else(|| panic!("GET {path} on {addr}: no answer"))
}

/// [`try_get`] that must be answered.
pub fn get(addr: SocketAddr, path: &str) -> String {
    try_get(addr, path).unwrap_or_else(|| panic!("GET {path} on {addr}: no answer"))
}
