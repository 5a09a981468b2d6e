//! Phones end to end (SPEC §8, security checklist §7): `pbx365 serve` runs a real Kamailio with
//! the configuration of `pbx365 sip config`; real baresip phones register with secrets from
//! `pbx365 ext sip-secret`, call each other, and meet Do Not Disturb set through the API.

use pbx365_store::{ExtensionOp, Store};
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::process::{command, run, token, write_config, Server};
use pbx365_testkit::sip::{await_kamailio, free_port, rpc, Baresip, RawSip, Watcher};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The running deployment: pbx365 with Kamailio as its child.
struct Phones {
    server: Server,
    config: String,
    dir: std::path::PathBuf,
    proxy: std::net::SocketAddr,
    rpc_url: String,
    token: String,
    http: reqwest::Client,
}

impl Phones {
    async fn start(db: &FreshDb) -> Phones {
        Phones::start_managing(db, true).await
    }

    /// pbx365 running Kamailio (`manage`), or pushing to one the admin runs (not yet started).
    async fn start_managing(db: &FreshDb, manage: bool) -> Phones {
        let (sip, rpc_port) = (free_port(), free_port());
        let rpc_url = format!("http://127.0.0.1:{rpc_port}/RPC");
        // The SIP domain is a name: as 127.0.0.1 (an alias without port) every port of the
        // phones' address would be Kamailio's own, and in-dialog requests (ACK, BYE) would loop.
        let extra = format!(
            "[sip]\ndomain = \"localhost\"\nlisten = \"127.0.0.1:{sip}\"\nrpc_url = \"{rpc_url}\"\nmanage_kamailio = {manage}\n"
        );
        let config = write_config(db.dir.path(), &db.url, &extra);
        let server = Server::start_with(
            command(db.dir.path())
                .arg("serve")
                .env("PBX365_SIP__MANAGE_KAMAILIO", manage.to_string()),
            None,
        )
        .await;
        if manage {
            await_kamailio(&rpc_url, 20).await;
        }
        let config = config.display().to_string();
        let token = token(db.dir.path(), std::path::Path::new(&config)).await;
        Phones {
            server,
            config,
            dir: db.dir.path().to_path_buf(),
            proxy: format!("127.0.0.1:{sip}").parse().unwrap(),
            rpc_url,
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn extension(&self, number: &str, name: &str) {
        self.api(
            reqwest::Method::POST,
            "/extensions",
            json!({"number": number, "display_name": name}),
        )
        .await;
    }

    async fn profile(&self, number: &str, profile: &str) {
        self.api(
            reqwest::Method::PUT,
            &format!("/extensions/{number}/profile"),
            json!({"profile": profile}),
        )
        .await;
    }

    /// Waits until `GET /api/v1/extensions/{number}` says `on_call` is `value`.
    async fn on_call(&self, number: &str, value: bool) {
        let what = format!("{number} on a call: {value}");
        pbx365_testkit::wait::eventually(10, &what, || async {
            let ext = self
                .api(
                    reqwest::Method::GET,
                    &format!("/extensions/{number}"),
                    json!(null),
                )
                .await;
            ext["on_call"] == value
        })
        .await;
    }

    async fn secret(&self, number: &str) -> String {
        let (code, out, err) = run(
            &self.dir,
            &["ext", "sip-secret", number, "--config", &self.config],
            None,
        )
        .await;
        assert_eq!(code, 0, "sip-secret failed: {err}");
        let secret = out.trim().to_string();
        assert!(secret.len() >= 22 && !secret.contains(char::is_whitespace));
        secret
    }

    async fn phone(&self, number: &str, secret: &str) -> Baresip {
        Baresip::start(number, "localhost", secret, self.proxy).await
    }

    /// Stops the Kamailio pbx365 runs (SIGTERM) and waits for the one pbx365 starts instead.
    async fn restart_kamailio(&self) {
        let pid = self.kamailio_pid().expect("Kamailio's pid in the log");
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        pbx365_testkit::wait::eventually(20, "a new Kamailio", || async {
            self.kamailio_pid().is_some_and(|now| now != pid)
        })
        .await;
        await_kamailio(&self.rpc_url, 20).await;
    }

    /// Extension `user` watching `target`'s presence.
    async fn watch(&self, user: &str, secret: Option<&str>, target: &str) -> Watcher {
        Watcher::subscribe(self.proxy, "localhost", user, secret, target).await
    }

    /// Extension `user` (with its secret) watching `target`, the subscription accepted.
    async fn watching(&self, user: &str, secret: &str, target: &str) -> Watcher {
        let w = self.watch(user, Some(secret), target).await;
        assert!(
            matches!(w.code, 200 | 202),
            "subscription answered {}",
            w.code
        );
        w
    }

    /// The pid of the Kamailio running now (from pbx365's log).
    fn kamailio_pid(&self) -> Option<u32> {
        let log = strip_ansi(&self.server.stderr_text());
        log.lines()
            .rfind(|l| l.contains("Kamailio started"))
            .and_then(|l| l.split("pid=").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
    }
}

/// The log without terminal colour codes (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}

/// A calls B; B must ring with A's name, then A hangs up.
async fn rings(a: &mut Baresip, b: &mut Baresip, caller_name: &str) {
    a.dial(&format!("sip:{}@localhost", b.user)).await;
    let incoming = b.event(5, "an incoming call", is("CALL_INCOMING")).await;
    assert_eq!(incoming["peerdisplayname"], caller_name, "{incoming}");
    a.event(5, "ringing", is("CALL_RINGING")).await;
    a.hangup().await;
    b.event(5, "the call's end", is("CALL_CLOSED")).await;
    a.event(5, "the call's end", is("CALL_CLOSED")).await;
}

/// A calls `number` and the call ends at once with `code`.
async fn refused(a: &mut Baresip, number: &str, code: &str) -> Duration {
    let started = Instant::now();
    a.dial(&format!("sip:{number}@localhost")).await;
    let closed = a.event(5, "the call's end", is("CALL_CLOSED")).await;
    let param = closed["param"].as_str().unwrap_or_default();
    assert!(param.starts_with(code), "expected {code}, got {closed}");
    started.elapsed()
}

on_both!(phones_register_ring_and_follow_do_not_disturb);

async fn phones_register_ring_and_follow_do_not_disturb(db: FreshDb) {
    let p = Phones::start(&db).await;
    p.extension("101", "Ann Example").await;
    p.extension("102", "Bob Example").await;
    p.extension("103", "Cid Example").await;
    let (s101, s102, s103) = (
        p.secret("101").await,
        p.secret("102").await,
        p.secret("103").await,
    );

    // Registration with pbx365's secrets; a wrong secret is refused with 401.
    let mut a = p.phone("101", &s101).await;
    let mut b = p.phone("102", &s102).await;
    a.registration().await.expect("101 registers");
    b.registration().await.expect("102 registers");
    let mut wrong = p.phone("101", "not-the-secret").await;
    let why = wrong
        .registration()
        .await
        .expect_err("a wrong secret is refused");
    assert!(why.starts_with("401"), "{why}");
    drop(wrong);

    // A calls B: B rings with A's display name. Unknown numbers get 404.
    rings(&mut a, &mut b, "Ann Example").await;
    refused(&mut a, "999", "404").await;

    // B on Do Not Disturb through the API: A's next call ends with 486 within 1 s of the change.
    let changed = Instant::now();
    p.profile("102", "dnd").await;
    holds(&p, "prof", "102", Some("dnd")).await;
    refused(&mut a, "102", "486").await;
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "486 came {:?} after the change",
        changed.elapsed()
    );
    p.profile("102", "available").await;
    holds(&p, "prof", "102", Some("available")).await;
    rings(&mut a, &mut b, "Ann Example").await;

    // An extension without a registration gets 480.
    refused(&mut a, "103", "480").await;

    // Rotating a secret ends the old one.
    let mut c = p.phone("103", &s103).await;
    c.registration().await.expect("103 registers");
    drop(c);
    let s103_new = p.secret("103").await;
    let mut old = p.phone("103", &s103).await;
    assert!(
        old.registration().await.is_err(),
        "the old secret still works"
    );
    drop(old);

    // A disabled extension cannot register (even with its current secret).
    let store = Store::connect(&db.url).await.unwrap();
    store
        .apply_extension_ops(
            &[ExtensionOp::Disable {
                number: "103".into(),
                at: chrono::Utc::now(),
            }],
            None,
        )
        .await
        .unwrap();
    let mut disabled = p.phone("103", &s103_new).await;
    assert!(
        disabled.registration().await.is_err(),
        "a disabled extension registered"
    );
    drop(disabled);
    store.close().await;

    // Kamailio restarted: it reloads the profiles from the store, so DND still holds.
    p.profile("102", "dnd").await;
    p.restart_kamailio().await;
    let held = rpc(&p.rpc_url, "htable.get", json!(["prof", "102"]))
        .await
        .unwrap();
    assert_eq!(held["result"]["item"]["value"], "dnd", "{held}");
    refused(&mut a, "102", "486").await;

    let status = p.server.terminate().await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_config_names_this_store_and_domain_and_sip_secret_refuses_unknown_numbers() {
    let db = pbx365_testkit::db::sqlite().await;
    let config = write_config(
        db.dir.path(),
        &db.url,
        "public_url = \"https://pbx.example.com\"\n[sip]\naway = \"busy\"\n",
    );
    let config = config.display().to_string();
    let (code, out, err) = run(db.dir.path(), &["sip", "config", "--config", &config], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("#!KAMAILIO"), "{out}");
    let file = db.url.trim_start_matches("sqlite://");
    assert!(
        out.contains(&format!("#!define DBURL \"sqlite://{file}\"")),
        "{out}"
    );
    assert!(out.contains("auth_check(\"pbx.example.com\", \"sip_subscriber\", \"1\")"));
    assert!(out.contains("loadmodule \"db_sqlite.so\""));

    let (code, out, err) = run(
        db.dir.path(),
        &["ext", "sip-secret", "555", "--config", &config],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("extension '555' does not exist"), "{err}");
}

on_both!(sync_changes_reach_kamailio_and_caller_ids_are_escaped);

/// Polls Kamailio until its `table` holds `value` for `number` (`None`: no entry).
async fn holds(p: &Phones, table: &str, number: &str, value: Option<&str>) {
    let what = format!("Kamailio's {table} to hold {value:?} for {number}");
    pbx365_testkit::wait::eventually(10, &what, || async {
        let got = rpc(&p.rpc_url, "htable.get", json!([table, number]))
            .await
            .unwrap_or_default();
        let held = got["result"]["item"]["value"].as_str();
        held == value && (value.is_some() || got.get("error").is_some())
    })
    .await;
}

async fn sync_changes_reach_kamailio_and_caller_ids_are_escaped(db: FreshDb) {
    let p = Phones::start(&db).await;
    // A quote or a backslash in a name must not break the quoted display name on the INVITE.
    let tricky = r#"Dee "The Boss" O\Neil"#;
    p.extension("104", tricky).await;
    p.extension("105", "Eve Example").await;
    let (s104, s105) = (p.secret("104").await, p.secret("105").await);
    let mut d = p.phone("104", &s104).await;
    let mut e = p.phone("105", &s105).await;
    d.registration().await.expect("104 registers");
    e.registration().await.expect("105 registers");
    d.dial("sip:105@localhost").await;
    let incoming = e.event(5, "an incoming call", is("CALL_INCOMING")).await;
    let shown = incoming["peerdisplayname"].as_str().unwrap_or_default();
    assert_eq!(shown, r#"Dee \"The Boss\" O\\Neil"#, "{incoming}");
    // 105 answers: both ends are on a call (Kamailio's dialogs), as the API shows; after the
    // hang-up neither is.
    e.command("accept", "").await;
    d.event(5, "the answer", is("CALL_ESTABLISHED")).await;
    p.on_call("105", true).await;
    p.on_call("104", true).await;
    let list = console_page(&p, "/console/extensions").await;
    assert!(list.contains("id=\"on-call-105\""), "{list}");
    d.hangup().await;
    e.event(5, "the call's end", is("CALL_CLOSED")).await;
    d.event(5, "the call's end", is("CALL_CLOSED")).await;
    p.on_call("105", false).await;

    // The sync disables 105 (its write, not the API's): Kamailio forgets it and ends its
    // registration; calls to it get 404.
    let store = Store::connect(&db.url).await.unwrap();
    let sync = |op: ExtensionOp| {
        let store = store.clone();
        async move { store.apply_extension_ops(&[op], None).await.unwrap() }
    };
    sync(ExtensionOp::Disable {
        number: "105".into(),
        at: chrono::Utc::now(),
    })
    .await;
    holds(&p, "prof", "105", None).await;
    let contacts = rpc(&p.rpc_url, "ul.lookup", json!(["location", "105"]))
        .await
        .unwrap();
    assert!(
        contacts.get("error").is_some(),
        "105 still registered: {contacts}"
    );
    refused(&mut d, "105", "404").await;

    // Re-enabled by the sync: routable again (480 until its phone registers anew).
    sync(ExtensionOp::Enable {
        number: "105".into(),
    })
    .await;
    holds(&p, "prof", "105", Some("available")).await;
    refused(&mut d, "105", "480").await;
    drop(e);
    let mut e = p.phone("105", &s105).await;
    e.registration().await.expect("105 registers again");
    d.dial("sip:105@localhost").await;
    e.event(5, "an incoming call", is("CALL_INCOMING")).await;
    d.hangup().await;
    d.event(5, "the call's end", is("CALL_CLOSED")).await;

    // Deleted: gone from Kamailio too.
    sync(ExtensionOp::Delete {
        number: "105".into(),
    })
    .await;
    holds(&p, "prof", "105", None).await;
    refused(&mut d, "105", "404").await;
    store.close().await;

    // A new secret (from the CLI, another process) ends the registration made with the old one;
    // a phone with the new secret registers.
    let s104_new = p.secret("104").await;
    pbx365_testkit::wait::eventually(10, "104's old registration to end", || async {
        rpc(&p.rpc_url, "ul.lookup", json!(["location", "104"]))
            .await
            .is_ok_and(|v| v.get("error").is_some())
    })
    .await;
    drop(d);
    let mut d = p.phone("104", &s104_new).await;
    d.registration()
        .await
        .expect("104 registers with its new secret");

    let status = p.server.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// True when process `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pbx365_takes_its_kamailio_along() {
    let db = pbx365_testkit::db::sqlite().await;
    let mut p = Phones::start(&db).await;
    let kamailio = p.kamailio_pid().expect("Kamailio's pid in the log");
    assert!(!exited(kamailio));
    // SIGKILL: pbx365 runs no code to stop its child.
    p.server.child.start_kill().unwrap();
    p.server.child.wait().await.unwrap();
    pbx365_testkit::wait::eventually(10, "Kamailio to exit with pbx365", || async {
        exited(kamailio)
    })
    .await;
    pbx365_testkit::wait::eventually(10, "Kamailio's workers to exit too", || async {
        rpc(&p.rpc_url, "core.version", json!([])).await.is_err()
    })
    .await;
}

/// `n` OPTIONS and REGISTERs from random users, a third with a scanner's User-Agent, sent
/// without waiting for answers.
async fn burst(scanner: &mut RawSip, n: u32) {
    for i in 0..n {
        scanner.user_agent = if i % 3 == 0 {
            "friendly-scanner".into()
        } else {
            format!("scan{i}")
        };
        // A different user each time, as a scanner sweeping for extensions.
        let user = format!("u{}x{n}", u64::from(i) * 7919);
        let method = if i % 2 == 0 { "OPTIONS" } else { "REGISTER" };
        scanner
            .send(method, &format!("sip:{user}@localhost"), &user, "")
            .await;
    }
}

/// Kamailio's shared memory in use (`core.shmmem`).
async fn shm_used(p: &Phones) -> u64 {
    let v = rpc(&p.rpc_url, "core.shmmem", json!([])).await.unwrap();
    v["result"]["real_used"]
        .as_u64()
        .unwrap_or_else(|| panic!("no shared memory figure: {v}"))
}

/// How many log lines contain `text`.
fn logged(p: &Phones, text: &str) -> usize {
    p.server
        .stderr_text()
        .lines()
        .filter(|l| l.contains(text))
        .count()
}

/// Security checklist §7 against the real Kamailio pbx365 runs: no open relay (R7.3), the
/// JSON-RPC answers only pbx365's address (R7.4), a scanner flood leaves memory flat (R7.6),
/// wrong secrets are refused, counted and their address banned while a phone elsewhere still
/// registers (R7.2), and the console shows the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_refused_counted_and_banned() {
    let db = pbx365_testkit::db::sqlite().await;
    let p = Phones::start(&db).await;
    p.extension("101", "Ann Example").await;
    let s101 = p.secret("101").await;

    // R7.3: unauthenticated INVITEs to other domains or external numbers are challenged or
    // refused, never relayed; a caller from another domain is refused.
    let mut outsider = RawSip::bind("127.0.0.5", p.proxy, "localhost").await;
    for ruri in [
        "sip:+15551234567@evil.example.com",
        "sip:004915551234@localhost",
        "sip:101@evil.example.com",
    ] {
        let a = outsider.request("INVITE", ruri, "101", "").await;
        let a = a.unwrap_or_else(|| panic!("no answer to an INVITE for {ruri}"));
        assert!(matches!(a.code, 403 | 407), "{ruri}: {}", a.text);
    }
    let mut foreign = RawSip::bind("127.0.0.5", p.proxy, "evil.example.com").await;
    let a = foreign
        .request("INVITE", "sip:+15551234567@localhost", "attacker", "")
        .await
        .expect("an answer");
    assert_eq!(a.code, 403, "{}", a.text);

    // R7.4: Kamailio's JSON-RPC refuses a request from another address (127.0.0.2).
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = elsewhere
        .post(&p.rpc_url)
        .json(&json!({"jsonrpc": "2.0", "method": "core.version", "id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let ours = rpc(&p.rpc_url, "core.version", json!([])).await.unwrap();
    assert!(ours.get("result").is_some(), "{ours}");

    // R7.6: thousands of OPTIONS and REGISTERs from random users (some with scanner User-Agents)
    // leave Kamailio's memory flat; the flooding address is banned, logged once.
    let mut scanner = RawSip::bind("127.0.0.4", p.proxy, "localhost").await;
    let mut probe = RawSip::bind("127.0.0.6", p.proxy, "localhost").await;
    burst(&mut scanner, 500).await;
    // Kamailio has read the burst once a request sent after it is answered.
    assert!(probe
        .request("OPTIONS", "sip:localhost", "probe", "")
        .await
        .is_some());
    let before = shm_used(&p).await;
    burst(&mut scanner, 5000).await;
    assert!(probe
        .request("OPTIONS", "sip:localhost", "probe", "")
        .await
        .is_some());
    let after = shm_used(&p).await;
    assert!(
        after <= before + 256 * 1024,
        "Kamailio's shared memory grew from {before} to {after} bytes"
    );
    assert_eq!(logged(&p, "banned 127.0.0.4"), 1, "the ban is logged once");

    // R7.2: wrong secrets from one address get 401, are counted, and the address is then
    // banned (403, no challenge) for the rest of 200 attempts; the ban is logged once.
    let mut attacker = RawSip::bind("127.0.0.3", p.proxy, "localhost").await;
    let mut codes = Vec::new();
    for _ in 0..200 {
        let a = attacker.register_with("101", "not-the-secret").await;
        codes.push(a.map_or(0, |a| a.code));
    }
    assert_eq!(codes[0], 401, "a wrong secret gets 401");
    let banned_at = codes
        .iter()
        .position(|c| *c == 403)
        .expect("the address is banned");
    assert!(
        banned_at < pbx365_sip::config::FAIL_LIMIT as usize,
        "{codes:?}"
    );
    assert!(codes[banned_at..].iter().all(|c| *c == 403), "{codes:?}");
    assert_eq!(logged(&p, "banned 127.0.0.3"), 1, "the ban is logged once");
    // A phone with the right secret from another address still registers.
    let mut a = p.phone("101", &s101).await;
    a.registration()
        .await
        .expect("101 registers from 127.0.0.1");

    // The console's Settings › Phones shows what Kamailio counted.
    let page = phones_page(&p).await;
    let count = |id: &str| -> u64 {
        page.split(&format!("id=\"{id}\">"))
            .nth(1)
            .and_then(|r| r.split('<').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {id} on the page: {page}"))
    };
    assert!(count("sip-auth-failed") >= u64::from(pbx365_sip::config::FAIL_LIMIT));
    assert!(count("sip-banned") >= 2, "{page}");

    let status = p.server.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// The console's Settings › Phones page, signed in as the first admin.
async fn phones_page(p: &Phones) -> String {
    console_page(p, "/console/settings/phones").await
}

/// A console page, signed in as the first admin.
async fn console_page(p: &Phones, path: &str) -> String {
    let password = std::fs::read_to_string(p.dir.join("data/initial-admin-password")).unwrap();
    let (console, _) = crate::sync_wiring::sign_in(&p.server.base, password.trim()).await;
    console
        .get(format!("{}{path}", p.server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A Kamailio the admin runs (manage_kamailio = false) that is down when a profile changes: the
/// console's status page says so and how many changes wait; once Kamailio runs (with the file
/// `pbx365 sip config` prints), the change is retried and taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kamailio_that_is_down_is_reported_and_retried() {
    let db = pbx365_testkit::db::sqlite().await;
    let p = Phones::start_managing(&db, false).await;
    p.extension("101", "Ann Example").await;
    p.profile("101", "dnd").await;
    pbx365_testkit::wait::eventually(10, "the status page to report Kamailio down", || async {
        let page = phones_page(&p).await;
        page.contains("id=\"sip-error\"") && page.contains("cannot be reached")
    })
    .await;
    // The sentence says what to do, not reqwest's "error sending request".
    let page = phones_page(&p).await;
    assert!(page.contains("start Kamailio"), "{page}");
    assert!(!page.contains("error sending request"), "{page}");

    let (code, cfg, err) = run(&p.dir, &["sip", "config", "--config", &p.config], None).await;
    assert_eq!(code, 0, "{err}");
    let cfg_file = p.dir.join("kamailio.cfg");
    std::fs::write(
        &cfg_file,
        cfg.replace("log_stderror=no", "log_stderror=yes"),
    )
    .unwrap();
    let _kamailio = pbx365_testkit::sip::Kamailio::start(&cfg_file);
    await_kamailio(&p.rpc_url, 20).await;
    pbx365_testkit::wait::eventually(30, "the waiting change to be retried and taken", || async {
        let page = phones_page(&p).await;
        page.contains("id=\"sip-ok\"") && page.contains(", 0 waiting")
    })
    .await;
    holds(&p, "prof", "101", Some("dnd")).await;

    let status = p.server.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// What a watching phone reads in a NOTIFY's PIDF body.
fn busy(body: &str) -> bool {
    body.contains("<basic>open</basic>")
        && body.contains("busy/>")
        && body.contains("Do not disturb")
}

fn available(body: &str) -> bool {
    body.contains("<basic>open</basic>")
        && !body.contains("activities")
        && body.contains("Available")
}

on_both!(watchers_see_busy_then_available_even_after_a_kamailio_restart);

/// Presence (SPEC §8): a phone watching B (SUBSCRIBE, Event: presence) is told B's profile as
/// PIDF: busy on Do Not Disturb set through the API, available when set back; a watcher that
/// subscribes after Kamailio restarted still sees the stored profile. Strangers, wrong secrets
/// and unknown numbers get nothing; phones cannot publish presence themselves.
async fn watchers_see_busy_then_available_even_after_a_kamailio_restart(db: FreshDb) {
    let p = Phones::start(&db).await;
    p.extension("101", "Ann Example").await;
    p.extension("102", "Bob Example").await;
    let s101 = p.secret("101").await;

    let mut w = p.watching("101", &s101, "102").await;
    w.notified(10, "102 available", available).await;
    let changed = Instant::now();
    p.profile("102", "dnd").await;
    let body = w.notified(10, "102 busy", busy).await;
    assert!(body.contains("sip:102@localhost"), "{body}");
    assert!(
        changed.elapsed() < Duration::from_secs(2),
        "busy came {:?} after the change",
        changed.elapsed()
    );
    p.profile("102", "available").await;
    w.notified(10, "102 available again", available).await;
    p.profile("102", "away").await;
    w.notified(10, "102 away", |b| {
        b.contains("away/>") && b.contains("Away")
    })
    .await;

    // No presence for strangers: without credentials, or with a wrong secret, the SUBSCRIBE is
    // only challenged; an unknown number is 404 (after authentication).
    assert_eq!(p.watch("555", None, "102").await.code, 407);
    assert_eq!(
        p.watch("101", Some("not-the-secret"), "102").await.code,
        407
    );
    assert_eq!(p.watch("101", Some(&s101), "999").await.code, 404);
    // A phone cannot publish presence: that is pbx365's (even from Kamailio's own address).
    let mut phone = RawSip::bind("127.0.0.1", p.proxy, "localhost").await;
    let a = phone
        .request("PUBLISH", "sip:102@localhost", "101", "Event: presence\r\n")
        .await
        .expect("an answer to a PUBLISH");
    assert_eq!(a.code, 403, "{}", a.text);

    // Kamailio keeps presence in memory: after a restart pbx365 publishes it again, so a
    // watcher subscribing then sees the stored profile.
    p.profile("102", "dnd").await;
    w.notified(10, "102 busy", busy).await;
    drop(w);
    p.restart_kamailio().await;
    let mut w = p.watching("101", &s101, "102").await;
    w.notified(15, "102 busy after the restart", busy).await;

    // A disabled extension is shown offline to those who watch it.
    let store = Store::connect(&db.url).await.unwrap();
    store
        .apply_extension_ops(
            &[ExtensionOp::Disable {
                number: "102".into(),
                at: chrono::Utc::now(),
            }],
            None,
        )
        .await
        .unwrap();
    w.notified(10, "102 offline", |b| b.contains("<basic>closed</basic>"))
        .await;
    store.close().await;

    let status = p.server.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// A Kamailio the admin runs with a configuration that lacks what pbx365 needs (here an old one
/// without `pua_rpc`, so `pua.publish` is refused): the console's status page says Kamailio
/// refused the change and what to check, and the change waits; once Kamailio runs the file
/// `pbx365 sip config` prints, the change is retried and taken, presence included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kamailio_that_refuses_an_update_is_reported_and_retried() {
    let db = pbx365_testkit::db::sqlite().await;
    let p = Phones::start_managing(&db, false).await;
    let (code, cfg, err) = run(&p.dir, &["sip", "config", "--config", &p.config], None).await;
    assert_eq!(code, 0, "{err}");
    let cfg = cfg.replace("log_stderror=no", "log_stderror=yes");
    let old = cfg.replace("loadmodule \"pua_rpc.so\"\n", "");
    assert_ne!(old, cfg);
    let kamailio = |text: &str| {
        let file = p.dir.join("kamailio.cfg");
        std::fs::write(&file, text).unwrap();
        pbx365_testkit::sip::Kamailio::start(&file)
    };
    let refusing = kamailio(&old);
    await_kamailio(&p.rpc_url, 20).await;

    p.extension("101", "Ann Example").await;
    p.extension("102", "Bob Example").await;
    p.profile("102", "dnd").await;
    pbx365_testkit::wait::eventually(10, "the status page to report the refusal", || async {
        let page = phones_page(&p).await;
        page.contains("id=\"sip-error\"")
            && page.contains("Kamailio refused pua.publish")
            && page.contains("pbx365 sip config")
    })
    .await;
    // Routing went through (the htables were set before the refused publication).
    holds(&p, "prof", "102", Some("dnd")).await;

    // The admin runs the current configuration: the waiting changes are retried and taken.
    refusing.stop().await;
    pbx365_testkit::wait::eventually(10, "the old Kamailio to be gone", || async {
        rpc(&p.rpc_url, "core.version", json!([])).await.is_err()
    })
    .await;
    let _kamailio = kamailio(&cfg);
    await_kamailio(&p.rpc_url, 20).await;
    pbx365_testkit::wait::eventually(
        30,
        "the waiting changes to be retried and taken",
        || async {
            let page = phones_page(&p).await;
            page.contains("id=\"sip-ok\"") && page.contains(", 0 waiting")
        },
    )
    .await;
    let s101 = p.secret("101").await;
    let mut w = p.watching("101", &s101, "102").await;
    w.notified(10, "102 busy", busy).await;

    let status = p.server.terminate().await;
    assert!(status.success(), "{status:?}");
}
