//! Phones in tests: free loopback ports for Kamailio, Kamailio's JSON-RPC, baresip (a real
//! SIP user agent) driven through its `ctrl_tcp` module, its events read as JSON, a raw SIP
//! client for what attackers send, a presence watcher reading NOTIFY bodies, and a Kamailio a
//! test runs itself (as an admin runs the file `pbx365 sip config` prints).

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
             ausrc_srate 48000\nausrc_channels 2\nauplay_srate 48000\nauplay_channels 2\n\
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

/// A Kamailio the test runs itself with a configuration file (`log_stderror` as the file says,
/// output discarded). Dropping it sends SIGTERM and nothing else: Kamailio's main process then
/// ends its workers, which a SIGKILL (`kill_on_drop`) would leave running after the test.
pub struct Kamailio {
    child: Child,
    _run_dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts `kamailio -DD -E -f cfg_file` with a run directory of its own.
    pub fn start(cfg_file: &Path) -> Kamailio {
        let run_dir = tempfile::tempdir().unwrap();
        let child = Command::new("kamailio")
            .arg("-DD")
            .arg("-E")
            .arg("-f")
            .arg(cfg_file)
            .arg("-Y")
            .arg(run_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kamailio (apt-get install kamailio)");
        Kamailio {
            child,
            _run_dir: run_dir,
        }
    }

    /// Stops it (SIGTERM) and waits until its main process has ended.
    pub async fn stop(mut self) {
        self.term();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }

    fn term(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.term();
    }
}

/// A bare SIP client over UDP from a chosen loopback address, for attack tests: it sends what
/// scanners send (no user agent would) and reads the final answer.
pub struct RawSip {
    sock: tokio::net::UdpSocket,
    proxy: SocketAddr,
    domain: String,
    /// The User-Agent sent.
    pub user_agent: String,
    n: u64,
}

/// A final SIP answer: its status code and its headers' text.
#[derive(Debug, Clone)]
pub struct SipAnswer {
    /// Status code (`401`, `403`, …).
    pub code: u16,
    /// The whole message.
    pub text: String,
}

impl SipAnswer {
    /// The `nonce` of its digest challenge.
    pub fn nonce(&self) -> Option<String> {
        let rest = self.text.split("nonce=\"").nth(1)?;
        Some(rest.split('"').next()?.to_string())
    }
}

impl RawSip {
    /// A client on `local_ip` (e.g. `127.0.0.3`, an address of its own) for Kamailio at `proxy`.
    pub async fn bind(local_ip: &str, proxy: SocketAddr, domain: &str) -> RawSip {
        let sock = tokio::net::UdpSocket::bind((local_ip, 0))
            .await
            .expect("bind a loopback address");
        RawSip {
            sock,
            proxy,
            domain: domain.to_string(),
            user_agent: "pbx365-test".into(),
            n: 0,
        }
    }

    /// Sends one request without waiting for an answer; returns its Call-ID.
    pub async fn send(&mut self, method: &str, ruri: &str, from_user: &str, extra: &str) -> String {
        self.send_text(method, ruri, from_user, extra).await.0
    }

    /// Sends one request; returns its Call-ID and text.
    async fn send_text(
        &mut self,
        method: &str,
        ruri: &str,
        from_user: &str,
        extra: &str,
    ) -> (String, String) {
        self.n += 1;
        let local = self.sock.local_addr().unwrap();
        let call_id = format!(
            "c{}-{}@{}",
            self.n,
            uuid::Uuid::new_v4().simple(),
            local.ip()
        );
        let msg = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{n}x{id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{from_user}@{domain}>;tag=t{n}\r\nTo: <{to}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {n} {method}\r\nContact: <sip:{from_user}@{local}>\r\n\
             User-Agent: {ua}\r\n{extra}Content-Length: 0\r\n\r\n",
            n = self.n,
            id = &call_id[..8],
            domain = self.domain,
            to = if method == "REGISTER" {
                format!("sip:{from_user}@{}", self.domain)
            } else {
                ruri.to_string()
            },
            ua = self.user_agent,
        );
        self.sock
            .send_to(msg.as_bytes(), self.proxy)
            .await
            .expect("send a SIP request");
        (call_id, msg)
    }

