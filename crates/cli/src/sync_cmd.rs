//! `pbx365 sync [users|contacts|calendar|all] [--full] [--dry-run] [--json]` (SPEC §8): one sync
//! run with a progress bar on a terminal, then its report.

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pbx365_app::sync::NOT_CONNECTED;
use pbx365_app::sync::{missing_connection, runnable_kind, Progress, RunOptions, Unavailable};
use pbx365_app::{App, AppError};
use pbx365_domain::settings::Settings;
use pbx365_domain::{ReportItem, SyncRun, SyncStatus};
use pbx365_store::Store;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

/// Most items of one report section printed in the human summary (all are in `--json`).
const SHOWN: usize = 20;

/// What `pbx365 sync` was asked to do.
#[derive(Debug, Clone)]
pub struct SyncArgs {
    /// `users`, `contacts`, `calendar` or `all`.
    pub kind: String,
    /// Full reconciliation.
    pub full: bool,
    /// Compute the report without writing.
    pub dry_run: bool,
    /// Print the SPEC §8 JSON object.
    pub json: bool,
}

/// Opens the store and applies the console's stored settings over file and environment.
async fn open(settings: Settings) -> anyhow::Result<(Store, Settings)> {
    if !settings.data_dir.is_dir() && settings.database_url.is_none() {
        bail!(
            "the data directory {} does not exist: start `pbx365 serve` once and connect Microsoft 365 first",
            settings.data_dir.display()
        );
    }
    let store = Store::connect(&settings.effective_database_url())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let effective = pbx365_app::settings::load(&store, &settings)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok((store, effective))
}

/// Runs `pbx365 sync`; the error (non-zero exit) is a sentence. A failed run is an error too.
pub async fn run(settings: Settings, args: SyncArgs) -> anyhow::Result<()> {
    if args.kind == "calendar" {
        return calendar(settings, &args).await;
    }
    let kind = runnable_kind(&args.kind).map_err(|e| anyhow!("{e}"))?;
    let (store, settings) = open(settings).await?;
    if let Some(what) = missing_connection(&settings) {
        bail!("{NOT_CONNECTED}: {what}");
    }
    let app = App::new(store, settings);

    let bar = progress_bar(!args.json && std::io::stderr().is_terminal());
    let b = bar.clone();
    let progress = Arc::new(move |p: Progress| {
        match p.total {
            Some(t) => {
                if b.length() != Some(t) {
                    b.set_length(t);
                }
            }
            None => b.set_length(p.done.max(1)),
        }
        b.set_message(p.stage);
        b.set_position(p.done);
    });
    let b = bar.clone();
    let on_wait = Arc::new(move |holder: &str| {
        // Said on stderr (stdout is the report): the run waits, it does not race.
        b.suspend(|| {
            eprintln!(
                "another pbx365 instance ({holder}) is running a sync; waiting for it to finish"
            )
        });
    });
    let opts = RunOptions {
        full: args.full,
        dry_run: args.dry_run,
        progress: Some(progress),
        on_wait: Some(on_wait),
        ..Default::default()
    };
    let result = app.run_sync(None, kind, opts).await;
    bar.finish_and_clear();
    let run = result.map_err(|e| match e {
        // The graph crate's sentence, as when the CLI built its own client.
        AppError::Unavailable(Unavailable::Broken(raw)) => anyhow!("{raw}"),
        other => anyhow!("{other}"),
    })?;

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &run)?;
        writeln!(out)?;
    } else {
        print_human(&mut out, &run)?;
    }
    out.flush()?;
    if run.status == SyncStatus::Failed {
        let why = run
            .report
            .errors
            .first()
            .and_then(|e| e.reason.clone())
            .unwrap_or_else(|| "see the report".into());
        bail!("the sync failed: {why}");
    }
    Ok(())
}

