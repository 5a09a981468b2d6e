//! Collections and delta rounds: OData pages followed through `@odata.nextLink`, and delta
//! pages that end with an `@odata.deltaLink` for the next round.
//!
//! https://learn.microsoft.com/graph/paging · https://learn.microsoft.com/graph/delta-query-overview

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::client::GraphClient;
use super::request::GraphRequest;
use crate::error::GraphError;

/// One page of an OData collection.
#[derive(Debug, Clone, Deserialize)]
pub struct ODataPage<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// Next page, if any.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// Delta link on the last page of a delta round.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// `@removed` on a delta item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// `changed` (soft-deleted, restorable) or `deleted` (gone).
    #[serde(default)]
    pub reason: String,
}

/// Where a delta round goes on: another page, or the end with the link for the next round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextOrDelta {
    /// More pages in this round: fetch this link next.
    Next(String),
    /// The round is complete: save this link and use it for the next round.
    Delta(String),
}

impl NextOrDelta {
    /// The link either way (what the caller persists after applying the page).
    pub fn link(&self) -> &str {
        match self {
            NextOrDelta::Next(l) | NextOrDelta::Delta(l) => l,
        }
    }
}

/// One page of a delta round. Apply `items`, then persist `next.link()` (in the same transaction
/// if you can), then continue with it: a crash in between replays the page, which is idempotent.
#[derive(Debug, Clone)]
pub struct DeltaPage<T> {
    /// Changes on this page.
    pub items: Vec<T>,
    /// Where to go on.
    pub next: NextOrDelta,
}

impl<T> DeltaPage<T> {
    /// The same page with each item converted (e.g. a Graph shape into a change).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> DeltaPage<U> {
        DeltaPage {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

impl GraphClient {
    /// One page of a collection.
    pub async fn get_page<T: DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<ODataPage<T>, GraphError> {
        self.send(req).await?.json()
    }

    /// Every item of a collection, following `@odata.nextLink` (headers are re-sent on each page).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(req.url.clone());
        let mut pages = 0u32;
        let retries_before = self.retry_count();
        while let Some(url) = next {
            let page: ODataPage<T> = self.get_page(GraphRequest { url, ..req.clone() }).await?;
            pages += 1;
            items.extend(page.value);
            next = page.next_link;
        }
        let retries = self.retry_count().saturating_sub(retries_before);
        if retries > 0 {
            tracing::info!(path = %self.relative_path(&req.url), pages, items = items.len(), retries,
                "read a collection; Microsoft throttled or failed some requests, which were retried");
        } else {
            tracing::debug!(path = %self.relative_path(&req.url), pages, items = items.len(), "read a collection");
        }
        Ok(items)
    }

    /// One page of a delta round from `link` (the start URL, a nextLink or a saved deltaLink).
    /// An expired link gives [`GraphError::DeltaExpired`]: start over with a full round.
    pub async fn delta_page<T: DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<DeltaPage<T>, GraphError> {
        self.get_page::<T>(req).await?.into_delta()
    }
}

impl<T> ODataPage<T> {
    /// The page as a page of a delta round: it must end with a nextLink or a deltaLink.
    pub fn into_delta(self) -> Result<DeltaPage<T>, GraphError> {
        let next = match (self.next_link, self.delta_link) {
            (Some(n), _) => NextOrDelta::Next(n),
            (None, Some(d)) => NextOrDelta::Delta(d),
            (None, None) => {
                return Err(GraphError::BadResponse(
                    "a delta page without nextLink or deltaLink".into(),
                ))
            }
        };
        Ok(DeltaPage {
            items: self.value,
            next,
        })
    }
}