    /// Sends one request and waits (at most 4 s) for its final answer, sending it again after
    /// 0.5, 1 and 2 s without one (UDP: RFC 3261 timer A); `None` when none came.
    pub async fn request(
        &mut self,
        method: &str,
        ruri: &str,
        from_user: &str,
        extra: &str,
    ) -> Option<SipAnswer> {
        let (call_id, msg) = self.send_text(method, ruri, from_user, extra).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        let mut resend = Duration::from_millis(500);
        let mut next = tokio::time::Instant::now() + resend;
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = tokio::select! {
                got = tokio::time::timeout_at(deadline, self.sock.recv(&mut buf)) => match got {
                    Ok(Ok(n)) => n,
                    _ => return None,
                },
                _ = tokio::time::sleep_until(next) => {
                    let _ = self.sock.send_to(msg.as_bytes(), self.proxy).await;
                    resend *= 2;
                    next += resend;
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let code = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse::<u16>().ok());
            match code {
                Some(code) if code >= 200 && text.contains(&call_id) => {
                    return Some(SipAnswer { code, text })
                }
                _ => continue, // provisional, or a late answer to an earlier request
            }
        }
    }

    /// A REGISTER of `user` answered with a digest made from `secret` (the challenge first).
    pub async fn register_with(&mut self, user: &str, secret: &str) -> Option<SipAnswer> {
        let uri = format!("sip:{}", self.domain);
        let challenge = self.request("REGISTER", &uri, user, "").await?;
        let Some(nonce) = challenge.nonce() else {
            return Some(challenge);
        };
        let ha1 = pbx365_sip::digest::ha1(user, &self.domain, secret);
        let cnonce = "0a4f113b";
        let response = pbx365_sip::digest::response(&ha1, &nonce, cnonce, "REGISTER", &uri);
        let auth = format!(
            "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
             uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, \
             cnonce=\"{cnonce}\"\r\n",
            realm = self.domain
        );
        self.request("REGISTER", &uri, user, &auth).await
    }
}

/// A phone watching an extension's presence, as a softphone does: a SUBSCRIBE (`Event:
/// presence`) from its own UDP socket, answered with a digest when challenged; every NOTIFY
/// that follows is answered `200 OK` and its body kept. Stops reading when dropped.
pub struct Watcher {
    sock: std::sync::Arc<tokio::net::UdpSocket>,
    proxy: SocketAddr,
    answers: mpsc::UnboundedReceiver<SipAnswer>,
    notifies: mpsc::UnboundedReceiver<String>,
    reader: tokio::task::JoinHandle<()>,
    /// The final answer to the (last) SUBSCRIBE: `200`/`202` when the subscription stands.
    pub code: u16,
}

/// Reads `sock`: final answers to `answers`; each NOTIFY is answered `200 OK` and its body goes
/// to `notifies`.
async fn watch_socket(
    sock: std::sync::Arc<tokio::net::UdpSocket>,
    answers: mpsc::UnboundedSender<SipAnswer>,
    notifies: mpsc::UnboundedSender<String>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            return;
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if let Some(rest) = text.strip_prefix("SIP/2.0 ") {
            if let Some(code) = rest.get(..3).and_then(|c| c.parse::<u16>().ok()) {
                if code >= 200 {
                    let _ = answers.send(SipAnswer { code, text });
                }
            }
            continue;
        }
        if !text.starts_with("NOTIFY ") {
            continue;
        }
        // The answer repeats the request's Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6).
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut reply = String::from("SIP/2.0 200 OK\r\n");
        for line in head.lines().skip(1) {
            let name = line.split(':').next().unwrap_or_default().trim();
            if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                reply.push_str(line);
                reply.push_str("\r\n");
            }
        }
        reply.push_str("Content-Length: 0\r\n\r\n");
        let _ = sock.send_to(reply.as_bytes(), from).await;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let _ = notifies.send(body.to_string());
    }
}

