//! (benchmark being written)

/// Options.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the benchmark.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
