//! Kamailio as a supervised child of `pbx365 serve`/`demo`: started with pbx365's
//! configuration, restarted when it dies, stopped with pbx365.

use crate::rpc::RpcClient;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// Kamailio's shared memory in MB (`-m`) when pbx365 runs it.
pub const SHM_MB: u32 = 256;

/// Finds `kamailio` on PATH (and in /usr/sbin, where Debian puts it).
pub fn find_kamailio() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("kamailio"))
        .find(|p| p.is_file())
}

/// A running supervisor; [`Supervisor::stop`] ends Kamailio (dropping it does too).
pub struct Supervisor {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Supervisor {
    /// Writes `config` to `dir/kamailio.cfg` and keeps `binary` running with it; `dir/run` is
    /// Kamailio's runtime directory. Returns once the first Kamailio answers JSON-RPC (or
    /// after 20 s, with a warning in the log: it keeps being restarted).
    pub async fn start(
        binary: &Path,
        dir: &Path,
        config: &str,
        rpc: RpcClient,
    ) -> std::io::Result<Supervisor> {
        let run_dir = dir.join("run");
        std::fs::create_dir_all(&run_dir)?;
        let cfg = dir.join("kamailio.cfg");
        std::fs::write(&cfg, config)?;
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(
            binary.to_path_buf(),
            cfg,
            run_dir,
            rpc,
            stopped,
            ready_tx,
        ));
        let ready = tokio::time::timeout(Duration::from_secs(20), until_true(&mut ready_rx)).await;
        if ready.is_err() || !*ready_rx.borrow() {
            tracing::warn!("Kamailio did not answer JSON-RPC within 20 s; still trying");
        }
        Ok(Supervisor {
            stop,
            task: Some(task),
        })
    }

    /// Stops Kamailio and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn supervise(
    binary: PathBuf,
    cfg: PathBuf,
    run_dir: PathBuf,
    rpc: RpcClient,
    mut stopped: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = tokio::time::Instant::now();
        let mut command = Command::new(&binary);
        command
            .arg("-DD") // foreground, no fork: we are its supervisor
            .arg("-E") // log to stderr, which we forward to our log
            .arg("-f")
            .arg(&cfg)
            .arg("-Y")
            .arg(&run_dir)
            // Shared memory (MB): presence of 10,000 extensions with a restart's
            // republication peaks at about 53 MB, close to Kamailio's default 64 (the pages
            // are only taken when used).
            .arg("-m")
            .arg(SHM_MB.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(binary = %binary.display(), error = %e, "cannot start Kamailio");
                if wait_or_stop(&mut stopped, Duration::from_secs(10)).await {
                    return;
                }
                continue;
            }
        };
        let pid = child.id().unwrap_or_default();
        tracing::info!(pid, config = %cfg.display(), "Kamailio started");
        if let Some(err) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "kamailio", "{line}");
                    if let Some(hint) = missing_module_hint(&line) {
                        tracing::error!("{hint}");
                    }
                }
            });
        }
        // Readiness: its JSON-RPC answers (polled; nothing else says it is up).
        let probe = {
            let rpc = rpc.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                for _ in 0..400 {
                    if rpc.is_up().await {
                        tracing::info!(pid, "Kamailio is ready");
                        let _ = ready.send(true);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        tokio::select! {
            status = child.wait() => {
                probe.abort();
                tracing::warn!(pid, ?status, "Kamailio exited; restarting it");
            }
            _ = until_true(&mut stopped) => {
                probe.abort();
                terminate(&mut child).await;
                tracing::info!(pid, "Kamailio stopped");
                return;
            }
        }
        // A Kamailio that keeps dying at start is restarted less and less often.
        backoff = if started.elapsed() > Duration::from_secs(30) {
            Duration::from_millis(200)
        } else {
            (backoff * 2).min(Duration::from_secs(10))
        };
        if wait_or_stop(&mut stopped, backoff).await {
            return;
        }
    }
}

/// The sentence for an admin when Kamailio's log `line` says a module of the configuration is
/// not installed: which Debian package brings it (the configuration needs modules from several).
fn missing_module_hint(line: &str) -> Option<String> {
    let rest = line.split("could not find module <").nth(1)?;
    let module = rest.split('>').next()?;
    let package = match module {
        m if m.starts_with("presence") || m.starts_with("pua") => "kamailio-presence-modules",
        "db_sqlite" => "kamailio-sqlite-modules",
        "db_postgres" => "kamailio-postgres-modules",
        _ => "kamailio",
    };
    Some(format!(
        "Kamailio cannot start: its module '{module}' is not installed. Install the package \
         {package} (apt-get install {package}); pbx365 keeps retrying."
    ))
}

/// Kamailio gets SIGTERM when pbx365 dies, even by SIGKILL (when nothing in pbx365 runs to stop
/// it): otherwise it would keep the SIP port and route on a state nobody updates. Linux sends the
/// signal when the spawning thread ends; the spawn happens on a runtime worker thread, which
/// lives as long as the process.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe functions (prctl, getppid); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // pbx365 died before prctl took effect: nobody would send the signal.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// SIGTERM, then SIGKILL after 5 s.
async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Waits `d`; true when asked to stop meanwhile.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::time::timeout(d, until_true(stopped)).await.is_ok()
}

/// Resolves once `rx` holds true (or its sender is gone). The borrow `wait_for` returns is
/// dropped here, before any other await (it must not cross one in a spawned task).
async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::missing_module_hint;

    #[test]
    fn a_missing_module_names_the_package_that_brings_it() {
        let line = |m: &str| {
            format!(" 0(19441) ERROR: <core> [core/sr_module.c:510]: ksr_locate_module(): could not find module <{m}> in </usr/lib/x86_64-linux-gnu/kamailio/modules>")
        };
        for (module, package) in [
            ("pua_rpc", "kamailio-presence-modules"),
            ("presence_xml", "kamailio-presence-modules"),
            ("db_postgres", "kamailio-postgres-modules"),
            ("db_sqlite", "kamailio-sqlite-modules"),
            ("dialog", "kamailio"),
        ] {
            let hint = missing_module_hint(&line(module)).unwrap();
            assert!(hint.contains(&format!("'{module}'")), "{hint}");
            assert!(
                hint.contains(&format!("apt-get install {package})")),
                "{hint}"
            );
        }
        assert_eq!(missing_module_hint(" 0(1) INFO: <core> started"), None);
    }
}
