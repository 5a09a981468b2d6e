//! Outlook contacts of a mailbox: contact folders (top level and children), the contacts of a
//! folder, and contact delta rounds per folder. Every call counts against the mailbox's
//! concurrency limit.
//!
//! https://learn.microsoft.com/graph/api/resources/contact · https://learn.microsoft.com/graph/api/resources/contactfolder ·
//! https://learn.microsoft.com/graph/api/user-list-contacts · https://learn.microsoft.com/graph/api/contact-delta

use serde::{Deserialize, Serialize};

use super::mail::EmailAddress;
use crate::error::GraphError;
use crate::transport::{
    seg, BatchRequest, DeltaPage, GraphClient, GraphRequest, ODataPage, Removed,
};

/// Outlook's largest page of contacts and folders.
const PAGE_SIZE: u32 = 100;

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalAddress {
    /// Street.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Country.
    pub country_or_region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
}

/// An Outlook contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Company.
    pub company_name: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Mail addresses.
    pub email_addresses: Option<Vec<EmailAddress>>,
    /// Business phones.
    pub business_phones: Option<Vec<String>>,
    /// Home phones.
    pub home_phones: Option<Vec<String>>,
    /// Mobile.
    pub mobile_phone: Option<String>,
    /// Business address.
    pub business_address: Option<PhysicalAddress>,
    /// Folder.
    pub parent_folder_id: Option<String>,
    /// Change key.
    pub change_key: Option<String>,
    /// Last change.
    pub last_modified_date_time: Option<String>,
    /// Present on delta items for removed contacts (any reason: gone from this folder).
    #[serde(rename = "@removed", skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// A contact folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactFolder {
    /// Id.
    pub id: String,
    /// Name.
    pub display_name: Option<String>,
    /// Parent folder.
    pub parent_folder_id: Option<String>,
    /// Present on folder delta items for removed folders.
    #[serde(rename = "@removed", skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// `/users/{mailbox}/contactFolders[/{folder}]`.
fn folders_path(mailbox: &str, folder: Option<&str>) -> String {
    let top = format!("{}/contactFolders", super::users::path(mailbox));
    match folder {
        None => top,
        Some(f) => format!("{top}/{}", seg(f)),
    }
}

/// `…/contacts` of the default folder (`folder` None) or of a folder.
fn contacts_path(mailbox: &str, folder: Option<&str>) -> String {
    let parent = match folder {
        None => super::users::path(mailbox),
        Some(_) => folders_path(mailbox, folder),
    };
    format!("{parent}/contacts")
}

/// A paged GET in `mailbox`.
fn in_mailbox(mailbox: &str, path: String) -> GraphRequest {
    GraphRequest::get(format!("{path}?$top={PAGE_SIZE}")).mailbox(mailbox)
}

/// The top-level contact folders of a mailbox.
pub fn folders_request(mailbox: &str) -> GraphRequest {
    in_mailbox(mailbox, folders_path(mailbox, None))
}

/// The child folders of a contact folder.
pub fn child_folders_request(mailbox: &str, folder: &str) -> GraphRequest {
    in_mailbox(
        mailbox,
        format!("{}/childFolders", folders_path(mailbox, Some(folder))),
    )
}

/// The contacts of the default folder (`folder` None) or of a folder.
pub fn list_request(mailbox: &str, folder: Option<&str>) -> GraphRequest {
    in_mailbox(mailbox, contacts_path(mailbox, folder))
}

/// The first URL of a contacts delta round for a folder (`None`: the default Contacts folder).
pub fn delta_start(mailbox: &str, folder: Option<&str>) -> String {
    format!("{}/delta", contacts_path(mailbox, folder))
}

/// Deletes a contact of `mailbox` (tests shape the simulated tenant this way;
/// https://learn.microsoft.com/graph/api/contact-delete).
pub fn delete_request(mailbox: &str, id: &str) -> GraphRequest {
    let path = format!("{}/{}", contacts_path(mailbox, None), seg(id));
    GraphRequest::new(reqwest::Method::DELETE, path).mailbox(mailbox)
}

