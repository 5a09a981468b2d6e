//! Mail: sending a message as a mailbox (`sendMail`; 202 means accepted, not delivered), and
//! the shapes of a message (recipients, body, small file attachments, custom headers).
//!
//! https://learn.microsoft.com/graph/api/user-sendmail · https://learn.microsoft.com/graph/api/resources/message ·
//! https://learn.microsoft.com/graph/api/resources/fileattachment

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::{GraphClient, GraphRequest};

/// An e-mail address with an optional name (messages and contacts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
}

/// A recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The address.
    pub email_address: EmailAddress,
}

impl Recipient {
    /// A recipient from a bare address.
    pub fn address(addr: &str) -> Self {
        Recipient {
            email_address: EmailAddress {
                name: None,
                address: Some(addr.to_string()),
            },
        }
    }
}

/// Message body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    /// `Text` or `HTML`.
    pub content_type: String,
    /// The text.
    pub content: String,
}

/// A `fileAttachment` (under 3 MB each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAttachment {
    /// Always `#microsoft.graph.fileAttachment`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Base64 bytes.
    pub content_bytes: String,
}

/// Custom header (`x-` prefix required).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetMessageHeader {
    /// Name, starting with `x-`.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A mail message for sendMail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailMessage {
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: ItemBody,
    /// To.
    pub to_recipients: Vec<Recipient>,
    /// Cc.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc_recipients: Vec<Recipient>,
    /// Bcc.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc_recipients: Vec<Recipient>,
    /// Custom headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub internet_message_headers: Vec<InternetMessageHeader>,
    /// Attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<FileAttachment>,
}

/// Sends `message` as `sender`, keeping a copy in Sent Items if asked.
pub fn send_mail_request(
    sender: &str,
    message: &MailMessage,
    save_to_sent_items: bool,
) -> GraphRequest {
    let body = serde_json::json!({ "message": message, "saveToSentItems": save_to_sent_items });
    let url = format!("{}/sendMail", super::users::path(sender));
    GraphRequest::with_json(Method::POST, url, body).mailbox(sender)
}

impl GraphClient {
    /// Sends mail as `sender` (202 = accepted, not delivered).
    pub async fn send_mail(
        &self,
        sender: &str,
        message: &MailMessage,
        save_to_sent_items: bool,
    ) -> Result<(), GraphError> {
        let req = send_mail_request(sender, message, save_to_sent_items);
        self.send(req).await.map(|_| ())
    }
}

/// What Microsoft 365 says about a sender mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderCheck {
    /// The user exists, has a mailbox, and pbx365 holds `Mail.Send`.
    Ready,
    /// No user of that name (404 on `GET /users/{sender}`).
    NoSuchUser,
    /// The user has no Exchange Online mailbox (no `mail`, or a guest): a mailbox needs an
    /// Exchange Online licence.
    NoMailbox,
    /// The app-only token lacks the `Mail.Send` application permission.
    NoMailSend,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SenderUser {
    mail: Option<String>,
    user_type: Option<String>,
}

impl GraphClient {
    /// Checks that `sender` can send: the user exists, has a mailbox, and the token carries
    /// `Mail.Send` (https://learn.microsoft.com/graph/api/user-sendmail#permissions).
    pub async fn check_sender(&self, sender: &str) -> Result<SenderCheck, GraphError> {
        let token = self.token().await?;
        if !token
            .roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case("Mail.Send"))
        {
            return Ok(SenderCheck::NoMailSend);
        }
        let url = format!("{}?$select=id,mail,userType", super::users::path(sender));
        match self.get_json::<SenderUser>(&url).await {
            Ok(u) if u.mail.as_deref().is_none_or(str::is_empty) => Ok(SenderCheck::NoMailbox),
            Ok(u) if u.user_type.as_deref() == Some("Guest") => Ok(SenderCheck::NoMailbox),
            Ok(_) => Ok(SenderCheck::Ready),
            Err(GraphError::NotFound { .. }) => Ok(SenderCheck::NoSuchUser),
            Err(e) => Err(e),
        }
    }
}
