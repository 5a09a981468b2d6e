//! The mail server a mail is handed to: Microsoft 365 (Graph `sendMail` as the sender mailbox)
//! or an SMTP server (`lettre`, rustls). Each answer is classified: sent, retry later, or failed
//! for good with a sentence.

use crate::App;
use chrono::Duration;
use pbx365_domain::settings::{MailTransport, Settings, SmtpTls};
use pbx365_domain::OutboxMail;
use pbx365_graph::{
    FileAttachment, GraphClient, GraphError, InternetMessageHeader, ItemBody, MailMessage,
    Recipient,
};
use std::sync::Arc;

/// The sentence when no mail server is configured.
pub const NOT_CONFIGURED: &str =
    "no mail server is configured: open Settings > Mail server (or set mail.transport)";

/// Where mail goes.
pub(crate) enum Transport {
    /// Graph `sendMail` as `sender`.
    Graph {
        client: Arc<GraphClient>,
        sender: String,
    },
    /// An SMTP server.
    Smtp {
        mailer: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        from: String,
    },
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Accepted by the mail server.
    Sent,
    /// Not accepted, may work later (throttling, outage).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will not work without a change (mailbox missing, invalid recipient, too large).
    Failed(String),
}

impl Transport {
    /// The transport of `settings`, or why mail cannot be sent with them.
    pub(crate) fn for_settings(app: &App, settings: &Settings) -> Result<Transport, String> {
        let m = &settings.mail;
        let sender = m.sender.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match m.transport {
            MailTransport::None => Err(NOT_CONFIGURED.into()),
            MailTransport::Microsoft365 => {
                let sender = sender.ok_or(
                    "no sender mailbox is set: enter one in Settings > Mail server (mail.sender)",
                )?;
                let client = app.graph_for(settings).map_err(|e| e.to_string())?;
                Ok(Transport::Graph {
                    client,
                    sender: sender.to_string(),
                })
            }
            MailTransport::Smtp => {
                let from = sender.ok_or(
                    "no sender address is set: enter one in Settings > Mail server (mail.sender)",
                )?;
                let host = m
                    .smtp_host
                    .as_deref()
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .ok_or(
                        "no SMTP host is set: enter one in Settings > Mail server (mail.smtp_host)",
                    )?;
                let mailer = smtp_mailer(host, m.smtp_port, m.smtp_tls, settings)?;
                Ok(Transport::Smtp {
                    mailer,
                    from: from.to_string(),
                })
            }
        }
    }

    /// The sender mailbox or address (pacing counts per sender).
    pub(crate) fn sender(&self) -> &str {
        match self {
            Transport::Graph { sender, .. } => sender,
            Transport::Smtp { from, .. } => from,
        }
    }

    /// The transport's name in mail and logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transport::Graph { .. } => "Microsoft 365",
            Transport::Smtp { .. } => "SMTP",
        }
    }

    /// Hands `mail` to the server once (the Graph client itself retries throttling within
    /// its bounds, honouring `Retry-After`).
    pub(crate) async fn send(&self, mail: &OutboxMail) -> Outcome {
        match self {
            Transport::Graph { client, sender } => send_graph(client, sender, mail).await,
            Transport::Smtp { mailer, from } => send_smtp(mailer, from, mail).await,
        }
    }
}

/// The Graph message of an outbox mail. Graph's JSON message has one body: the HTML one when
/// there is one (the text body goes to SMTP as the alternative part).
pub(crate) fn graph_message(mail: &OutboxMail) -> MailMessage {
    let body = match &mail.html {
        Some(html) => ItemBody {
            content_type: "HTML".into(),
            content: html.clone(),
        },
        None => ItemBody {
            content_type: "Text".into(),
            content: mail.body.clone(),
        },
    };
    MailMessage {
        subject: mail.subject.clone(),
        body,
        to_recipients: mail.to.iter().map(|a| Recipient::address(a)).collect(),
        // Lets an admin find the mail in Exchange's message trace by its outbox id.
        internet_message_headers: vec![InternetMessageHeader {
            name: "x-pbx365-outbox-id".into(),
            value: mail.id.clone(),
        }],
        attachments: mail
            .attachments
            .iter()
            .map(|a| FileAttachment {
                odata_type: "#microsoft.graph.fileAttachment".into(),
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                content_bytes: a.content_base64.clone(),
            })
            .collect(),
        ..MailMessage::default()
    }
}

async fn send_graph(client: &GraphClient, sender: &str, mail: &OutboxMail) -> Outcome {
    match client.send_mail(sender, &graph_message(mail), false).await {
        Ok(()) => Outcome::Sent,
        Err(e) => classify_graph(sender, e),
    }
}