impl Watcher {
    /// Extension `user` (with `secret`, or none: a stranger) subscribes to the presence of
    /// `target` through Kamailio at `proxy`; [`Watcher::code`] is the final answer.
    pub async fn subscribe(
        proxy: SocketAddr,
        domain: &str,
        user: &str,
        secret: Option<&str>,
        target: &str,
    ) -> Watcher {
        let sock = std::sync::Arc::new(
            tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback port"),
        );
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let (notifies_tx, notifies) = mpsc::unbounded_channel();
        let reader = tokio::spawn(watch_socket(sock.clone(), answers_tx, notifies_tx));
        let mut w = Watcher {
            sock,
            proxy,
            answers,
            notifies,
            reader,
            code: 0,
        };
        let local = w.sock.local_addr().unwrap();
        let call_id = format!("w{}@127.0.0.1", uuid::Uuid::new_v4().simple());
        let ruri = format!("sip:{target}@{domain}");
        let subscribe = |cseq: u32, auth: &str| {
            format!(
                "SUBSCRIBE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bK{b}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=w{user}\r\nTo: <{ruri}>\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:{user}@{local}>\r\n\
                 Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 600\r\n\
                 User-Agent: pbx365-test\r\n{auth}Content-Length: 0\r\n\r\n",
                b = uuid::Uuid::new_v4().simple(),
            )
        };
        let first = w.exchange(&subscribe(1, "")).await;
        let answer = match (first.code, secret, first.nonce()) {
            (407, Some(secret), Some(nonce)) => {
                let ha1 = pbx365_sip::digest::ha1(user, domain, secret);
                let cnonce = "5ab0c1d2";
                let response =
                    pbx365_sip::digest::response(&ha1, &nonce, cnonce, "SUBSCRIBE", &ruri);
                let auth = format!(
                    "Proxy-Authorization: Digest username=\"{user}\", realm=\"{domain}\", \
                     nonce=\"{nonce}\", uri=\"{ruri}\", response=\"{response}\", algorithm=MD5, \
                     qop=auth, nc=00000001, cnonce=\"{cnonce}\"\r\n"
                );
                w.exchange(&subscribe(2, &auth)).await
            }
            _ => first,
        };
        w.code = answer.code;
        w
    }

    /// Sends `msg` and waits (at most 4 s, resending as RFC 3261 timer A) for a final answer.
    async fn exchange(&mut self, msg: &str) -> SipAnswer {
        self.sock
            .send_to(msg.as_bytes(), self.proxy)
            .await
            .expect("send a SUBSCRIBE");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        let mut resend = Duration::from_millis(500);
        let mut next = tokio::time::Instant::now() + resend;
        loop {
            tokio::select! {
                got = tokio::time::timeout_at(deadline, self.answers.recv()) => match got {
                    Ok(Some(a)) => return a,
                    _ => panic!("no final answer to a SUBSCRIBE within 4 s"),
                },
                _ = tokio::time::sleep_until(next) => {
                    let _ = self.sock.send_to(msg.as_bytes(), self.proxy).await;
                    resend *= 2;
                    next += resend;
                }
            }
        }
    }

    /// The body of the next NOTIFY for which `pick` holds (earlier ones are skipped), within
    /// `secs`.
    pub async fn notified(&mut self, secs: u64, what: &str, pick: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.notifies.recv()).await {
                Ok(Some(body)) if pick(&body) => return body,
                Ok(Some(body)) => seen.push(body),
                Ok(None) => panic!("the watcher stopped reading while waiting for {what}"),
                Err(_) => panic!("no NOTIFY with {what} within {secs} s; got {seen:#?}"),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
