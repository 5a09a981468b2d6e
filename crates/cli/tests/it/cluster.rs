//! Several `pbx365 serve` on one PostgreSQL database and one simulated tenant (SPEC §9), as real
//! child processes: every instance answers the console and the API; each job runs on one
//! instance at a time and once per trigger; `pbx365 sync` during a server's round waits for it;
//! after `kill -9` of the instance running a round, another takes the lease over and resumes the
//! round from its committed cursor, ending with the extensions a clean run gives.
//!
//! PostgreSQL only: SQLite is one file for one host. Skipped with a notice without a server (run
//! through `scripts/with-postgres`).

use chrono::{DateTime, Utc};
use m365_sim::faults::{routes, FaultSpec};
use m365_sim::{SimConfig, SimHandle};
use pbx365_domain::{SyncRun, SyncStatus};
use pbx365_store::Store;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::process::{run, token, write_config, Server};
use pbx365_testkit::sync::synced;
use pbx365_testkit::tenant::{new_app, start_sim, write_ca, PERMISSIONS};
use pbx365_testkit::wait::eventually;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A simulated tenant, one PostgreSQL database and the instances serving it.
struct Cluster {
    sim: SimHandle,
    db: FreshDb,
    config: PathBuf,
    token: String,
    servers: Vec<Server>,
    store: Store,
    http: reqwest::Client,
}

/// The `[m365]` section for `sim` and the app `client_id`, its CA in `dir`.
pub(crate) fn m365_section(sim: &SimHandle, client_id: &str, dir: &Path) -> String {
    let ca_file = write_ca(sim, dir);
    format!(
        "[m365]\ntenant_id = \"{}\"\nclient_id = \"{client_id}\"\nauthority_url = \"{}\"\n\
         graph_url = \"{}\"\nca_file = \"{}\"\n",
        sim.tenant_id,
        sim.authority_url(),
        sim.graph_url(),
        ca_file.display()
    )
}

impl Cluster {
    /// `instances` servers on a fresh PostgreSQL database, connected to a sim with `users`
    /// users; `None` without a PostgreSQL server.
    async fn start(instances: usize, users: usize) -> Option<Cluster> {
        let db = pbx365_testkit::db::postgres().await?;
        let sim = start_sim(SimConfig {
            users,
            ..SimConfig::default()
        })
        .await;
        let dir = db.dir.path();
        let client_id = sim
            .control()
            .create_app(&new_app("pbx365", &PERMISSIONS, true))
            .await
            .unwrap();
        // Every instance has the same configuration and `data_dir` (the key pair); a short lease
        // so that a dead instance's jobs move within seconds.
        let extra = format!(
            "{}[sync]\nphotos = false\nlease_ttl_secs = 3\n",
            m365_section(&sim, &client_id, dir)
        );
        let config = write_config(dir, &db.url, &extra);
        let cfg = config.to_str().unwrap();
        let (code, _, err) = run(dir, &["m365", "keygen", "--config", cfg], None).await;
        assert_eq!(code, 0, "{err}");
        let pem = std::fs::read_to_string(dir.join("public_key.pem")).unwrap();
        sim.control()
            .add_certificate(&client_id, &pem)
            .await
            .unwrap();
        let token = token(dir, &config).await;
        let mut servers = Vec::new();
        for _ in 0..instances {
            servers.push(Server::start(dir, &["--config", cfg]).await);
        }
        let store = Store::connect(&db.url).await.unwrap();
        Some(Cluster {
            sim,
            config,
            token,
            servers,
            store,
            http: reqwest::Client::new(),
            db,
        })
    }