/// Sorts a Graph failure into retry or give up (codes: graph-facts §12).
fn classify_graph(sender: &str, e: GraphError) -> Outcome {
    if e.is_transient() {
        return Outcome::Retry {
            reason: e.to_string(),
            after: None,
        };
    }
    match &e {
        GraphError::NotFound { raw } => Outcome::Failed(match raw.code.as_str() {
            "MailboxNotEnabledForRESTAPI" => format!(
                "the sender {sender} has no Exchange Online mailbox (it needs a licence with Exchange Online): choose another sender in Settings > Mail server"
            ),
            _ => format!(
                "the sender mailbox {sender} does not exist in Microsoft 365 ({}): check Settings > Mail server",
                raw.code
            ),
        }),
        GraphError::Graph { raw } if raw.code == "ErrorInvalidRecipients" => {
            Outcome::Failed(format!("a recipient address is not valid ({})", raw.message))
        }
        GraphError::Graph { raw } if (400..500).contains(&raw.status) => {
            Outcome::Failed(e.to_string())
        }
        GraphError::PermissionMissing { .. } | GraphError::MailboxAccessBlocked { .. } => {
            Outcome::Failed(e.to_string())
        }
        // Connection-level problems (consent, certificate, token) are fixed by an admin and
        // then every queued mail should go: keep them queued.
        _ => Outcome::Retry {
            reason: e.to_string(),
            after: None,
        },
    }
}

fn smtp_mailer(
    host: &str,
    port: Option<u16>,
    tls: SmtpTls,
    settings: &Settings,
) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, String> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let builder = match tls {
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| format!("SMTP host '{host}' cannot be used: {e}"))?;
    let mut builder = builder.timeout(Some(std::time::Duration::from_secs(30)));
    if let Some(port) = port {
        builder = builder.port(port);
    }
    let m = &settings.mail;
    if let (Some(user), Some(password)) = (&m.smtp_user, &m.smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

async fn send_smtp(
    mailer: &lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: &str,
    mail: &OutboxMail,
) -> Outcome {
    use base64::Engine;
    use lettre::message::{header::ContentType, Attachment, MultiPart, SinglePart};
    use lettre::AsyncTransport;
    let parse = |a: &str| {
        a.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("'{a}' is not a mail address: {e}"))
    };
    let build = || -> Result<lettre::Message, String> {
        let mut b = lettre::Message::builder()
            .from(parse(from)?)
            .subject(mail.subject.clone());
        for to in &mail.to {
            b = b.to(parse(to)?);
        }
        let text = SinglePart::plain(mail.body.clone());
        let body = match &mail.html {
            Some(html) => MultiPart::alternative()
                .singlepart(text)
                .singlepart(SinglePart::html(html.clone())),
            None => MultiPart::mixed().singlepart(text),
        };
        let mut all = MultiPart::mixed().multipart(body);
        for a in &mail.attachments {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&a.content_base64)
                .map_err(|e| format!("attachment '{}' is damaged: {e}", a.name))?;
            let ct = ContentType::parse(&a.content_type)
                .unwrap_or(ContentType::parse("application/octet-stream").expect("valid"));
            all = all.singlepart(Attachment::new(a.name.clone()).body(bytes, ct));
        }
        b.multipart(all).map_err(|e| e.to_string())
    };
    let message = match build() {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(e),
    };
    match mailer.send(message).await {
        Ok(_) => Outcome::Sent,
        Err(e) if e.is_permanent() => {
            Outcome::Failed(format!("the SMTP server refused the mail: {e}"))
        }
        Err(e) => Outcome::Retry {
            reason: format!("the SMTP server did not take the mail: {e}"),
            after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx365_graph::error::RawError;

    fn raw(status: u16, code: &str) -> Box<RawError> {
        Box::new(RawError {
            status,
            code: code.into(),
            ..RawError::default()
        })
    }

    #[test]
    fn a_missing_sender_mailbox_fails_with_a_sentence_naming_it() {
        let o = classify_graph(
            "noreply@contoso.com",
            GraphError::NotFound {
                raw: raw(404, "ErrorInvalidUser"),
            },
        );
        assert!(
            matches!(&o, Outcome::Failed(m) if m.contains("noreply@contoso.com") && m.contains("does not exist")),
            "{o:?}"
        );
    }

    #[test]
    fn throttling_is_retried_and_invalid_recipients_are_not() {
        let o = classify_graph(
            "s@c.com",
            GraphError::Throttled {
                attempts: 8,
                raw: raw(429, "TooManyRequests"),
            },
        );
        assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
        let o = classify_graph(
            "s@c.com",
            GraphError::Graph {
                raw: raw(400, "ErrorInvalidRecipients"),
            },
        );
        assert!(matches!(o, Outcome::Failed(_)), "{o:?}");
    }
}
