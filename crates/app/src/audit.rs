//! The audit log: every change made through the console, the API or the CLI, stamped by the
//! application's one clock.

use crate::App;
use pbx365_domain::AuditEntry;

impl App {
    /// Records an audited change. A failure to audit is logged, not shown: the change itself
    /// happened.
    pub async fn audit(&self, actor: &str, action: &str, target: &str, detail: impl Into<String>) {
        let entry = AuditEntry {
            at: self.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.into(),
        };
        if let Err(e) = self.store.audit(&entry).await {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }
}
