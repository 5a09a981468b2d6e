//! Phones in tests: free loopback ports for Kamailio, Kamailio's JSON-RPC, and baresip (a real
//! SIP user agent) driven through its `ctrl_tcp` module, its events read as JSON.

use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A loopback port free for both TCP and UDP now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP");
}

/// Calls Kamailio's JSON-RPC at `url`; the whole answer (or the transport error).
pub async fn rpc(url: &str, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    r.json().await.map_err(|e| e.to_string())
}

/// Waits until Kamailio answers JSON-RPC at `url` (polled, at most `secs`).
pub async fn await_kamailio(url: &str, secs: u64) {
    crate::wait::eventually(secs, "Kamailio answers JSON-RPC", || async {
        rpc(url, "core.version", json!([]))
            .await
            .is_ok_and(|v| v.get("result").is_some())
    })
    .await;
}

/// A baresip user agent with one account, killed when dropped.
pub struct Baresip {
    child: Child,
    ctrl: tokio::net::tcp::OwnedWriteHalf,
    events: mpsc::UnboundedReceiver<Value>,
    _dir: tempfile::TempDir,
    /// The account's user (extension number).
    pub user: String,
}

/// Reads netstrings (`LEN:JSON,`) from `stream` into `tx`.
async fn read_netstrings(
    mut stream: tokio::net::tcp::OwnedReadHalf,
    tx: mpsc::UnboundedSender<Value>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(colon) = buf.iter().position(|b| *b == b':') {
            let Ok(len) = std::str::from_utf8(&buf[..colon])
                .unwrap_or("x")
                .parse::<usize>()
            else {
                return;
            };
            if buf.len() < colon + 1 + len + 1 {
                break;
            }
            let body = buf[colon + 1..colon + 1 + len].to_vec();
            buf.drain(..colon + 1 + len + 1);
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                let _ = tx.send(v);
            }
        }
    }
}

impl Baresip {
    /// Starts baresip (no audio device: a sine source, output to /dev/null) and registers
    /// `user@domain` with `secret` through the proxy at `proxy` (UDP).
    pub async fn start(user: &str, domain: &str, secret: &str, proxy: SocketAddr) -> Baresip {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ctrl_port = free_port();
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:0\nsip_verify_server no\n\
             audio_player aufile,/dev/null\naudio_source ausine,440\naudio_alert aufile,/dev/null\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\nmodule aufile.so\n\
             module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        // No account at start: it is added over ctrl_tcp, so no event comes before we listen.
        std::fs::write(dir.path().join("accounts"), "").unwrap();
        let child = spawn_baresip(dir.path());
        let addr = format!("127.0.0.1:{ctrl_port}");
        // Readiness: its control socket accepts (polled).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = TcpStream::connect(&addr).await {
                break s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "baresip's ctrl_tcp did not accept within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (read, ctrl) = stream.into_split();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(read_netstrings(read, tx));
        let mut ua = Baresip {
            child,
            ctrl,
            events,
            _dir: dir,
            user: user.to_string(),
        };
        ua.command(
            "uanew",
            &format!(
                "<sip:{user}@{domain};transport=udp>;auth_pass={secret};outbound=\"sip:{proxy};transport=udp\";regint=600"
            ),
        )
        .await;
        ua
    }

    /// Sends a ctrl_tcp command.
    pub async fn command(&mut self, command: &str, params: &str) {
        let body = json!({"command": command, "params": params, "token": command}).to_string();
        let frame = format!("{}:{body},", body.len());
        self.ctrl
            .write_all(frame.as_bytes())
            .await
            .expect("send to baresip");
    }

    /// The next event (not a command response) for which `pick` holds, within `secs`.
    pub async fn event(&mut self, secs: u64, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(v)) if v.get("event").is_some() && pick(&v) => return v,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("baresip {} ended while waiting for {what}", self.user),
                Err(_) => panic!(
                    "baresip {} did not report {what} within {secs} s",
                    self.user
                ),
            }
        }
    }

    /// Waits for the registration's outcome: `Ok` or the failure's reason (`401 …`).
    pub async fn registration(&mut self) -> Result<(), String> {
        let v = self
            .event(10, "a registration result", |v| {
                matches!(v["type"].as_str(), Some("REGISTER_OK" | "REGISTER_FAIL"))
            })
            .await;
        match v["type"].as_str() {
            Some("REGISTER_OK") => Ok(()),
            _ => Err(v["param"].as_str().unwrap_or_default().to_string()),
        }
    }

    /// Dials `uri`.
    pub async fn dial(&mut self, uri: &str) {
        self.command("dial", uri).await;
    }

    /// Hangs up the current call.
    pub async fn hangup(&mut self) {
        self.command("hangup", "").await;
    }
}

fn spawn_baresip(dir: &Path) -> Child {
    Command::new("baresip")
        .arg("-f")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn baresip (apt-get install baresip-core)")
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