/// Creates a contact in the default folder (`folder` None) or a folder of `mailbox` (tests shape
/// the simulated tenant this way; https://learn.microsoft.com/graph/api/user-post-contacts).
pub fn create_request(
    mailbox: &str,
    folder: Option<&str>,
    body: serde_json::Value,
) -> GraphRequest {
    GraphRequest::with_json(reqwest::Method::POST, contacts_path(mailbox, folder), body)
        .mailbox(mailbox)
}

/// Changes a contact of `mailbox` (https://learn.microsoft.com/graph/api/contact-update).
pub fn update_request(mailbox: &str, id: &str, body: serde_json::Value) -> GraphRequest {
    let path = format!("{}/{}", contacts_path(mailbox, None), seg(id));
    GraphRequest::with_json(reqwest::Method::PATCH, path, body).mailbox(mailbox)
}

/// Creates a contact folder under the default one (https://learn.microsoft.com/graph/api/user-post-contactfolders).
pub fn create_folder_request(mailbox: &str, name: &str) -> GraphRequest {
    GraphRequest::with_json(
        reqwest::Method::POST,
        folders_path(mailbox, None),
        serde_json::json!({ "displayName": name }),
    )
    .mailbox(mailbox)
}

/// One page of a contacts delta round from `link` (a start URL, nextLink or deltaLink).
pub fn delta_request(mailbox: &str, link: &str) -> GraphRequest {
    GraphRequest::get(link)
        .mailbox(mailbox)
        .max_page_size(PAGE_SIZE)
}

impl GraphClient {
    /// Contact folders of a mailbox (top level).
    pub async fn contact_folders(&self, mailbox: &str) -> Result<Vec<ContactFolder>, GraphError> {
        self.get_all(folders_request(mailbox)).await
    }

    /// Child folders of a contact folder.
    pub async fn contact_child_folders(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Vec<ContactFolder>, GraphError> {
        self.get_all(child_folders_request(mailbox, folder)).await
    }

    /// Contacts of the default folder (`folder` None) or of a folder.
    pub async fn contacts(
        &self,
        mailbox: &str,
        folder: Option<&str>,
    ) -> Result<Vec<Contact>, GraphError> {
        self.get_all(list_request(mailbox, folder)).await
    }

    /// The first URL of a contacts delta round for a folder (`None`: the default Contacts folder).
    pub fn contacts_delta_start(&self, mailbox: &str, folder: Option<&str>) -> String {
        delta_start(mailbox, folder)
    }

    /// One page of a contacts delta round; removed contacts carry `removed`.
    pub async fn contacts_delta_page(
        &self,
        mailbox: &str,
        link: &str,
    ) -> Result<DeltaPage<Contact>, GraphError> {
        self.delta_page(delta_request(mailbox, link)).await
    }
}

/// A `$batch` GET of `url` in `mailbox` (paged at most [`PAGE_SIZE`] items).
fn batch_get(client: &GraphClient, id: usize, url: &str) -> BatchRequest {
    let mut r = BatchRequest::get(id.to_string(), client.batch_url(url));
    r.headers
        .insert("Prefer".into(), format!("odata.maxpagesize={PAGE_SIZE}"));
    r
}

/// A page as a `$batch` answer gives it, or the sub-request's error.
fn batch_page<T: serde::de::DeserializeOwned>(
    r: &crate::transport::BatchResponse,
    url: &str,
) -> Result<ODataPage<T>, GraphError> {
    if let Some(e) = r.error(url) {
        return Err(e);
    }
    let body = r.body.clone().unwrap_or_default();
    serde_json::from_value(body).map_err(|e| GraphError::BadResponse(e.to_string()))
}

/// Whether a mailbox's contacts can be synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactMailboxCheck {
    /// It exists and its contacts can be read.
    Ready,
    /// No user or shared mailbox has this address.
    NoSuchUser,
    /// The user has no Exchange Online mailbox.
    NoMailbox,
    /// Microsoft refused to read it (an application access policy, a missing permission): why.
    Refused(String),
}

#[derive(Deserialize)]
struct MailboxUser {}

