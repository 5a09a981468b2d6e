//! The persistent outbox of pbx365's own mail, and its pure rules: attachment sizes, retry
//! backoff, and pacing to Exchange Online's sending limits.
//!
//! Pacing follows https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#sending-limits
//! (30 messages per minute and 10,000 recipients per day for one sender mailbox); both limits
//! are settings because tenants differ and tests shorten them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a mail is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting to be sent (or to be retried): "queued" in the console.
    Pending,
    /// Handed to the transport by the worker, the outcome not yet recorded. A row left in this
    /// state by a crash is never sent again automatically (the at-most-once rule): it may have
    /// reached Microsoft 365 already.
    Sending,
    /// Accepted by the mail transport.
    Sent,
    /// Given up, with the reason.
    Failed,
}

impl OutboxStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "sending" => Some(OutboxStatus::Sending),
            "sent" => Some(OutboxStatus::Sent),
            "failed" => Some(OutboxStatus::Failed),
            _ => None,
        }
    }

    /// The word the console shows.
    pub fn label(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "queued",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }
}

/// A file attached to a mail, kept base64-encoded as Graph's `fileAttachment` wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MailAttachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
}

impl MailAttachment {
    /// The decoded size in bytes (from the base64 length, without decoding).
    pub fn size(&self) -> usize {
        let s = self.content_base64.trim_end_matches('=');
        s.len() * 3 / 4
    }
}

/// Inline attachments must be under 3 MB each
/// (https://learn.microsoft.com/graph/outlook-large-attachments).
pub const MAX_INLINE_ATTACHMENT_BYTES: usize = 3 * 1024 * 1024;

/// Why a mail's attachments cannot be sent inline, or `None` when they can. pbx365 does not
/// use upload sessions, so a file of 3 MB or more is refused when the mail is queued.
pub fn attachment_problem(attachments: &[MailAttachment]) -> Option<String> {
    attachments
        .iter()
        .find(|a| a.size() >= MAX_INLINE_ATTACHMENT_BYTES)
        .map(|a| {
            format!(
                "attachment '{}' is {:.1} MB: Microsoft 365 takes attachments under 3 MB inline, and pbx365 does not upload larger files",
                a.name,
                a.size() as f64 / (1024.0 * 1024.0)
            )
        })
}

/// A mail pbx365 sends (welcome mail, sync alert, certificate warning, test mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxMail {
    /// Id.
    pub id: String,
    /// What the mail is (`test`, `sync_held`, `sync_failed`, `consent_lost`,
    /// `certificate_expiry`, `welcome`, or `other`).
    pub kind: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML body, sent instead of the text when the transport takes only one.
    pub html: Option<String>,
    /// Files sent with it (each under 3 MB).
    pub attachments: Vec<MailAttachment>,
    /// State.
    pub status: OutboxStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before this time (backoff, pacing).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was handed to the transport (the last attempt).
    pub sent_at: Option<DateTime<Utc>>,
    /// The sender mailbox of the last attempt.
    pub sender: Option<String>,
    /// A key that makes queuing idempotent (one alert per held run, one welcome per extension).
    pub dedupe_key: Option<String>,
}

/// A mail to queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMail {
    /// See [`OutboxMail::kind`].
    pub kind: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<MailAttachment>,
    /// Queued at most once per key.
    pub dedupe_key: Option<String>,
}

/// How long to wait before attempt `attempts + 1` after a transient failure: `base` doubling per
/// attempt, at most `max`, never less than Microsoft's `Retry-After` when it gave one
/// (https://learn.microsoft.com/graph/throttling).
pub fn retry_delay(
    attempts: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let shift = attempts.saturating_sub(1).min(20);
    let backoff = (base * 2i32.pow(shift)).min(max);
    retry_after.map_or(backoff, |r| r.max(backoff))
}

/// One sender mailbox's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingLimits {
    /// Messages per `message_window` (Exchange Online: 30 per minute).
    pub messages: u32,
    /// The message window.
    pub message_window: Duration,
    /// Recipients per `recipient_window` (Exchange Online: 10,000 per day).
    pub recipients: u32,
    /// The recipient window.
    pub recipient_window: Duration,
}

impl Default for PacingLimits {
    fn default() -> Self {
        PacingLimits {
            messages: 30,
            message_window: Duration::minutes(1),
            recipients: 10_000,
            recipient_window: Duration::days(1),
        }
    }
}

/// A send already made: when, and to how many recipients.
pub type SendRecord = (DateTime<Utc>, u32);

/// The earliest time at or after `now` when a message to `recipients` recipients may go, given
/// the sends already made (`recent`, any order) in rolling windows.
pub fn next_send_at(
    limits: &PacingLimits,
    now: DateTime<Utc>,
    recent: &[SendRecord],
    recipients: u32,
) -> DateTime<Utc> {
    let mut at = now;
    // Messages: with n sends in the window, the (n - messages + 1)-th oldest must leave it.
    let mut in_window: Vec<DateTime<Utc>> = recent
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t > now - limits.message_window)
        .collect();
    in_window.sort();
    let m = limits.messages.max(1) as usize;
    if in_window.len() >= m {
        at = at.max(in_window[in_window.len() - m] + limits.message_window);
    }
    // Recipients: drop the oldest sends until this one fits under the day's count.
    let mut day: Vec<SendRecord> = recent
        .iter()
        .copied()
        .filter(|(t, _)| *t > now - limits.recipient_window)
        .collect();
    day.sort();
    let cap = limits.recipients.max(recipients) as u64;
    let mut total: u64 = day.iter().map(|(_, n)| *n as u64).sum::<u64>() + recipients as u64;
    for (t, n) in &day {
        if total <= cap {
            break;
        }
        total -= *n as u64;
        at = at.max(*t + limits.recipient_window);
    }
    at
}

