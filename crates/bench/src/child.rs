//! The `pbx365` release binary as a child process of a benchmark: where it is, its config, its
//! memory (`/proc/PID/status`), one-shot commands and a served instance.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Where to find `pbx365`: the option/`PBX365_BIN` when given, else next to this benchmark
/// (`cargo build --release -p pbx365 -p pbx365-bench` puts both in `target/release`).
pub fn pbx365_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark has no directory")?
            .join("pbx365"),
    };
    if !path.is_file() {
        bail!(
            "{} does not exist: build it first (cargo build --release -p pbx365) or give \
             --pbx365-bin / PBX365_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// Writes `pbx365.toml` in `dir`: a server on a free loopback port over `data_dir`, plus `extra`.
pub fn write_config(dir: &Path, data_dir: &Path, extra: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("pbx365.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra}",
        data_dir.display()
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A `pbx365 --config CONFIG …` command with no inherited `PBX365_*` settings.
pub fn command(bin: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(config).kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PBX365_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs a one-shot command with `stdin`; fails with its stderr unless it exits 0.
pub async fn run(mut cmd: Command, stdin: &str) -> anyhow::Result<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().context("no stdin")?;
    input.write_all(stdin.as_bytes()).await?;
    drop(input);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "pbx365 exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Memory of a process from `/proc/PID/status`, in kB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_kb: u64,
    /// Peak resident (`VmHWM`).
    pub hwm_kb: u64,
}

/// Megabytes (MiB) of a kB figure.
pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Reads `VmRSS` and `VmHWM` of process `pid`.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("{name} not found in /proc/{pid}/status"))
    };
    Ok(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// A running `pbx365 serve`, killed when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Served {
    /// Starts `pbx365 serve` and waits for its ready line and a 200 from `/healthz`.
    pub async fn start(bin: &Path, config: &Path) -> anyhow::Result<Served> {
        let mut child = command(bin, config)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("pbx365 is serving on ") {
                    return Ok(rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string());
                }
            }
            bail!("pbx365 serve exited before serving")
        })
        .await
        .context("pbx365 serve did not start within 60 s")??;
        // Keep reading stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let served = Served { child, base };
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", served.base);
        for _ in 0..600 {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(served);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{url} never answered 200")
    }

    /// The server's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("pbx365 serve has exited")
    }
}

/// Runs `cmd` to its end while sampling its `VmHWM`; returns its stdout and its peak RSS in kB
/// (the larger of the last sample and the kernel's figure for reaped children, `ru_maxrss`).
pub async fn run_measured(mut cmd: Command) -> anyhow::Result<(String, u64)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id().context("the child exited at once")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = tokio::spawn(async move {
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    });
    let err = tokio::spawn(async move {
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    });
    let mut sampled = 0;
    let status = loop {
        if let Ok(m) = memory(pid) {
            sampled = sampled.max(m.hwm_kb);
        }
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    let stdout = String::from_utf8_lossy(&out.await??).into_owned();
    let stderr = String::from_utf8_lossy(&err.await??).into_owned();
    if !status.success() {
        bail!("the child exited with {status}: {}", stderr.trim());
    }
    Ok((stdout, sampled.max(children_max_rss_kb())))
}

/// The peak RSS (kB) of the largest child this process has reaped (`getrusage(RUSAGE_CHILDREN)`).
fn children_max_rss_kb() -> u64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc == 0 {
        u64::try_from(usage.ru_maxrss).unwrap_or(0)
    } else {
        0
    }
}