impl GraphClient {
    /// Checks that `mailbox` exists and that its contacts can be read: the user, then one page
    /// of its contact folders (https://learn.microsoft.com/graph/api/user-list-contactfolders).
    pub async fn check_contact_mailbox(
        &self,
        mailbox: &str,
    ) -> Result<ContactMailboxCheck, GraphError> {
        let url = format!("{}?$select=id", super::users::path(mailbox));
        match self.get_json::<MailboxUser>(&url).await {
            Ok(_) => {}
            Err(GraphError::NotFound { .. }) => return Ok(ContactMailboxCheck::NoSuchUser),
            Err(e) => return Err(e),
        }
        match self
            .get_page::<ContactFolder>(folders_request(mailbox))
            .await
        {
            Ok(_) => Ok(ContactMailboxCheck::Ready),
            Err(GraphError::NotFound { .. }) => Ok(ContactMailboxCheck::NoMailbox),
            Err(
                e @ (GraphError::MailboxAccessBlocked { .. }
                | GraphError::ConsentMissing { .. }
                | GraphError::PermissionMissing { .. }),
            ) => Ok(ContactMailboxCheck::Refused(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// One page of the contacts delta round of each `(mailbox, link)`, read as `$batch`
    /// sub-requests (20 per call; throttled ones are sent again after their `Retry-After`).
    /// A failed sub-request (403 for a mailbox an access policy blocks, 404 for a user without
    /// a mailbox, 410 for an expired link) is that read's error; a failed batch fails them all.
    pub async fn contacts_delta_batch(
        &self,
        reads: &[(String, String)],
    ) -> Result<Vec<Result<DeltaPage<Contact>, GraphError>>, GraphError> {
        let requests = reads
            .iter()
            .enumerate()
            .map(|(i, (_, link))| batch_get(self, i, link))
            .collect();
        let answers = self.batch(requests).await?;
        Ok(answers
            .iter()
            .zip(reads)
            .map(|(r, (_, link))| batch_page::<Contact>(r, link)?.into_delta())
            .collect())
    }

    /// The folders under each `(mailbox, folder)` (`None`: the top-level folders, which are the
    /// default Contacts folder's children), read as `$batch` sub-requests; further pages of a
    /// listing (over 100 folders) are followed one by one.
    pub async fn contact_folders_batch(
        &self,
        parents: &[(String, Option<String>)],
    ) -> Result<Vec<Result<Vec<ContactFolder>, GraphError>>, GraphError> {
        let requests = parents
            .iter()
            .enumerate()
            .map(|(i, (mailbox, folder))| {
                let req = match folder {
                    None => folders_request(mailbox),
                    Some(f) => child_folders_request(mailbox, f),
                };
                batch_get(self, i, &req.url)
            })
            .collect();
        let answers = self.batch(requests).await?;
        let mut out = Vec::with_capacity(parents.len());
        for (r, (mailbox, _)) in answers.iter().zip(parents) {
            let page: Result<ODataPage<ContactFolder>, GraphError> = batch_page(r, mailbox);
            out.push(match page {
                Err(e) => Err(e),
                Ok(page) => {
                    let mut folders = page.value;
                    if let Some(next) = page.next_link {
                        match self.get_all(GraphRequest::get(next).mailbox(mailbox)).await {
                            Ok(more) => folders.extend(more),
                            Err(e) => {
                                out.push(Err(e));
                                continue;
                            }
                        }
                    }
                    Ok(folders)
                }
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_urls_name_the_mailbox_and_folder() {
        assert_eq!(
            list_request("Ann@x.com", None).url,
            "/users/Ann@x.com/contacts?$top=100"
        );
        assert_eq!(
            list_request("Ann@x.com", None).mailbox.as_deref(),
            Some("ann@x.com")
        );
        assert_eq!(
            list_request("a", Some("f 1")).url,
            "/users/a/contactFolders/f%201/contacts?$top=100"
        );
        assert_eq!(
            child_folders_request("a", "f").url,
            "/users/a/contactFolders/f/childFolders?$top=100"
        );
        assert_eq!(folders_request("a").url, "/users/a/contactFolders?$top=100");
        assert_eq!(delta_start("a", None), "/users/a/contacts/delta");
        assert_eq!(
            delta_start("a", Some("f")),
            "/users/a/contactFolders/f/contacts/delta"
        );
    }
}
