//! The preamble every Outlook handler shares (contacts, contact folders, events, calendarView,
//! getSchedule, sendMail, profile photos), as one extractor: [`Outlook`] checks the permission,
//! resolves the mailbox owner from the `{id}` path segment, and admits the request into the
//! per-app-per-mailbox budget for as long as the handler runs. Paging (`$top` or
//! `Prefer: odata.maxpagesize`, `$skiptoken` offsets) is read from it too.
//!
//! Limits: https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{decode_token, dir_not_found, enc, encode_token, graph_error, Query};
use crate::identity::access::{app_from_headers, AppPrincipal};
use crate::runtime::{MailboxGuard, Throttled};
use crate::state::SimState;
use crate::tenant::{Mailbox, Tenant};

/// The permissions an Outlook route needs, and how it finds the user in `{id}`.
pub trait OutlookAccess: Send + Sync + 'static {
    /// The call is allowed when the token grants any of these.
    const ANY_OF: &'static [&'static str];
    /// True: the user must have an Exchange mailbox (404 `MailboxNotEnabledForRESTAPI`
    /// otherwise); false: any directory user will do (profile photos).
    const NEEDS_MAILBOX: bool = true;
}

macro_rules! access {
    ($(#[$doc:meta] $name:ident = $perms:expr $(, mailbox: $mb:expr)?;)*) => {$(
        #[$doc]
        pub struct $name;
        impl OutlookAccess for $name {
            const ANY_OF: &'static [&'static str] = $perms;
            $(const NEEDS_MAILBOX: bool = $mb;)?
        }
    )*};
}

access! {
    /// Reading contacts and contact folders.
    ContactsRead = &["Contacts.Read", "Contacts.ReadWrite"];
    /// Writing contacts and contact folders.
    ContactsWrite = &["Contacts.ReadWrite"];
    /// Reading events, calendarView and free/busy.
    CalendarsRead = &["Calendars.Read", "Calendars.ReadBasic.All", "Calendars.ReadWrite"];
    /// Writing events.
    CalendarsWrite = &["Calendars.ReadWrite"];
    /// Sending mail as the user.
    MailSend = &["Mail.Send"];
    /// Reading a user's profile photo (served by the Outlook profile API, graph-facts §5, §9).
    PhotoRead = &["User.Read.All", "ProfilePhoto.Read.All"], mailbox: false;
}

/// An admitted Outlook request: caller, mailbox owner, query and headers, holding one slot of
/// the app + mailbox concurrency budget until dropped.
pub struct Outlook<A> {
    /// The caller.
    pub app: AppPrincipal,
    /// Object id of the mailbox owner named by `{id}` (id or UPN in the path).
    pub user_id: String,
    /// The query string.
    pub query: Query,
    /// The request headers.
    pub headers: HeaderMap,
    _slot: MailboxGuard,
    _access: PhantomData<A>,
}

/// Resolves the mailbox owner: 404 `ErrorInvalidUser` for an unknown user and
/// `MailboxNotEnabledForRESTAPI` for users without an Exchange mailbox (guests, no mail).
pub fn mailbox_user(tenant: &Tenant, id: &str) -> Result<String, Response> {
    let Some(u) = tenant.find_user(id) else {
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{id}' is invalid."),
        ));
    };
    if u.mail.is_none() || u.user_type == "Guest" {
        // graph-facts §12 (OBSERVED)
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "REST API is not yet supported for this mailbox.",
        ));
    }
    Ok(u.id.clone())
}

/// Graph's 429 `ApplicationThrottled` with `Retry-After`.
pub fn throttled(t: Throttled) -> Response {
    let mut r = graph_error(
        StatusCode::TOO_MANY_REQUESTS,
        "ApplicationThrottled",
        t.message,
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(t.retry_after_secs));
    r
}