/// When each queued message (by its recipient count, in sending order) is expected to go, if
/// nothing fails: the pacing rule applied one after the other.
pub fn expected_send_times(
    limits: &PacingLimits,
    now: DateTime<Utc>,
    recent: &[SendRecord],
    queued: &[(DateTime<Utc>, u32)],
) -> Vec<DateTime<Utc>> {
    let mut sends: Vec<SendRecord> = recent.to_vec();
    let mut out = Vec::with_capacity(queued.len());
    let mut clock = now;
    for (not_before, n) in queued {
        let at = next_send_at(limits, clock.max(*not_before), &sends, *n);
        sends.push((at, *n));
        // Keep the simulated window small: only what can still matter.
        let horizon = at - limits.message_window.max(limits.recipient_window);
        sends.retain(|(t, _)| *t > horizon);
        clock = at;
        out.push(at);
    }
    out
}

/// Fills `{{name}}` placeholders of a mail template; `escape` makes values safe for HTML.
/// Unknown placeholders are left as they are, so a typo in an overridden template shows.
pub fn fill_template(template: &str, vars: &[(&str, String)], escape: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, v)) if escape => out.push_str(&html_escape(v)),
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `addr` looks like a mail address (one `@`, something on both sides, no spaces).
pub fn is_mail_address(addr: &str) -> bool {
    let a = addr.trim();
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !a.chars().any(|c| c.is_whitespace() || c.is_control())
                && a.len() <= 254
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_000_000 + s)
    }

    #[test]
    fn the_thirty_first_message_in_a_minute_waits_for_the_oldest_to_leave_the_window() {
        let l = PacingLimits::default();
        let recent: Vec<SendRecord> = (0..30).map(|i| (t(i), 1)).collect();
        assert_eq!(next_send_at(&l, t(30), &recent, 1), t(60));
        assert_eq!(next_send_at(&l, t(30), &recent[1..], 1), t(30));
    }

    #[test]
    fn the_daily_recipient_count_holds_a_large_message_until_old_sends_expire() {
        let l = PacingLimits {
            recipients: 100,
            ..PacingLimits::default()
        };
        let recent = vec![(t(0), 60), (t(100), 30)];
        assert_eq!(next_send_at(&l, t(200), &recent, 10), t(200));
        assert_eq!(
            next_send_at(&l, t(200), &recent, 20),
            t(0) + Duration::days(1)
        );
        // A message larger than the whole limit waits for an empty day instead of forever.
        assert_eq!(
            next_send_at(&l, t(200), &recent, 500),
            t(100) + Duration::days(1)
        );
    }

    #[test]
    fn a_burst_of_two_hundred_is_spread_at_thirty_a_minute() {
        let l = PacingLimits::default();
        let queued = vec![(t(0), 1); 200];
        let times = expected_send_times(&l, t(0), &[], &queued);
        assert_eq!(times[29], t(0));
        assert_eq!(times[30], t(60));
        assert_eq!(times[199], t(6 * 60));
        for (i, at) in times.iter().enumerate() {
            let in_window = times
                .iter()
                .filter(|x| **x <= *at && **x > *at - Duration::minutes(1))
                .count();
            assert!(in_window <= 30, "message {i}: {in_window} in one minute");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_never_undercuts_retry_after() {
        let (b, m) = (Duration::seconds(30), Duration::hours(1));
        assert_eq!(retry_delay(1, b, m, None), Duration::seconds(30));
        assert_eq!(retry_delay(3, b, m, None), Duration::seconds(120));
        assert_eq!(retry_delay(30, b, m, None), Duration::hours(1));
        assert_eq!(
            retry_delay(1, b, m, Some(Duration::seconds(41))),
            Duration::seconds(41)
        );
    }

    #[test]
    fn templates_fill_known_names_escape_html_and_keep_unknown_ones() {
        let vars = [("name", "<Ann & Bob>".to_string())];
        assert_eq!(
            fill_template("Hi {{ name }}, {{nope}}", &vars, false),
            "Hi <Ann & Bob>, {{nope}}"
        );
        assert_eq!(
            fill_template("<p>{{name}}</p>", &vars, true),
            "<p>&lt;Ann &amp; Bob&gt;</p>"
        );
        assert_eq!(fill_template("open {{", &vars, false), "open {{");
    }

    #[test]
    fn attachments_of_three_megabytes_are_refused_with_the_file_name() {
        let small = MailAttachment {
            name: "a.txt".into(),
            content_type: "text/plain".into(),
            content_base64: "aGVsbG8=".into(),
        };
        assert_eq!(small.size(), 5);
        assert!(attachment_problem(std::slice::from_ref(&small)).is_none());
        let big = MailAttachment {
            name: "v.wav".into(),
            content_base64: "A".repeat(4 * 1024 * 1024),
            ..small
        };
        assert!(attachment_problem(&[big]).unwrap().contains("'v.wav'"));
    }

    #[test]
    fn mail_addresses_need_a_local_part_and_a_domain() {
        assert!(is_mail_address("admin@contoso.com"));
        for bad in ["", "admin", "@contoso.com", "a@b", "a b@c.com", "a@.com"] {
            assert!(!is_mail_address(bad), "{bad}");
        }
    }
}