/// `pbx365 sync calendar [--dry-run] [--json]`: reads every followed calendar once and prints
/// the plan (who switches when); switches nothing. Without `--dry-run` the timelines are
/// stored, so a running server's schedule uses them.
async fn calendar(settings: Settings, args: &SyncArgs) -> anyhow::Result<()> {
    let (store, settings) = open(settings).await?;
    if let Some(what) = missing_connection(&settings) {
        bail!("{NOT_CONNECTED}: {what}");
    }
    if settings.edition == pbx365_domain::settings::Edition::Standard {
        bail!("calendar status needs the PRO edition");
    }
    if !settings.calendar.enabled {
        bail!("calendar status is off: set [calendar] enabled = true, or switch it on in Settings > Integrations > Microsoft 365 > Calendar");
    }
    let app = App::new(store, settings);
    let plan = app
        .calendar_plan(args.dry_run)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &plan)?;
        writeln!(out)?;
    } else if plan.is_empty() {
        writeln!(out, "No calendar switches in the look-ahead window.")?;
    } else {
        for s in &plan {
            let why = if s.why.is_empty() {
                String::new()
            } else {
                format!("  ({})", s.why)
            };
            writeln!(
                out,
                "{}  {:>8}  -> {}{why}",
                s.at.format("%Y-%m-%d %H:%M:%S UTC"),
                s.number,
                s.profile.label()
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

fn progress_bar(visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(0),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg:>6} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn label(i: &ReportItem) -> String {
    let mut s = String::new();
    if let Some(e) = &i.extension {
        s.push_str(e);
    }
    if let Some(n) = &i.name {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(n);
    }
    if s.is_empty() {
        s = i.m365_id.clone().unwrap_or_default();
    }
    if !i.fields.is_empty() {
        s.push_str(&format!(" ({})", i.fields.join(", ")));
    }
    if let Some(r) = &i.reason {
        s.push_str(&format!(": {r}"));
    }
    s
}

/// The report for a person: a headline, the counts, then the items of each non-empty section.
fn print_human(out: &mut impl Write, run: &SyncRun) -> std::io::Result<()> {
    let headline = match run.status {
        SyncStatus::Completed => format!("User sync completed (run {}).", run.id),
        SyncStatus::DryRun => "Dry run: this is what a user sync would do; nothing was written.".to_string(),
        SyncStatus::Held => format!(
            "User sync HELD by the mass-deletion guard (run {}): it would disable or delete more extensions than allowed, so nothing was changed.",
            run.id
        ),
        SyncStatus::Failed => format!("User sync FAILED (run {}).", run.id),
        SyncStatus::Running => format!("User sync still running (run {}).", run.id),
    };
    writeln!(out, "{headline}")?;
    let r = &run.report;
    writeln!(
        out,
        "  {} created, {} updated, {} disabled, {} deleted, {} skipped, {} errors",
        r.created.len(),
        r.updated.len(),
        r.disabled.len(),
        r.deleted.len(),
        r.skipped.len(),
        r.errors.len()
    )?;
    for (title, items) in [
        ("created", &r.created),
        ("updated", &r.updated),
        ("disabled", &r.disabled),
        ("deleted", &r.deleted),
        ("skipped", &r.skipped),
        ("errors", &r.errors),
    ] {
        if items.is_empty() {
            continue;
        }
        writeln!(out, "{title}:")?;
        for i in items.iter().take(SHOWN) {
            writeln!(out, "  {}", label(i))?;
        }
        if items.len() > SHOWN {
            writeln!(
                out,
                "  … and {} more (use --json for all)",
                items.len() - SHOWN
            )?;
        }
    }
    if run.status == SyncStatus::Held {
        writeln!(
            out,
            "To apply these deletions, click \"Approve these deletions\" in the banner of the console (or raise sync.max_deletions / sync.max_deletion_percent); the next run then applies them once."
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx365_domain::{SyncKind, SyncReport};

    #[test]
    fn held_report_says_nothing_changed_and_how_to_approve() {
        let run = SyncRun {
            id: "r1".into(),
            kind: SyncKind::Users,
            status: SyncStatus::Held,
            started_at: chrono::Utc::now(),
            finished_at: None,
            report: SyncReport {
                disabled: vec![ReportItem {
                    extension: Some("101".into()),
                    name: Some("Eve".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        };
        let mut buf = Vec::new();
        print_human(&mut buf, &run).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("nothing was changed")
                && text.contains("101 Eve")
                && text.contains("Approve these deletions"),
            "{text}"
        );
    }
}
