//! Contact sync settings (SPEC §5, issue 14): checking a shared mailbox against Microsoft 365
//! before it is added, and what each synced mailbox holds for the console.

use crate::{App, AppError};
use pbx365_domain::settings::Settings;
use pbx365_graph::contacts::ContactMailboxCheck;
use pbx365_store::ContactMailboxStatus;

impl App {
    /// Checks that `mailbox` exists in the tenant of `settings` and has a mailbox whose contacts
    /// pbx365 may read; the error says what to do otherwise.
    pub async fn check_contact_mailbox(
        &self,
        settings: &Settings,
        mailbox: &str,
    ) -> Result<(), AppError> {
        let graph = self.graph_for(settings)?;
        let why = match graph.check_contact_mailbox(mailbox).await? {
            ContactMailboxCheck::Ready => return Ok(()),
            ContactMailboxCheck::NoSuchUser => format!(
                "The mailbox {mailbox} does not exist in Microsoft 365: enter the address of a shared mailbox or user."
            ),
            ContactMailboxCheck::NoMailbox => format!(
                "The user {mailbox} has no Exchange Online mailbox, so it has no contacts to sync."
            ),
            ContactMailboxCheck::Refused(e) => {
                format!("Microsoft 365 does not let pbx365 read the contacts of {mailbox}: {e}")
            }
        };
        Err(AppError::Invalid(why))
    }

    /// Every synced mailbox with its entry count and last sync.
    pub async fn contact_mailboxes(&self) -> Result<Vec<ContactMailboxStatus>, AppError> {
        Ok(self.store.contact_mailboxes().await?)
    }
}