    fn cfg(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// "Sync now" through instance `i`'s API; the run as returned.
    async fn sync_now(&self, i: usize) -> reqwest::Result<SyncRun> {
        self.http
            .post(format!("{}/api/v1/sync/users", self.servers[i].base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    /// [`Cluster::sync_now`] in a task of its own.
    fn spawn_sync_now(&self, i: usize) -> tokio::task::JoinHandle<reqwest::Result<SyncRun>> {
        let (http, base, token) = (
            self.http.clone(),
            self.servers[i].base.clone(),
            self.token.clone(),
        );
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/sync/users"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        })
    }

    /// Every recorded run, oldest first.
    async fn runs(&self) -> Vec<SyncRun> {
        let mut runs = self.store.list_sync_runs(1000).await.unwrap();
        runs.reverse();
        runs
    }

    /// Number -> Microsoft 365 id of the synced extensions.
    async fn numbers(&self) -> BTreeMap<String, String> {
        numbers(&self.store).await
    }

    /// Waits for a run recorded as running, then for a committed page of it.
    async fn await_round_mid_way(&self) {
        let store = self.store.clone();
        eventually(60, "a round commits its first page", || {
            let store = store.clone();
            async move {
                let running = !store.unfinished_sync_runs().await.unwrap().is_empty();
                let cursor = store.get_kv("cursor:users").await.unwrap();
                running
                    && cursor.is_some_and(|c| {
                        c.contains("\"phase\":\"full\"") && !c.contains("\"pages\":0")
                    })
            }
        })
        .await;
    }

    /// Slows every users delta page down, so a full round of a few thousand users takes seconds.
    async fn slow_delta_pages(&self) {
        self.sim
            .control()
            .add_fault(&FaultSpec {
                path: routes::USERS_DELTA.into(),
                latency_ms: Some(700),
                ..FaultSpec::default()
            })
            .await
            .unwrap();
    }
}

async fn numbers(store: &Store) -> BTreeMap<String, String> {
    synced(store)
        .await
        .into_iter()
        .map(|(id, e)| (e.number.to_string(), id))
        .collect()
}

/// No two runs were going on at the same time (each finished before the next started).
fn assert_one_at_a_time(runs: &[SyncRun]) {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>, &str)> = runs
        .iter()
        .map(|r| {
            let end = r
                .finished_at
                .unwrap_or_else(|| panic!("run {} is still running", r.id));
            (r.started_at, end, r.id.as_str())
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "runs {} ({} – {}) and {} ({} – {}) overlap",
            pair[0].2,
            pair[0].0,
            pair[0].1,
            pair[1].2,
            pair[1].0,
            pair[1].1
        );
    }
}

/// What every instance answers: health, the console's sign-in page, the API.
async fn every_instance_serves(c: &Cluster) {
    for s in &c.servers {
        let get = |path: &str| c.http.get(format!("{}{path}", s.base));
        assert_eq!(get("/healthz").send().await.unwrap().status(), 200);
        assert_eq!(get("/console/login").send().await.unwrap().status(), 200);
        let r = get("/api/v1/extensions")
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the API on {}", s.base);
        let list: Vec<serde_json::Value> = r.json().await.unwrap();
        assert_eq!(
            list.len(),
            c.numbers().await.len(),
            "every instance sees the same"
        );
    }
}

/// `instances` servers: concurrent "sync now" on every instance and `pbx365 sync` during a
/// round all run one after the other; the poll and the nightly round, once due, run once in the
/// cluster.
async fn one_runner_per_job(instances: usize) {
    let Some(c) = Cluster::start(instances, 3_000).await else {
        return;
    };
    every_instance_serves(&c).await;
    c.slow_delta_pages().await;

    // A round starts on the first instance; "sync now" on every other and the CLI join in.
    let first = c.spawn_sync_now(0);
    c.await_round_mid_way().await;
    let spawned: Vec<_> = (1..instances).map(|i| c.spawn_sync_now(i)).collect();
    let others = async {
        let mut runs = Vec::new();
        for r in spawned {
            runs.push(r.await.unwrap());
        }
        runs
    };
    let dir = c.db.dir.path().to_path_buf();
    let args = ["--config", c.cfg(), "sync", "users"];
    let cli = run(&dir, &args, None);
    let (others, (code, out, err)) = tokio::join!(others, cli);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("is running a sync; waiting for it to finish"),
        "the CLI says it waits: {err}"
    );
    assert!(out.starts_with("User sync completed (run "), "{out}");
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status, SyncStatus::Completed);
    assert!(!first.report.created.is_empty());
    for r in others {
        assert_eq!(r.unwrap().status, SyncStatus::Completed);
    }
    let runs = c.runs().await;
    assert_eq!(runs.len(), instances + 1, "one run per request");
    assert_one_at_a_time(&runs);
    let after_first = c.numbers().await;
    assert_eq!(after_first.len(), first.report.created.len());
    c.sim.control().clear_faults().await.unwrap();

    // The delta poll comes due (its last time is in the store): one instance polls, once.
    let long_ago = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    c.store.set_kv("sync:last:poll", &long_ago).await.unwrap();
    let store = c.store.clone();
    let before = runs.len();
    eventually(30, "the due poll runs", || {
        let (store, long_ago) = (store.clone(), long_ago.clone());
        async move { store.get_kv("sync:last:poll").await.unwrap() != Some(long_ago) }
    })
    .await;
    // So does the nightly full round.
    let long_ago = (Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    c.store
        .set_kv("sync:last:nightly", &long_ago)
        .await
        .unwrap();
    eventually(60, "the due nightly round runs", || {
        let store = store.clone();
        let long_ago = long_ago.clone();
        async move {
            store.get_kv("sync:last:nightly").await.unwrap().as_deref() != Some(&*long_ago)
                && store.unfinished_sync_runs().await.unwrap().is_empty()
        }
    })
    .await;
    // A last "sync now" queues behind anything still going on; then count.
    assert_eq!(
        c.sync_now(instances - 1).await.unwrap().status,
        SyncStatus::Completed
    );
    let runs = c.runs().await;
    assert_eq!(
        runs.len(),
        before + 3,
        "one poll, one nightly round, one sync now: {:?}",
        runs.iter()
            .map(|r| (r.started_at, r.status))
            .collect::<Vec<_>>()
    );
    assert!(runs.iter().all(|r| r.status == SyncStatus::Completed));
    assert_one_at_a_time(&runs);
    assert_eq!(c.numbers().await, after_first, "nothing changed hands");
    every_instance_serves(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_each_job_once_and_the_cli_waits_for_a_round() {
    one_runner_per_job(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_run_each_job_once_and_the_cli_waits_for_a_round() {
    one_runner_per_job(3).await;
}

/// `kill -9` of the instance running a big full round: another takes the lease over within
/// 30 s, resumes from the committed cursor, and the extensions are those of a clean run.
async fn takeover_after_kill(instances: usize) {
    const USERS: usize = 5_000;
    let Some(mut c) = Cluster::start(instances, USERS).await else {
        return;
    };
    c.slow_delta_pages().await;
    let holder_pid = c.servers[0].child.id().unwrap();
    let doomed = c.spawn_sync_now(0);
    c.await_round_mid_way().await;
    let holder = c
        .store
        .lease_holder("sync")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        holder.contains(&format!(":{holder_pid}:")),
        "the first instance runs the round: {holder}"
    );
    c.servers[0].child.start_kill().expect("kill -9");
    c.servers[0].child.wait().await.unwrap();
    let killed_at = Utc::now();
    assert!(
        doomed.await.unwrap().is_err(),
        "the killed instance never answers"
    );
    // Killed after a committed page: of the plan (a round plans every page before it applies).
    let at_kill = c.numbers().await;

    // Another instance takes over and finishes the round.
    let store = c.store.clone();
    eventually(
        90,
        "another instance completes the interrupted round",
        || {
            let store = store.clone();
            async move {
                store.unfinished_sync_runs().await.unwrap().is_empty()
                    && store
                        .list_sync_runs(10)
                        .await
                        .unwrap()
                        .iter()
                        .any(|r| r.status == SyncStatus::Completed)
            }
        },
    )
    .await;
    let runs = c.runs().await;
    assert_eq!(runs.len(), 2, "the interrupted run and its resumption");
    assert_eq!(
        runs[0].status,
        SyncStatus::Failed,
        "recorded as interrupted"
    );
    let resumed = &runs[1];
    assert_eq!(resumed.status, SyncStatus::Completed);
    assert!(
        resumed.started_at - killed_at < chrono::Duration::seconds(30),
        "taken over within 30 s: {}",
        resumed.started_at - killed_at
    );
    let holder = c
        .store
        .lease_holder("sync")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!holder.contains(&format!(":{holder_pid}:")), "{holder}");

    // A clean run of the same tenant into a database of its own gives the same extensions.
    c.sim.control().clear_faults().await.unwrap();
    let clean_dir = tempfile::tempdir().unwrap();
    let clean_url = format!("sqlite://{}/clean.db", clean_dir.path().display());
    let text = std::fs::read_to_string(&c.config).unwrap();
    let clean_cfg = clean_dir.path().join("pbx365.toml");
    std::fs::write(
        &clean_cfg,
        text.replace(&format!("\"{}\"", c.db.url), &format!("\"{clean_url}\"")),
    )
    .unwrap();
    let (code, out, err) = run(
        clean_dir.path(),
        &["--config", clean_cfg.to_str().unwrap(), "sync", "users"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let clean = Store::connect(&clean_url).await.unwrap();
    let want = numbers(&clean).await;
    assert!(at_kill.len() < want.len(), "killed mid-round");
    assert_eq!(
        resumed.report.created.len(),
        want.len() - at_kill.len(),
        "resumed from the committed cursor: only the rest was created"
    );
    assert_eq!(
        c.numbers().await,
        want,
        "the same number <-> id map as a clean run"
    );
    every_instance_serves_but_the_dead(&c).await;
}

async fn every_instance_serves_but_the_dead(c: &Cluster) {
    for s in &c.servers[1..] {
        let r = c
            .http
            .get(format!("{}/api/v1/extensions", s.base))
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_lease_holder_of_two_mid_round_another_resumes_it() {
    takeover_after_kill(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_lease_holder_of_three_mid_round_another_resumes_it() {
    takeover_after_kill(3).await;
}

#[test]
fn run_spans_that_touch_do_not_overlap() {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let run = |id: &str, a: &str, b: &str| SyncRun {
        id: id.into(),
        kind: pbx365_domain::SyncKind::Users,
        status: SyncStatus::Completed,
        started_at: t(a),
        finished_at: Some(t(b)),
        report: Default::default(),
    };
    assert_one_at_a_time(&[
        run("b", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"),
        run("a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:02Z"),
    ]);
    let overlapping = std::panic::catch_unwind(|| {
        assert_one_at_a_time(&[
            run("a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:02Z"),
            run("b", "2026-01-01T00:00:01Z", "2026-01-01T00:00:03Z"),
        ])
    });
    assert!(overlapping.is_err());
}
