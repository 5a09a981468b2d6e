//! Reading a stretch of mailboxes: their folder trees (where needed) and one contact delta round
//! per folder, all as `$batch` sub-requests — 20 per batch, at most 4 of one mailbox in a batch
//! and each mailbox in one batch at a time (Outlook's 4 concurrent requests per mailbox), several
//! batches in flight. Throttled sub-requests are sent again after their `Retry-After` by the
//! transport. A mailbox that fails (403 access policy, 404 no mailbox, anything after the
//! retries) is reported by name and nothing of it is planned; an expired folder link (410) reads
//! that folder again from the start.
//!
//! https://learn.microsoft.com/graph/json-batching · https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits

use futures::stream::{self, StreamExt};
use pbx365_domain::PhonebookOwner;
use pbx365_graph::{contacts, Contact, GraphClient, GraphError, NextOrDelta, BATCH_LIMIT};
use pbx365_store::{ContactFolderRow, Store};
use std::collections::{HashMap, HashSet};

use super::{ContactChange, ContactItem};
use crate::error::SyncResult;

/// Sub-requests of one mailbox in one batch (Outlook's concurrency per mailbox).
const PER_MAILBOX: usize = 4;

/// Batches in flight at once.
const BATCHES_IN_FLIGHT: usize = 8;

/// The name of the default Contacts folder.
pub const DEFAULT_FOLDER_NAME: &str = "Contacts";

/// Whether a polled delta round in time slot `slot` (hours since the epoch) reads the folder
/// tree of `mailbox` again: each mailbox once in `every` consecutive slots, spread evenly, so
/// an hourly poll finds a new child folder within `every` hours at `1/every` of the cost of
/// reading every tree (the benchmark's no-change round stays under 0.1 requests per user).
pub fn tree_due(mailbox: &str, slot: i64, every: u32) -> bool {
    if every <= 1 {
        return true;
    }
    // FNV-1a: stable across runs and instances (unlike the std hasher's keys).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in mailbox.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.wrapping_add(slot as u64).is_multiple_of(u64::from(every))
}

/// A mailbox a round reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Its place in the round's order (`s:{address}` for shared mailboxes, `u:{object id}`).
    pub key: String,
    /// What Graph calls it: the address or the user's object id.
    pub address: String,
    /// The phonebook it fills.
    pub owner: PhonebookOwner,
    /// Only the default Contacts folder is read (shared mailboxes).
    pub default_only: bool,
}

/// One folder's read.
struct Read {
    mailbox: usize,
    folder: String,
    name: String,
    link: String,
    /// Read from the start (no stored link, or it expired): entries of the folder that the read
    /// does not return are gone.
    scratch: bool,
    items: Vec<Contact>,
    delta: Option<String>,
}

/// Packs the pending work of one wave into batches: at most [`BATCH_LIMIT`] per batch, at most
/// [`PER_MAILBOX`] of one mailbox, each mailbox in one batch only. Returns the batches (indices
/// into `mailboxes`) and what waits for the next wave.
fn pack(mailboxes: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut by_mailbox: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    for (i, m) in mailboxes.iter().enumerate() {
        let slot = *at.entry(*m).or_insert_with(|| {
            by_mailbox.push((*m, Vec::new()));
            by_mailbox.len() - 1
        });
        by_mailbox[slot].1.push(i);
    }
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut later = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for (_, mut work) in by_mailbox {
        let rest = work.split_off(work.len().min(PER_MAILBOX));
        later.extend(rest);
        if current.len() + work.len() > BATCH_LIMIT {
            batches.push(std::mem::take(&mut current));
        }
        current.extend(work);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, later)
}

/// One batch's requests and its answers.
type BatchAnswer<T> = (Vec<usize>, Result<Vec<T>, GraphError>);

