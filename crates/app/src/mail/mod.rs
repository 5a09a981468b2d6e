//! pbx365's own mail (SPEC §7): a persistent outbox, sent by one worker per cluster through
//! Microsoft 365 (Graph `sendMail`) or SMTP, paced to the sender mailbox's limits, retried with
//! backoff, and never sent twice (see [`worker`] for the at-most-once rule).
//!
//! What pbx365 sends: test mail ([`App::send_test_mail`]), alerts to `mail.admin_address`
//! (held mass deletion, failed runs, lost consent, certificate expiry; [`alerts`]), and, when
//! `mail.welcome` is on, a welcome mail to the user of a newly synced extension. Texts come from
//! [`templates`], which users override with files in `{data_dir}/mail-templates/`.

pub mod alerts;
pub mod templates;
pub(crate) mod transport;
pub mod worker;

use crate::{App, AppError};
use chrono::{DateTime, Duration, Utc};
use pbx365_domain::outbox::{attachment_problem, expected_send_times, is_mail_address};
use pbx365_domain::settings::{MailTransport, Settings};
use pbx365_domain::{NewMail, OutboxMail, OutboxStatus, PacingLimits};
use pbx365_graph::SenderCheck;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;
use tokio::sync::Notify;

pub use transport::NOT_CONFIGURED;
pub use worker::{INTERRUPTED, MAIL_LEASE};

/// The worker's timing (tests and the benchmark shorten it; the limits themselves are settings).
#[derive(Debug, Clone)]
pub struct MailTuning {
    /// Lease time to live (another instance takes over this long after a holder dies).
    pub lease_ttl: StdDuration,
    /// How often an idle worker looks for due mail and for the lease.
    pub idle: StdDuration,
    /// First retry delay after a transient failure (doubles per attempt).
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Attempts before a transiently failing mail is failed.
    pub max_attempts: u32,
    /// The window of `mail.max_per_minute` (a minute).
    pub message_window: Duration,
    /// The window of `mail.max_recipients_per_day` (a day).
    pub recipient_window: Duration,
    /// How often sync runs are looked at for alerts and welcome mail.
    pub alert_every: StdDuration,
}

impl Default for MailTuning {
    fn default() -> Self {
        MailTuning {
            lease_ttl: StdDuration::from_secs(30),
            idle: StdDuration::from_secs(5),
            backoff_base: Duration::seconds(30),
            backoff_max: Duration::hours(1),
            max_attempts: 12,
            message_window: Duration::minutes(1),
            recipient_window: Duration::days(1),
            alert_every: StdDuration::from_secs(15),
        }
    }
}

/// The mail part of the application context; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct MailHandle {
    pub(crate) wake: Arc<Notify>,
    tuning: Arc<RwLock<MailTuning>>,
}

impl MailHandle {
    pub(crate) fn tuning(&self) -> MailTuning {
        self.tuning
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A mail in the outbox with, while it is queued, when it is expected to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The mail.
    pub mail: OutboxMail,
    /// Expected send time of a queued mail (pacing and backoff), if nothing fails.
    pub expected_at: Option<DateTime<Utc>>,
}

/// The running worker; stops when dropped or stopped.
pub struct MailWorker {
    task: tokio::task::JoinHandle<()>,
}

impl MailWorker {
    /// Stops the worker (a mail being sent is resolved by the next lease holder).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for MailWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    /// The same context with other worker timing (tests, benchmark).
    pub fn with_mail_tuning(self, tuning: MailTuning) -> Self {
        *self.mail.tuning.write().unwrap_or_else(|e| e.into_inner()) = tuning;
        self
    }

    /// Starts the outbox worker of this instance (`pbx365 serve`; the CLI's `mail test`).
    pub fn start_mail_worker(&self) -> MailWorker {
        let app = self.clone();
        MailWorker {
            task: tokio::spawn(worker::run(app, worker::holder_name())),
        }
    }

    /// Queues a mail (validated: addresses, attachment sizes) and wakes the worker; `None` when
    /// its dedupe key was queued before.
    pub async fn queue_mail(&self, new: NewMail) -> Result<Option<OutboxMail>, AppError> {
        if new.to.is_empty() {
            return Err(AppError::Invalid(
                "a mail needs at least one recipient".into(),
            ));
        }
        if let Some(bad) = new.to.iter().find(|a| !is_mail_address(a)) {
            return Err(AppError::Invalid(format!(
                "'{}' is not a mail address",
                bad.chars().take(80).collect::<String>()
            )));
        }
        if let Some(why) = attachment_problem(&new.attachments) {
            return Err(AppError::Invalid(why));
        }
        let queued = self.store.queue_mail(&new, self.now()).await?;
        if queued.is_some() {
            self.mail.wake.notify_one();
        }
        Ok(queued)
    }

    /// Checks the mail server settings without sending: for Microsoft 365, that the sender
    /// mailbox exists, has a mailbox (an Exchange Online licence) and pbx365 holds `Mail.Send`.
    pub async fn check_mail_server(&self, settings: &Settings) -> Result<(), AppError> {
        let transport = transport::Transport::for_settings(self, settings)
            .map_err(|why| AppError::Invalid(capitalise(&why)))?;
        if let transport::Transport::Graph { client, sender } = &transport {
            let verdict = client.check_sender(sender).await?;
            let why = match verdict {
                SenderCheck::Ready => return Ok(()),
                SenderCheck::NoSuchUser => format!(
                    "The sender mailbox {sender} does not exist in Microsoft 365: enter the address of an existing user or shared mailbox."
                ),
                SenderCheck::NoMailbox => format!(
                    "{sender} has no Exchange Online mailbox: give it a licence with Exchange Online, or choose another sender."
                ),
                SenderCheck::NoMailSend => "pbx365 does not hold the Mail.Send permission: add it to the app registration and grant admin consent again.".to_string(),
            };
            return Err(AppError::Invalid(why));
        }
        Ok(())
    }

