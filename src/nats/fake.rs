//! A fake NATS server for unit tests, on a loopback port: it sends the
//! `INFO` it is given, answers `PING`, and answers every request (a `PUB` or
//! `HPUB` with a reply subject) with one fixed payload, e.g. a JetStream API
//! error. Its threads end with the test process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// What a JetStream-enabled account that is not allowed JetStream answers.
pub(crate) const JETSTREAM_NOT_ENABLED: &str = r#"{"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":503,"err_code":10039,"description":"jetstream not enabled for account"}}"#;

/// Starts the server; its `nats://` URL.
pub(crate) fn start(version: &str, jetstream: bool, reply: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let info = format!(
        "INFO {{\"server_id\":\"fake\",\"server_name\":\"fake\",\"version\":\"{version}\",\
         \"proto\":1,\"host\":\"127.0.0.1\",\"port\":{port},\"headers\":true,\
         \"jetstream\":{jetstream},\"max_payload\":1048576}}\r\n"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let info = info.clone();
            std::thread::spawn(move || {
                let _ = serve(stream, &info, reply);
            });
        }
    });
    format!("nats://127.0.0.1:{port}")
}

fn serve(stream: TcpStream, info: &str, reply: &str) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    out.write_all(info.as_bytes())?;
    let mut input = BufReader::new(stream);
    let mut subscriptions: Vec<(String, String)> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (reply_to, size) = match words.as_slice() {
            ["PING"] => {
                out.write_all(b"PONG\r\n")?;
                continue;
            }
            ["SUB", subject, .., sid] => {
                subscriptions.push(((*subject).to_owned(), (*sid).to_owned()));
                continue;
            }
            ["PUB", _, size] => (None, *size),
            ["PUB", _, reply_to, size] => (Some(*reply_to), *size),
            ["HPUB", _, _, size] => (None, *size),
            ["HPUB", _, reply_to, _, size] => (Some(*reply_to), *size),
            _ => continue, // CONNECT, UNSUB, PONG
        };
        let size: usize = size.parse().unwrap_or(0);
        let mut payload = vec![0; size + 2];
        input.read_exact(&mut payload)?;
        let Some(reply_to) = reply_to else { continue };
        if let Some((_, sid)) = subscriptions
            .iter()
            .find(|(pattern, _)| super::subject_matches(pattern, reply_to))
        {
            let message = format!("MSG {reply_to} {sid} {}\r\n{reply}\r\n", reply.len());
            out.write_all(message.as_bytes())?;
        }
    }
}
