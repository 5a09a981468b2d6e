//! The SSO page's extension picker (issue 15): which synced extensions the page shows as
//! checkboxes, and the search behind "Find an extension". A small office sees every synced
//! extension; a tenant of thousands sees the chosen ones and searches for more, so neither the
//! page nor the search reads the whole extensions table.

use crate::{App, AppError};
use pbx365_domain::{Extension, ExtensionSource};
use serde::Serialize;

/// Up to this many synced extensions, the page lists them all (no typing, no script needed).
pub const LIST_ALL_UP_TO: u64 = 50;

/// The most extensions one search returns.
pub const SEARCH_LIMIT: u32 = 20;

/// One extension as the picker shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionChoice {
    /// The extension number, the value saved in `sso.selected_extensions`.
    pub id: String,
    /// Number and name: "201 Anna Berg".
    pub name: String,
    /// Mail address, else department, else empty: tells two Anna Bergs apart.
    pub detail: String,
}

impl From<&Extension> for ExtensionChoice {
    fn from(e: &Extension) -> Self {
        ExtensionChoice {
            id: e.number.to_string(),
            name: format!("{} {}", e.number, e.display_name),
            detail: e
                .email
                .clone()
                .filter(|m| !m.is_empty())
                .or_else(|| e.department.clone())
                .unwrap_or_default(),
        }
    }
}

/// The checkboxes of the page's Extensions list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionChoices {
    /// Each choice with whether it is selected, ordered by number.
    pub choices: Vec<(ExtensionChoice, bool)>,
    /// True when only the selected extensions are listed and more are found by searching.
    pub search: bool,
}

/// A chosen number no synced extension has (any more): kept, so saving loses nothing.
fn unknown(number: &str) -> ExtensionChoice {
    ExtensionChoice {
        id: number.to_string(),
        name: format!("{number} (no synced extension has this number)"),
        detail: String::new(),
    }
}

impl App {
    /// The Extensions list of the SSO page for these selected numbers: every synced extension
    /// when there are at most [`LIST_ALL_UP_TO`] (from the maintained count, not a count over
    /// the table), otherwise only the selected ones, read by number.
    pub async fn sso_extension_choices(
        &self,
        selected: &[String],
    ) -> Result<ExtensionChoices, AppError> {
        let counts = self.store.synced_counts().await?;
        let search = counts.synced > LIST_ALL_UP_TO;
        let synced: Vec<Extension> = if search {
            self.store.extensions_by_numbers(selected).await?
        } else {
            // One more than the limit: a sync may have added some since the count was read.
            self.store
                .list_synced_extensions(LIST_ALL_UP_TO as u32 + 1)
                .await?
        }
        .into_iter()
        .filter(|e| e.source == ExtensionSource::M365 && e.m365_id.is_some())
        .collect();
        let mut choices: Vec<(ExtensionChoice, bool)> = synced
            .iter()
            .map(|e| {
                let checked = selected.iter().any(|n| n == e.number.as_str());
                (ExtensionChoice::from(e), checked)
            })
            .collect();
        for n in selected {
            if !choices.iter().any(|(c, _)| &c.id == n) {
                choices.push((unknown(n), true));
            }
        }
        Ok(ExtensionChoices { choices, search })
    }

    /// The picker's search: up to [`SEARCH_LIMIT`] synced extensions whose number, first, last
    /// or display name starts with `text`; case is ignored for ASCII, and beyond ASCII for
    /// names written capitalized (see `Store::search_synced_extensions`).
    pub async fn search_synced_extensions(
        &self,
        text: &str,
    ) -> Result<Vec<ExtensionChoice>, AppError> {
        Ok(self
            .store
            .search_synced_extensions(text, SEARCH_LIMIT)
            .await?
            .iter()
            .map(ExtensionChoice::from)
            .collect())
    }
}