    /// **Send test mail**: checks the mail server, queues a test mail to `to` and returns it
    /// with its expected send time.
    pub async fn send_test_mail(
        &self,
        actor: Option<&str>,
        to: &str,
    ) -> Result<OutboxEntry, AppError> {
        let to = to.trim();
        if !is_mail_address(to) {
            return Err(AppError::Invalid(format!(
                "'{}' is not a mail address",
                to.chars().take(80).collect::<String>()
            )));
        }
        let settings = self.settings();
        self.check_mail_server(&settings).await?;
        let vars = [
            ("sender", settings.mail.sender.clone().unwrap_or_default()),
            (
                "transport",
                match settings.mail.transport {
                    MailTransport::Smtp => "SMTP".to_string(),
                    _ => "Microsoft 365".to_string(),
                },
            ),
            (
                "time",
                self.now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            ("to", to.to_string()),
            ("console_url", console_url(&settings, "/console")),
        ];
        let r = templates::render(self.data_dir(), "test", &vars);
        let mail = self
            .queue_mail(NewMail {
                kind: "test".into(),
                to: vec![to.to_string()],
                subject: r.subject,
                text: r.text,
                html: Some(r.html),
                ..NewMail::default()
            })
            .await?
            .ok_or_else(|| AppError::Internal("the test mail was not queued".into()))?;
        if let Some(actor) = actor {
            self.audit(actor, "mail.test", to, format!("queued {}", mail.id))
                .await;
        }
        let expected_at = self.expected_send_time(&mail.id).await;
        Ok(OutboxEntry { mail, expected_at })
    }

    /// The newest `limit` mails, queued ones with their expected send time.
    pub async fn outbox(&self, limit: u32) -> Result<Vec<OutboxEntry>, AppError> {
        let mails = self.store.list_mail(limit).await?;
        let expected = self.expected_send_times().await?;
        Ok(mails
            .into_iter()
            .map(|mail| OutboxEntry {
                expected_at: (mail.status == OutboxStatus::Pending)
                    .then(|| {
                        expected
                            .iter()
                            .find(|(id, _)| *id == mail.id)
                            .map(|(_, at)| *at)
                    })
                    .flatten(),
                mail,
            })
            .collect())
    }

    /// How many mails are queued, being sent, sent and failed.
    pub async fn outbox_counts(&self) -> Result<pbx365_store::OutboxCounts, AppError> {
        Ok(self.store.mail_counts().await?)
    }

    /// **Retry** a failed mail: queued again, due now.
    pub async fn retry_mail(&self, actor: &str, id: &str) -> Result<(), AppError> {
        if !self.store.retry_failed_mail(id, self.now()).await? {
            return Err(AppError::Conflict(
                "This mail is not failed (it was sent, or is queued already).".into(),
            ));
        }
        self.audit(actor, "mail.retry", id, "").await;
        self.mail.wake.notify_one();
        Ok(())
    }

    /// Waits until mail `id` is sent or failed, at most `timeout`; returns it as last seen.
    pub async fn wait_for_mail(
        &self,
        id: &str,
        timeout: StdDuration,
    ) -> Result<OutboxMail, AppError> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let mail = self.store.get_mail(id).await?.ok_or_else(|| {
                AppError::Internal(format!("mail {id} is no longer in the outbox"))
            })?;
            let done = matches!(mail.status, OutboxStatus::Sent | OutboxStatus::Failed);
            if done || tokio::time::Instant::now() >= until {
                return Ok(mail);
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }

    /// Expected send times of every queued mail (id, time), by the pacing rule.
    async fn expected_send_times(&self) -> Result<Vec<(String, DateTime<Utc>)>, AppError> {
        let settings = self.settings();
        let tuning = self.mail.tuning();
        let limits = PacingLimits {
            messages: settings.mail.max_per_minute,
            message_window: tuning.message_window,
            recipients: settings.mail.max_recipients_per_day,
            recipient_window: tuning.recipient_window,
        };
        let queued = self.store.queued_mail_order(10_000).await?;
        let now = self.now();
        let sender = settings.mail.sender.clone().unwrap_or_default();
        let recent = self
            .store
            .recent_mail_sends(
                &sender,
                now - limits.message_window.max(limits.recipient_window),
            )
            .await?;
        let order: Vec<(DateTime<Utc>, u32)> = queued.iter().map(|(_, at, n)| (*at, *n)).collect();
        let times = expected_send_times(&limits, now, &recent, &order);
        Ok(queued
            .into_iter()
            .zip(times)
            .map(|((id, _, _), at)| (id, at))
            .collect())
    }

    async fn expected_send_time(&self, id: &str) -> Option<DateTime<Utc>> {
        self.expected_send_times()
            .await
            .ok()?
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(_, at)| at)
    }
}

/// `{public_url}{path}`.
pub(crate) fn console_url(settings: &Settings, path: &str) -> String {
    format!(
        "{}{path}",
        settings.effective_public_url().trim_end_matches('/')
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}
