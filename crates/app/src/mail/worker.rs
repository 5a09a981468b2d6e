//! The outbox worker: one sender per cluster (it holds the `mail` lease), paced to the sender
//! mailbox's limits, retrying transient failures with backoff.
//!
//! **No mail is sent twice (at-most-once).** Before handing a mail to the transport, the worker
//! marks it `sending` with a fresh attempt id in one statement fenced by its lease; the outcome
//! is then recorded for that attempt id only. If the process dies between the hand-over and that
//! record, nobody can know whether Microsoft 365 accepted the mail (`sendMail` has no idempotency
//! key, and its 202 carries no message id). The next lease holder therefore fails every mail it
//! finds in `sending` with [`INTERRUPTED`] instead of sending it again; the console shows it
//! and an admin may retry it. Mail that was still queued is sent exactly once.

use super::transport::{Outcome, Transport};
use super::MailTuning;
use crate::App;
use chrono::{DateTime, Utc};
use pbx365_domain::outbox::{attachment_problem, next_send_at, retry_delay, PacingLimits};
use pbx365_sync::lease::HeldLease;
use std::time::Duration as StdDuration;

/// The lease of the outbox worker.
pub const MAIL_LEASE: &str = "mail";

/// Why a mail found in `sending` at takeover was failed.
pub const INTERRUPTED: &str = "pbx365 stopped while handing this mail to the mail server, so it may or may not have been sent; it is not resent automatically so that nobody gets it twice. Retry it if it did not arrive.";

/// What the worker does next.
enum Next {
    /// Look again at once (more due mail).
    Now,
    /// Sleep this long (or until woken).
    Wait(StdDuration),
    /// The lease was lost: stop sending, try to take it again.
    LeaseLost,
}

/// Runs the worker until the task is aborted; `holder` names this instance in the lease row.
pub(crate) async fn run(app: App, holder: String) {
    let mut lease: Option<HeldLease> = None;
    let mut last_alert_scan: Option<DateTime<Utc>> = None;
    let mut last_problem: Option<String> = None;
    loop {
        let tuning = app.mail.tuning();
        if lease.is_none() {
            match HeldLease::try_take(&app.store, MAIL_LEASE, &holder, tuning.lease_ttl).await {
                Ok(Some(held)) => {
                    match app.store.fail_interrupted_mail(INTERRUPTED).await {
                        Ok(0) => {}
                        Ok(n) => tracing::warn!(
                            count = n,
                            "mail interrupted while being sent was marked failed (never resent automatically)"
                        ),
                        Err(e) => tracing::warn!(error = %e, "could not resolve interrupted mail"),
                    }
                    lease = Some(held);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not take the mail lease"),
            }
        }
        let next = match &lease {
            None => Next::Wait(tuning.idle),
            Some(held) => {
                let now = app.now();
                let scan_due = last_alert_scan.is_none_or(|t| {
                    now - t >= chrono::Duration::from_std(tuning.alert_every).unwrap_or_default()
                });
                if scan_due {
                    last_alert_scan = Some(now);
                    super::alerts::scan(&app).await;
                }
                match step(&app, &holder, held.token(), &tuning, &mut last_problem).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(error = %e, "the mail outbox could not be read");
                        Next::Wait(tuning.idle)
                    }
                }
            }
        };
        match next {
            Next::Now => tokio::task::yield_now().await,
            Next::LeaseLost => {
                tracing::warn!("the mail lease was lost to another instance; it sends from now on");
                lease = None;
            }
            Next::Wait(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = app.mail.wake.notified() => {}
                }
            }
        }
    }
}

/// Sends what is due, as far as pacing allows.
async fn step(
    app: &App,
    holder: &str,
    token: i64,
    tuning: &MailTuning,
    last_problem: &mut Option<String>,
) -> Result<Next, pbx365_store::StoreError> {
    let settings = app.settings();
    let transport = match Transport::for_settings(app, &settings) {
        Ok(t) => {
            *last_problem = None;
            t
        }
        Err(why) => {
            if last_problem.as_deref() != Some(why.as_str()) {
                tracing::info!("mail stays queued: {why}");
                *last_problem = Some(why);
            }
            return Ok(Next::Wait(tuning.idle));
        }
    };
    let limits = PacingLimits {
        messages: settings.mail.max_per_minute,
        message_window: tuning.message_window,
        recipients: settings.mail.max_recipients_per_day,
        recipient_window: tuning.recipient_window,
    };
    let now = app.now();
    let due = app.store.due_mail(now, 20).await?;
    if due.is_empty() {
        let next = app.store.queued_mail_order(1).await?;
        let wait = next
            .first()
            .and_then(|(_, at, _)| (*at - now).to_std().ok())
            .map_or(tuning.idle, |d| d.min(tuning.idle));
        return Ok(Next::Wait(wait));
    }
    let sender = transport.sender().to_string();
    let horizon = limits.message_window.max(limits.recipient_window);
    for mail in due {
        if let Some(why) = attachment_problem(&mail.attachments) {
            app.store.fail_pending_mail(&mail.id, &why).await?;
            continue;
        }
        let now = app.now();
        let recent = app.store.recent_mail_sends(&sender, now - horizon).await?;
        let at = next_send_at(&limits, now, &recent, mail.to.len() as u32);
        if at > now {
            return Ok(Next::Wait((at - now).to_std().unwrap_or_default()));
        }
        let attempt = format!("{:016x}", rand::random::<u64>());
        let claimed = app
            .store
            .claim_mail(&mail.id, &attempt, &sender, now, MAIL_LEASE, holder, token)
            .await?;
        if !claimed {
            let still_pending = app
                .store
                .get_mail(&mail.id)
                .await?
                .is_some_and(|m| m.status == pbx365_domain::OutboxStatus::Pending);
            if still_pending {
                return Ok(Next::LeaseLost);
            }
            continue;
        }
        let outcome = transport.send(&mail).await;
        let attempts = mail.attempts + 1;
        match outcome {
            Outcome::Sent => {
                app.store.mail_sent(&mail.id, &attempt).await?;
                tracing::info!(id = %mail.id, kind = %mail.kind, via = transport.name(), "mail sent");
            }
            Outcome::Retry { reason, after } if attempts < tuning.max_attempts => {
                let delay = retry_delay(attempts, tuning.backoff_base, tuning.backoff_max, after);
                app.store
                    .mail_retry(&mail.id, &attempt, app.now() + delay, &reason)
                    .await?;
                tracing::warn!(id = %mail.id, attempts, retry_in_s = delay.num_seconds(), "mail not sent yet: {reason}");
                // Throttling is per sender: the rest waits too.
                return Ok(Next::Wait(
                    delay.to_std().unwrap_or_default().min(tuning.idle),
                ));
            }
            Outcome::Retry { reason, .. } => {
                let why = format!("gave up after {attempts} attempts: {reason}");
                app.store
                    .mail_failed(&mail.id, &attempt, &why, false)
                    .await?;
                tracing::warn!(id = %mail.id, "mail failed: {why}");
            }
            Outcome::Failed(why) => {
                app.store
                    .mail_failed(&mail.id, &attempt, &why, false)
                    .await?;
                tracing::warn!(id = %mail.id, "mail failed: {why}");
            }
        }
    }
    Ok(Next::Now)
}

/// A name for this instance's mail worker in the lease row.
pub(crate) fn holder_name() -> String {
    pbx365_sync::lease::instance_name()
}