impl<A: OutlookAccess> FromRequestParts<Arc<SimState>> for Outlook<A> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<SimState>,
    ) -> Result<Self, Self::Rejection> {
        let app = app_from_headers(state, &parts.headers)?;
        app.require(A::ANY_OF)?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| dir_not_found(""))?;
        let id = params.get("id").cloned().unwrap_or_default();
        let user_id = {
            let tenant = state.tenant.read().await;
            if A::NEEDS_MAILBOX {
                mailbox_user(&tenant, &id)?
            } else {
                tenant.user_id(&id).ok_or_else(|| dir_not_found(&id))?
            }
        };
        let query = Query::from_uri(&parts.uri);
        // $filter, $orderby, $search, $expand, $count and $skip are not implemented for Outlook
        // collections here: refused as Graph refuses an unsupported option, never ignored.
        super::query::refuse_unknown_options(&query, OUTLOOK_OPTIONS)?;
        let slot = state
            .runtime
            .enter_mailbox(&app.app_id, &user_id)
            .map_err(throttled)?;
        Ok(Outlook {
            app,
            user_id,
            query,
            headers: parts.headers.clone(),
            _slot: slot,
            _access: PhantomData,
        })
    }
}

/// Where a page of an Outlook collection starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Items per page.
    pub top: usize,
    /// Items skipped (from `$skiptoken`).
    pub offset: usize,
}

impl Page {
    /// The page after this one when `shown` of `total` items were returned, if any are left.
    pub fn after(self, shown: usize, total: usize) -> Option<Page> {
        (self.offset + shown < total).then_some(Page {
            top: self.top,
            offset: self.offset + shown,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Offset {
    o: usize,
}

/// The OData options the Outlook handlers implement (paging, delta tokens and `$select`;
/// https://learn.microsoft.com/graph/query-parameters).
const OUTLOOK_OPTIONS: &[&str] = &["select", "top", "skiptoken", "deltatoken"];

/// Outlook's default page size.
const DEFAULT_PAGE: usize = 10;
/// Outlook's largest page.
const MAX_PAGE: usize = 1000;

impl<A> Outlook<A> {
    /// `$top` (1..=1000, else Graph's 400) or `Prefer: odata.maxpagesize` (default 10), and the
    /// offset carried in `$skiptoken`.
    pub fn page(&self) -> Result<Page, Response> {
        let top = if self.query.get("top").is_some() {
            self.query.top(DEFAULT_PAGE, MAX_PAGE)?
        } else {
            self.delta_page_size()
        };
        let offset = self
            .query
            .get("skiptoken")
            .and_then(decode_token::<Offset>)
            .map(|o| o.o)
            .unwrap_or(0);
        Ok(Page { top, offset })
    }

    /// The page size of a delta round: `Prefer: odata.maxpagesize` only (default 10).
    pub fn delta_page_size(&self) -> usize {
        super::prefer_max_page_size(&self.headers)
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE)
    }

    /// The `@odata.nextLink` for page `next`: `path` under `/v1.0/` with `fixed` parameters
    /// first, then the query options in `keep` that the request carried, `$top` and `$skiptoken`.
    pub fn next_link(
        &self,
        state: &SimState,
        path: &str,
        fixed: &[(&str, &str)],
        keep: &[&str],
        next: Page,
    ) -> String {
        let mut params: Vec<String> = fixed
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect();
        for k in keep {
            if let Some(v) = self.query.get(k) {
                params.push(format!("${k}={}", enc(v)));
            }
        }
        params.push(format!("$top={}", next.top));
        params.push(format!(
            "$skiptoken={}",
            encode_token(&Offset { o: next.offset })
        ));
        format!("{}/v1.0/{path}?{}", state.base_url, params.join("&"))
    }

    /// 404 `ErrorInvalidUser` when the owner was deleted after the request was admitted (the
    /// tenant lock is not held between admission and the handler).
    pub fn owner_still_there(&self, tenant: &Tenant) -> Result<(), Response> {
        mailbox_user(tenant, &self.user_id).map(|_| ())
    }

    /// The owner's mailbox for writing (see [`Outlook::owner_still_there`]).
    pub fn mailbox_mut<'t>(&self, tenant: &'t mut Tenant) -> Result<&'t mut Mailbox, Response> {
        self.owner_still_there(tenant)?;
        Ok(tenant.mailbox_mut(&self.user_id))
    }
}