/// Runs `f` over the packed batches of `owners` (one mailbox index per request) concurrently,
/// wave after wave until every request had its turn; returns the answer of each request.
async fn in_waves<T, F, Fut>(owners: &[usize], f: F) -> SyncResult<Vec<T>>
where
    F: Fn(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, GraphError>>,
{
    let mut out: Vec<Option<T>> = (0..owners.len()).map(|_| None).collect();
    let mut pending: Vec<usize> = (0..owners.len()).collect();
    while !pending.is_empty() {
        let of: Vec<usize> = pending.iter().map(|i| owners[*i]).collect();
        let (batches, later) = pack(&of);
        let batches: Vec<Vec<usize>> = batches
            .into_iter()
            .map(|b| b.into_iter().map(|k| pending[k]).collect())
            .collect();
        let answers: Vec<BatchAnswer<T>> = stream::iter(batches)
            .map(|b| {
                let fut = f(b.clone());
                async move { (b, fut.await) }
            })
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .collect()
            .await;
        for (batch, answer) in answers {
            for (i, a) in batch.into_iter().zip(answer?) {
                out[i] = Some(a);
            }
        }
        pending = later.into_iter().map(|k| pending[k]).collect();
    }
    Ok(out.into_iter().flatten().collect())
}

/// Reads the contact folder trees of these mailboxes (indices into `mailboxes`): each mailbox's
/// folders (id, name) below the default one, or its error.
async fn discover(
    graph: &GraphClient,
    mailboxes: &[Mailbox],
    which: &[usize],
) -> SyncResult<HashMap<usize, Result<Vec<(String, String)>, GraphError>>> {
    let mut found: HashMap<usize, Result<Vec<(String, String)>, GraphError>> =
        which.iter().map(|m| (*m, Ok(Vec::new()))).collect();
    // Level by level: the top-level folders, then the children of what each level found.
    let mut parents: Vec<(usize, Option<String>)> = which.iter().map(|m| (*m, None)).collect();
    while !parents.is_empty() {
        let owners: Vec<usize> = parents.iter().map(|p| p.0).collect();
        let asks: Vec<(String, Option<String>)> = parents
            .iter()
            .map(|(m, f)| (mailboxes[*m].address.clone(), f.clone()))
            .collect();
        let answers = in_waves(&owners, |batch| {
            let part: Vec<(String, Option<String>)> =
                batch.iter().map(|i| asks[*i].clone()).collect();
            async move { graph.contact_folders_batch(&part).await }
        })
        .await?;
        let mut next = Vec::new();
        for ((m, _), answer) in parents.iter().zip(answers) {
            let Some(Ok(list)) = found.get_mut(m) else {
                continue;
            };
            match answer {
                Ok(children) => {
                    for c in children {
                        let name = c.display_name.clone().unwrap_or_else(|| c.id.clone());
                        next.push((*m, Some(c.id.clone())));
                        list.push((c.id, name));
                    }
                }
                Err(e) => {
                    found.insert(*m, Err(e));
                }
            }
        }
        parents = next;
    }
    Ok(found)
}

/// Reads one stretch of mailboxes and returns its items in mailbox order: per folder its
/// changes then its end (with the new delta link); gone folders; failed mailboxes.
/// `full`: every folder from the start and every folder tree read again; else stored links.
/// `tree_due`: in a delta round, whether a known mailbox's folder tree is read again too (so
/// child folders created since come in): every one in a round for the mailboxes change
/// notifications named, a rotating share of them in a polled round ([`tree_due`]).
pub async fn read_mailboxes(
    graph: &GraphClient,
    store: &Store,
    mailboxes: &[Mailbox],
    full: bool,
    tree_due: impl Fn(&str) -> bool,
) -> SyncResult<Vec<ContactItem>> {
    let addresses: Vec<String> = mailboxes.iter().map(|m| m.address.clone()).collect();
    let mut known: HashMap<String, Vec<ContactFolderRow>> = HashMap::new();
    for row in store.contact_folders_of(&addresses).await? {
        known.entry(row.mailbox.clone()).or_default().push(row);
    }
    // Which folders each mailbox has: the default one, plus its tree when it is read.
    let explore: Vec<usize> = (0..mailboxes.len())
        .filter(|i| {
            let m = &mailboxes[*i];
            !m.default_only && (full || !known.contains_key(&m.address) || tree_due(&m.address))
        })
        .collect();
    let mut trees = discover(graph, mailboxes, &explore).await?;
    let mut failed: HashMap<usize, String> = HashMap::new();
    let mut gone: Vec<(usize, String)> = Vec::new();
    let mut reads: Vec<Read> = Vec::new();
    for (i, m) in mailboxes.iter().enumerate() {
        let rows = known.get(&m.address).map(Vec::as_slice).unwrap_or_default();
        let link_of = |folder: &str| {
            rows.iter()
                .find(|r| r.folder == folder)
                .and_then(|r| r.delta_link.clone())
                .filter(|_| !full)
        };
        let mut folders = vec![(String::new(), DEFAULT_FOLDER_NAME.to_string())];
        match trees.remove(&i) {
            Some(Err(e)) => {
                failed.insert(i, e.to_string());
                continue;
            }
            Some(Ok(tree)) => {
                let listed: HashSet<&str> = tree.iter().map(|(id, _)| id.as_str()).collect();
                for r in rows {
                    if !r.folder.is_empty() && !listed.contains(r.folder.as_str()) {
                        gone.push((i, r.folder.clone()));
                    }
                }
                folders.extend(tree);
            }
            None if m.default_only => {
                // A shared mailbox read before with child folders (not possible today) keeps them out.
                for r in rows.iter().filter(|r| !r.folder.is_empty()) {
                    gone.push((i, r.folder.clone()));
                }
            }
            None => folders.extend(
                rows.iter()
                    .filter(|r| !r.folder.is_empty())
                    .map(|r| (r.folder.clone(), r.name.clone())),
            ),
        }
        for (folder, name) in folders {
            let stored = link_of(&folder);
            let start = || {
                contacts::delta_start(&m.address, (!folder.is_empty()).then_some(folder.as_str()))
            };
            reads.push(Read {
                mailbox: i,
                scratch: stored.is_none(),
                link: stored.unwrap_or_else(start),
                folder,
                name,
                items: Vec::new(),
                delta: None,
            });
        }
    }

    // Every folder's delta round, page after page, in waves of batches.
    let mut pending: Vec<usize> = (0..reads.len()).collect();
    while !pending.is_empty() {
        let owners: Vec<usize> = pending.iter().map(|r| reads[*r].mailbox).collect();
        let asks: Vec<(String, String)> = pending
            .iter()
            .map(|r| {
                let read = &reads[*r];
                (mailboxes[read.mailbox].address.clone(), read.link.clone())
            })
            .collect();
        let answers = in_waves(&owners, |batch| {
            let part: Vec<(String, String)> = batch.iter().map(|i| asks[*i].clone()).collect();
            async move { graph.contacts_delta_batch(&part).await }
        })
        .await?;
        let mut next = Vec::new();
        for (r, answer) in pending.iter().zip(answers) {
            let read = &mut reads[*r];
            if failed.contains_key(&read.mailbox) {
                continue;
            }
            match answer {
                Ok(page) => {
                    read.items.extend(page.items);
                    match page.next {
                        NextOrDelta::Next(l) => {
                            read.link = l;
                            next.push(*r);
                        }
                        NextOrDelta::Delta(d) => read.delta = Some(d),
                    }
                }
                Err(GraphError::DeltaExpired { .. }) if !read.scratch => {
                    // The folder's link expired: read it again from the start.
                    let m = &mailboxes[read.mailbox];
                    let folder = (!read.folder.is_empty()).then_some(read.folder.as_str());
                    read.link = contacts::delta_start(&m.address, folder);
                    read.scratch = true;
                    read.items.clear();
                    next.push(*r);
                }
                Err(e) => {
                    failed.insert(read.mailbox, e.to_string());
                }
            }
        }
        pending = next
            .into_iter()
            .filter(|r| !failed.contains_key(&reads[*r].mailbox))
            .collect();
    }

    // The items, mailbox by mailbox: a folder's changes, then its end.
    let now = chrono::Utc::now();
    let mut by_mailbox: HashMap<usize, Vec<Read>> = HashMap::new();
    for read in reads {
        by_mailbox.entry(read.mailbox).or_default().push(read);
    }
    let mut items = Vec::new();
    for (i, m) in mailboxes.iter().enumerate() {
        if let Some(reason) = failed.get(&i) {
            items.push(ContactItem::new(ContactChange::MailboxFailed {
                mailbox: m.address.clone(),
                owner: m.owner.clone(),
                reason: reason.clone(),
            }));
            continue;
        }
        for read in by_mailbox.remove(&i).unwrap_or_default() {
            for contact in read.items {
                items.push(ContactItem::new(ContactChange::Contact {
                    mailbox: m.address.clone(),
                    folder: read.folder.clone(),
                    owner: m.owner.clone(),
                    contact: Box::new(contact),
                }));
            }
            items.push(ContactItem::new(ContactChange::FolderEnd {
                row: ContactFolderRow {
                    mailbox: m.address.clone(),
                    folder: read.folder,
                    owner: m.owner.clone(),
                    name: read.name,
                    delta_link: read.delta,
                    entries: 0,
                    synced_at: now,
                },
                scratch: read.scratch,
            }));
        }
        for (_, folder) in gone.iter().filter(|(g, _)| *g == i) {
            items.push(ContactItem::new(ContactChange::FolderGone {
                mailbox: m.address.clone(),
                folder: folder.clone(),
            }));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mailbox_tree_is_read_once_in_every_run_of_slots() {
        let boxes: Vec<String> = (0..1000).map(|i| format!("mailbox-{i}")).collect();
        for start in [0i64, 7, 493_001] {
            let mut per_slot = Vec::new();
            for b in &boxes {
                let due: Vec<i64> = (start..start + 4).filter(|s| tree_due(b, *s, 4)).collect();
                assert_eq!(due.len(), 1, "{b} is due once in four slots");
            }
            for s in start..start + 4 {
                per_slot.push(boxes.iter().filter(|b| tree_due(b, s, 4)).count());
            }
            assert!(
                per_slot.iter().all(|n| (200..300).contains(n)),
                "{per_slot:?}"
            );
        }
        assert!(boxes.iter().all(|b| tree_due(b, 3, 1)));
    }

    #[test]
    fn batches_hold_twenty_and_at_most_four_of_a_mailbox() {
        // Mailbox 0 has 6 reads, 1..=10 two each.
        let mut owners = vec![0; 6];
        for m in 1..=10 {
            owners.extend([m, m]);
        }
        let (batches, later) = pack(&owners);
        assert_eq!(later.len(), 2, "two of mailbox 0 wait for the next wave");
        assert!(batches.iter().all(|b| b.len() <= BATCH_LIMIT));
        for b in &batches {
            let zero = b.iter().filter(|i| owners[**i] == 0).count();
            assert!(zero <= PER_MAILBOX);
        }
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.extend(&later);
        seen.sort();
        assert_eq!(seen, (0..owners.len()).collect::<Vec<_>>());
        // Each mailbox in one batch of the wave.
        for m in 0..=10 {
            let holding = batches
                .iter()
                .filter(|b| b.iter().any(|i| owners[*i] == m))
                .count();
            assert_eq!(holding, 1);
        }
    }
}
