//! Alerts to the admin address and welcome mail, queued from what sync recorded. The worker
//! looks at the latest finished runs; a dedupe key per run (and per extension for welcome mail)
//! makes each mail queued once, even with several instances or after a restart.

use super::{console_url, templates};
use crate::App;
use chrono::Duration;
use pbx365_domain::{NewMail, SyncRun, SyncStatus};

/// Runs older than this are not alerted on (e.g. after an upgrade or when mail is first set up).
const ALERT_AGE_HOURS: i64 = 24;

/// Queues the mails due for recent sync runs.
pub(crate) async fn scan(app: &App) {
    let runs = match app.store.list_sync_runs(10).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "sync runs could not be read for mail alerts");
            return;
        }
    };
    let now = app.now();
    for run in runs {
        let Some(finished) = run.finished_at else {
            continue;
        };
        if now - finished > Duration::hours(ALERT_AGE_HOURS) {
            continue;
        }
        match run.status {
            SyncStatus::Held => held(app, &run).await,
            SyncStatus::Failed => failed(app, &run).await,
            SyncStatus::Completed if app.settings().mail.welcome => welcome(app, &run).await,
            _ => {}
        }
    }
}

async fn held(app: &App, run: &SyncRun) {
    let settings = app.settings();
    let deletions = run.report.disabled.len() + run.report.deleted.len();
    let reason = run
        .report
        .errors
        .iter()
        .rev()
        .find_map(|i| i.reason.clone())
        .unwrap_or_else(|| "the mass-deletion guard stopped the run".into());
    let vars = [
        ("run_id", run.id.clone()),
        ("reason", reason),
        ("deletions", deletions.to_string()),
        (
            "console_url",
            console_url(&settings, &format!("/console/sync/runs/{}", run.id)),
        ),
    ];
    app.queue_admin_alert("sync_held", &vars, format!("alert:held:{}", run.id))
        .await;
}

async fn failed(app: &App, run: &SyncRun) {
    let settings = app.settings();
    let error = run
        .report
        .errors
        .iter()
        .rev()
        .find_map(|i| i.reason.clone())
        .unwrap_or_else(|| "see the run's report".into());
    // Lost consent is worded as such: the fix is on the Configure page, not in sync.
    let lost_consent = error.contains("admin consent");
    let template = if lost_consent {
        "consent_lost"
    } else {
        "sync_failed"
    };
    let vars = [
        ("run_id", run.id.clone()),
        ("error", error),
        (
            "console_url",
            console_url(&settings, &format!("/console/sync/runs/{}", run.id)),
        ),
        (
            "configure_url",
            console_url(&settings, "/console/settings/integrations/microsoft365"),
        ),
    ];
    app.queue_admin_alert(template, &vars, format!("alert:failed:{}", run.id))
        .await;
}

async fn welcome(app: &App, run: &SyncRun) {
    let settings = app.settings();
    for item in &run.report.created {
        let Some(number) = &item.extension else {
            continue;
        };
        let Ok(Some(ext)) = app.store.get_extension(number).await else {
            continue;
        };
        let Some(email) = ext.email.clone().filter(|e| !e.trim().is_empty()) else {
            continue;
        };
        let vars = [
            ("name", ext.display_name.clone()),
            ("number", number.clone()),
            ("webclient_url", console_url(&settings, "/")),
        ];
        let r = templates::render(app.data_dir(), "welcome", &vars);
        let key = format!(
            "welcome:{number}:{}",
            item.m365_id.as_deref().unwrap_or_default()
        );
        let new = NewMail {
            kind: "welcome".into(),
            to: vec![email],
            subject: r.subject,
            text: r.text,
            html: Some(r.html),
            dedupe_key: Some(key),
            ..NewMail::default()
        };
        if let Err(e) = app.queue_mail(new).await {
            tracing::warn!(error = %e, extension = %number, "welcome mail not queued");
        }
    }
}

impl App {
    /// Queues alert `template` to `mail.admin_address` once per `dedupe_key`; without an admin
    /// address the alert is only logged.
    pub async fn queue_admin_alert(
        &self,
        template: &str,
        vars: &[(&str, String)],
        dedupe_key: String,
    ) {
        let settings = self.settings();
        let Some(admin) = settings
            .mail
            .admin_address
            .clone()
            .filter(|a| !a.trim().is_empty())
        else {
            tracing::debug!(template, "no mail.admin_address: alert not mailed");
            return;
        };
        let r = templates::render(self.data_dir(), template, vars);
        let new = NewMail {
            kind: template.into(),
            to: vec![admin],
            subject: r.subject,
            text: r.text,
            html: Some(r.html),
            dedupe_key: Some(dedupe_key),
            ..NewMail::default()
        };
        match self.queue_mail(new).await {
            Ok(Some(m)) => tracing::info!(id = %m.id, template, "alert mail queued"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, template, "alert mail not queued"),
        }
    }

    /// Queues the certificate-expiry warning `sentence` to the admin address (once per sentence).
    pub async fn queue_certificate_alert(&self, sentence: &str) {
        let settings = self.settings();
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(sentence.as_bytes()));
        let key = format!("alert:certificate:{}", &digest[..32]);
        let vars = [
            ("message", sentence.to_string()),
            (
                "configure_url",
                console_url(&settings, "/console/settings/integrations/microsoft365"),
            ),
        ];
        self.queue_admin_alert("certificate_expiry", &vars, key)
            .await;
    }
}
