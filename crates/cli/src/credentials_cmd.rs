//! `pbx365 admin token list|revoke` and `pbx365 admin password` (SPEC §10).

use crate::commands::{open, prompt_password};
use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use pbx365_app::credentials;
use pbx365_domain::settings::Settings;
use std::io::{BufRead, IsTerminal, Write};

fn when(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| none.to_string())
}

/// `pbx365 admin token list [--json]`.
pub async fn token_list(settings: Settings, json: bool) -> anyhow::Result<()> {
    let (store, _) = open(settings).await?;
    let tokens = credentials::list_api_tokens(&store)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &tokens)?;
        writeln!(out)?;
        return Ok(());
    }
    if tokens.is_empty() {
        writeln!(out, "(no API tokens)")?;
        return Ok(());
    }
    let now = Utc::now();
    let rows: Vec<[String; 4]> = tokens
        .iter()
        .map(|t| {
            let expires = match t.expires_at {
                Some(_) if t.expired(now) => format!("{} (expired)", when(t.expires_at, "")),
                at => when(at, "never"),
            };
            [
                t.name.clone(),
                when(Some(t.created_at), ""),
                when(t.last_used_at, "never"),
                expires,
            ]
        })
        .collect();
    let header = ["NAME", "CREATED", "LAST USED", "EXPIRES"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `pbx365 admin token revoke NAME`.
pub async fn token_revoke(settings: Settings, name: &str) -> anyhow::Result<()> {
    let (store, settings) = open(settings).await?;
    let n = credentials::revoke_api_tokens(&store, name)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    if n > 0 {
        pbx365_app::App::new(store, settings)
            .audit(
                "cli",
                "api_token.revoke",
                name.trim(),
                format!("{n} revoked"),
            )
            .await;
    }
    match n {
        0 => bail!(
            "no API token is named '{}'; `pbx365 admin token list` shows the names",
            name.trim()
        ),
        1 => eprintln!("Revoked the API token '{}'.", name.trim()),
        n => eprintln!("Revoked the {n} API tokens named '{}'.", name.trim()),
    }
    Ok(())
}

/// `pbx365 admin password [--name NAME]`: the new password from stdin (a prompt without echo,
/// asked twice, on a terminal).
pub async fn password(settings: Settings, name: &str) -> anyhow::Result<()> {
    let name = name.trim();
    let new = if std::io::stdin().is_terminal() {
        let first = prompt_password("New password: ")?;
        let second = prompt_password("Repeat the new password: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the new password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    credentials::check_changed_password(&new).map_err(|e| anyhow!("{e}"))?;
    let (store, settings) = open(settings).await?;
    let ended = credentials::change_admin_password(&store, name, None, new, None)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    credentials::forget_initial_password(&settings.data_dir, name);
    pbx365_app::App::new(store, settings)
        .audit("cli", "admin.password", name, "")
        .await;
    eprintln!(
        "Changed the password of the console admin `{name}`; {ended} console session(s) ended."
    );
    Ok(())
}
