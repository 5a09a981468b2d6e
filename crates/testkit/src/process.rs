//! The `pbx365` binary as a child process in a temp directory: its ready line ("pbx365 is
//! serving on …") awaited, `/healthz` polled, killed when dropped; and the `sync-once` helper.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `pbx365` binary under test (installing the crypto provider for the tests' HTTPS clients).
pub fn bin() -> PathBuf {
    pbx365_web::server::install_crypto_provider();
    built_binary("pbx365", "PBX365_BIN")
}

/// The `sync-once` helper binary of this kit: one user sync against the Graph and database
/// named by `SYNC_*` variables (see `src/bin/sync-once.rs`), for SIGKILL tests.
pub fn sync_once_bin() -> PathBuf {
    built_binary("sync-once", "SYNC_ONCE_BIN")
}

/// Finds binary `name` of the workspace: the one nextest built for this package, else the path
/// in `var`, else the one next to this test executable's `deps/` directory.
fn built_binary(name: &str, var: &str) -> PathBuf {
    let given = std::env::var_os(format!("NEXTEST_BIN_EXE_{name}"))
        .or_else(|| std::env::var_os(var))
        .filter(|p: &OsString| !p.is_empty());
    let path = given.map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("the test executable");
        // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test executable in target/<profile>/deps");
        profile_dir.join(name)
    });
    assert!(
        path.is_file(),
        "{} does not exist: build the workspace first (cargo build --workspace --all-targets, \
         as scripts/test does) or set {var}",
        path.display()
    );
    path
}

/// A `pbx365` command in `dir` with a clean environment (no inherited `PBX365_*` settings).
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .kill_on_drop(true)
        .env("RUST_LOG", "info")
        // No Kamailio unless a test asks for one (it would take port 5060 in every server test).
        .env("PBX365_SIP__MANAGE_KAMAILIO", "false");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PBX365_") && key != "PBX365_SIP__MANAGE_KAMAILIO" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Writes `pbx365.toml` in `dir` for a server on a free port with `database_url`, plus `extra`.
pub fn write_config(dir: &Path, database_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("pbx365.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ndatabase_url = \"{}\"\n{extra}",
        dir.join("data").display(),
        database_url
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A running server child process.
pub struct Server {
    /// The child.
    pub child: Child,
    /// `http(s)://127.0.0.1:PORT`.
    pub base: String,
    /// Everything printed on stdout so far.
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Everything printed on stderr so far (the log).
    pub stderr: Arc<Mutex<Vec<String>>>,
}

/// Output collected from a child.
fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    sink: Arc<Mutex<Vec<String>>>,
    tx: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
}

impl Server {
    /// Starts `pbx365 serve` (args after `serve`) in `dir` and waits until `/healthz` answers 200.
    pub async fn start(dir: &Path, args: &[&str]) -> Server {
        Self::start_with(command(dir).arg("serve").args(args), None).await
    }

    /// Starts a prepared command; `client` is used for the readiness probe (TLS tests).
    pub async fn start_with(cmd: &mut Command, client: Option<reqwest::Client>) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pbx365");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        collect(child.stdout.take().unwrap(), stdout.clone(), Some(tx));
        collect(child.stderr.take().unwrap(), stderr.clone(), None);
        // The server prints its real address (we ask for port 0) once it is bound.
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = rx.recv().await {
                if let Some(rest) = line.strip_prefix("pbx365 is serving on ") {
                    return rest.split_whitespace().next().unwrap().to_string();
                }
            }
            panic!(
                "pbx365 exited before serving; stderr: {:?}",
                stderr.lock().unwrap()
            );
        })
        .await
        .expect("pbx365 did not start within 60 s");
        let server = Server {
            child,
            base,
            stdout,
            stderr,
        };
        server.await_healthy(client.unwrap_or_default()).await;
        server
    }

    /// Polls `/healthz` until it answers 200 (readiness, not a blind sleep).
    pub async fn await_healthy(&self, client: reqwest::Client) {
        let url = format!("{}/healthz", self.base);
        for _ in 0..600 {
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{url} never answered 200");
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exit after SIGTERM")
            .unwrap()
    }

    /// Everything on stdout joined.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Everything on stderr joined.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

/// Runs a one-shot `pbx365` command; returns (exit code, stdout, stderr).
pub async fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = command(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pbx365");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("finishes")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates an API token through the CLI.
pub async fn token(dir: &Path, config: &Path) -> String {
    let (code, out, err) = run(
        dir,
        &[
            "admin",
            "token",
            "create",
            "--name",
            "tests",
            "--config",
            config.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "token create failed: {err}");
    out.trim().to_string()
}
