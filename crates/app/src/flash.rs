//! One-off outcomes ("The Application (client) ID … was saved.") kept for a console session's
//! next page view, so a form can answer with a redirect to a clean URL.

use crate::App;
use serde::{Deserialize, Serialize};

/// An outcome shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// Success (green) or failure (red).
    pub ok: bool,
    /// The sentence.
    pub message: String,
}

fn flash_key(session_hash: &str) -> String {
    format!("m365:flash:{session_hash}")
}

impl App {
    /// Leaves a one-off outcome for the session's next page view.
    pub async fn set_flash(&self, session_hash: &str, ok: bool, message: &str) {
        let value = serde_json::to_string(&Flash {
            ok,
            message: message.to_string(),
        })
        .unwrap_or_default();
        if let Err(e) = self.store.set_kv(&flash_key(session_hash), &value).await {
            tracing::warn!(error = %e, "could not keep the outcome for the next page view");
        }
    }

    /// Takes (and forgets) the session's pending outcome.
    pub async fn take_flash(&self, session_hash: &str) -> Option<Flash> {
        let key = flash_key(session_hash);
        let raw = self.store.get_kv(&key).await.ok().flatten()?;
        let _ = self.store.delete_kv(&key).await;
        serde_json::from_str(&raw).ok()
    }

    /// Takes the session's pending outcome as (notice, error): a success fills the first, a
    /// failure the second.
    pub async fn take_flash_sentences(
        &self,
        session_hash: &str,
    ) -> (Option<String>, Option<String>) {
        match self.take_flash(session_hash).await {
            Some(f) if f.ok => (Some(f.message), None),
            Some(f) => (None, Some(f.message)),
            None => (None, None),
        }
    }
}
