//! A tiny SMTP sink on `127.0.0.1:0` (plain, no TLS, no AUTH): it accepts every message and
//! records its envelope and data, so tests show what the SMTP transport really puts on the wire.
//! Addresses named at start are refused at `RCPT TO` with a 550, like a server that knows them
//! to be invalid.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpMessage {
    /// `MAIL FROM` address (without the angle brackets).
    pub from: String,
    /// `RCPT TO` addresses the sink accepted.
    pub to: Vec<String>,
    /// The data between `DATA` and the final `.` (dot-stuffing undone, lines end in CRLF).
    pub data: String,
}

impl SmtpMessage {
    /// The value of header `name` (first occurrence, unfolded), if the data has it.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(value) = found.as_mut() {
                // A folded header continues on lines starting with white space.
                if line.starts_with([' ', '\t']) {
                    value.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_string());
                }
            }
        }
        found
    }
}

/// The running sink; stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<SmtpMessage>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink that accepts every recipient.
    pub async fn start() -> SmtpSink {
        SmtpSink::refusing(&[]).await
    }

    /// Starts a sink that answers `RCPT TO` for any of `refused` with `550` (case-insensitive).
    pub async fn refusing(refused: &[&str]) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let addr = listener.local_addr().expect("smtp sink address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused: Arc<Vec<String>> =
            Arc::new(refused.iter().map(|a| a.to_ascii_lowercase()).collect());
        let sink = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, sink.clone(), refused.clone()));
            }
        });
        SmtpSink {
            addr,
            received,
            task,
        }
    }

    /// The host to configure (`127.0.0.1`).
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port to configure.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What follows `verb` (matched case-insensitively) in `cmd`.
fn argument<'a>(cmd: &'a str, verb: &str) -> Option<&'a str> {
    let head = cmd.get(..verb.len())?;
    head.eq_ignore_ascii_case(verb).then(|| &cmd[verb.len()..])
}

/// `<a@b>` (with optional parameters after it) → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = match (arg.find('<'), arg.find('>')) {
        (Some(s), Some(e)) if s < e => &arg[s + 1..e],
        _ => arg.split_whitespace().next().unwrap_or_default(),
    };
    inner.to_string()
}

/// One SMTP conversation; ends on QUIT, a closed connection or an I/O error.
async fn session(
    stream: TcpStream,
    sink: Arc<Mutex<Vec<SmtpMessage>>>,
    refused: Arc<Vec<String>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 pbx365-testkit smtp sink\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end_matches(['\r', '\n']);
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 pbx365-testkit\r\n"
        } else if let Some(arg) = argument(cmd, "MAIL FROM:") {
            from = Some(address(arg));
            to.clear();
            b"250 OK\r\n"
        } else if let Some(arg) = argument(cmd, "RCPT TO:") {
            let rcpt = address(arg);
            if refused.contains(&rcpt.to_ascii_lowercase()) {
                b"550 5.1.1 mailbox unavailable\r\n"
            } else {
                to.push(rcpt);
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            if from.is_none() || to.is_empty() {
                b"503 5.5.1 need MAIL and RCPT first\r\n"
            } else {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    // Undo dot-stuffing (RFC 5321 §4.5.2).
                    data.push_str(l.strip_prefix('.').unwrap_or(l));
                    data.push_str("\r\n");
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(SmtpMessage {
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        data,
                    });
                b"250 OK queued\r\n"
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.2 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}
