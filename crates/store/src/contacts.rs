//! Contact sync's own rows (SPEC §5): synced phonebook entries, each tagged with the mailbox and
//! contact folder it comes from, and one row per synced folder with its delta link, entry count
//! and last read. Only the contact sync writes them, through [`Store::apply_contact_writes`]: one
//! page of writes and the round's cursor in ONE transaction.

use crate::db::{parse_ts, ts};
use crate::phonebook::{kind_str, owner_number};
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};
use pbx365_domain::{PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeSet, HashMap};

/// One synced contact folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactFolderRow {
    /// The mailbox (an extension's Microsoft object id, or a shared mailbox's address).
    pub mailbox: String,
    /// The folder id; `""` is the default Contacts folder.
    pub folder: String,
    /// The phonebook it fills.
    pub owner: PhonebookOwner,
    /// The folder's name (`Contacts` for the default one).
    pub name: String,
    /// Where the next delta round of this folder starts.
    pub delta_link: Option<String>,
    /// Entries it holds (kept by the writes).
    pub entries: u64,
    /// When it was last read to its end.
    pub synced_at: DateTime<Utc>,
}

/// One write of the contact sync (stored with its plan before it is applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactWrite {
    /// Inserts (a new `entry.id`) or replaces (a known one) the entry of a contact of `mailbox`.
    Put {
        /// The mailbox.
        mailbox: String,
        /// The folder it is in now.
        folder: String,
        /// The entry (owner, Microsoft id, pbx365 id chosen by the planner).
        entry: PhonebookEntry,
        /// Whether the entry exists already (an update).
        known: bool,
    },
    /// Removes the entry of a contact gone from `folder` (a contact moved to another folder of
    /// the same mailbox keeps its entry: the removal matches the old folder only).
    Remove {
        /// The mailbox.
        mailbox: String,
        /// The folder it left.
        folder: String,
        /// The contact's Microsoft id.
        m365_id: String,
    },
    /// A folder read to its end: its row with the new delta link.
    Folder(ContactFolderRow),
    /// A folder gone (deleted in Outlook, or its mailbox no longer synced): its entries and row.
    DropFolder {
        /// The mailbox.
        mailbox: String,
        /// The folder.
        folder: String,
    },
}

/// A synced mailbox as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactMailboxStatus {
    /// The mailbox.
    pub mailbox: String,
    /// The extension whose personal phonebook it fills (`None`: the company phonebook).
    pub owner_number: Option<String>,
    /// Entries it holds.
    pub entries: u64,
    /// Its folders.
    pub folders: u64,
    /// When a folder of it was last read.
    pub last_sync: Option<DateTime<Utc>>,
}

fn owner_of(n: Option<String>) -> PhonebookOwner {
    n.map_or(PhonebookOwner::Company, PhonebookOwner::Personal)
}

fn parse_kind(s: &str) -> PhoneKind {
    match s {
        "business" => PhoneKind::Business,
        "mobile" => PhoneKind::Mobile,
        "home" => PhoneKind::Home,
        _ => PhoneKind::Other,
    }
}

/// `$first, $first+1, …` for an IN list of `n` values.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per statement when a list of ids is bound (well under both engines' limits).
const CHUNK: usize = 500;

const FOLDER_COLS: &str = "mailbox, folder, owner_number, name, delta_link, entries, synced_at";

fn folder_row(r: &sqlx::any::AnyRow) -> StoreResult<ContactFolderRow> {
    Ok(ContactFolderRow {
        mailbox: r.try_get("mailbox")?,
        folder: r.try_get("folder")?,
        owner: owner_of(r.try_get("owner_number")?),
        name: r.try_get("name")?,
        delta_link: r.try_get("delta_link")?,
        entries: r.try_get::<i64, _>("entries")?.max(0) as u64,
        synced_at: parse_ts(&r.try_get::<String, _>("synced_at")?)?,
    })
}

async fn put_entry(
    conn: &mut AnyConnection,
    mailbox: &str,
    folder: &str,
    e: &PhonebookEntry,
    known: bool,
) -> StoreResult<()> {
    let emails = serde_json::to_string(&e.emails).unwrap_or_else(|_| "[]".into());
    // A known entry removed earlier in the same round (a contact moved between folders) is
    // inserted again under its id.
    let updated = known
        && sqlx::query(
            "UPDATE phonebook_entries SET display_name = $2, first_name = $3, last_name = $4, \
             company = $5, emails = $6, job_title = $7, folder = $8 WHERE id = $1",
        )
        .bind(e.id.as_str())
        .bind(e.display_name.as_str())
        .bind(e.first_name.as_str())
        .bind(e.last_name.as_str())
        .bind(e.company.as_deref())
        .bind(emails.clone())
        .bind(e.job_title.as_deref())
        .bind(folder)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0;
    if updated {
        sqlx::query("DELETE FROM phonebook_numbers WHERE entry_id = $1")
            .bind(e.id.as_str())
            .execute(&mut *conn)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO phonebook_entries (id, owner_number, m365_id, display_name, first_name, \
             last_name, company, emails, job_title, mailbox, folder) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(e.id.as_str())
        .bind(owner_number(&e.owner))
        .bind(e.m365_id.as_deref())
        .bind(e.display_name.as_str())
        .bind(e.first_name.as_str())
        .bind(e.last_name.as_str())
        .bind(e.company.as_deref())
        .bind(emails)
        .bind(e.job_title.as_deref())
        .bind(mailbox)
        .bind(folder)
        .execute(&mut *conn)
        .await?;
    }
    if e.numbers.is_empty() {
        return Ok(());
    }
    // All numbers of the entry in one statement; `book` beside each number is what the
    // caller-name lookup reads by index (migration 0011).
    let values = (0..e.numbers.len())
        .map(|i| {
            let p: Vec<String> = (1..=6).map(|k| format!("${}", i * 6 + k)).collect();
            format!("({})", p.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO phonebook_numbers (entry_id, pos, kind, raw, e164, book) VALUES {values}"
    );
    let book = owner_number(&e.owner).unwrap_or_default();
    let mut q = sqlx::query(&sql);
    for (pos, n) in e.numbers.iter().enumerate() {
        q = q
            .bind(e.id.as_str())
            .bind(pos as i64)
            .bind(kind_str(n.kind))
            .bind(n.raw.as_str())
            .bind(n.e164.as_deref())
            .bind(book);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Deletes synced entries matching `cond` (over `phonebook_entries`, binding `binds`).
async fn delete_where(conn: &mut AnyConnection, cond: &str, binds: &[&str]) -> StoreResult<()> {
    for sql in [
        format!("DELETE FROM phonebook_numbers WHERE entry_id IN (SELECT id FROM phonebook_entries WHERE {cond})"),
        format!("DELETE FROM phonebook_entries WHERE {cond}"),
    ] {
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// Contact sync: one page of writes and the round's cursor `(key, value)` in ONE transaction;
    /// the entry counts of the folders it touches are brought up to date in it.
    pub async fn apply_contact_writes(
        &self,
        writes: &[ContactWrite],
        cursor: (&str, &str),
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
        for w in writes {
            match w {
                ContactWrite::Put {
                    mailbox,
                    folder,
                    entry,
                    known,
                } => {
                    if let PhonebookOwner::Personal(n) = &entry.owner {
                        // The extension may have been deleted since the plan: nothing to fill.
                        if !crate::extensions::exists_in(&mut tx, n).await? {
                            continue;
                        }
                    }
                    put_entry(&mut tx, mailbox, folder, entry, *known).await?;
                    touched.insert((mailbox.clone(), folder.clone()));
                }
                ContactWrite::Remove {
                    mailbox,
                    folder,
                    m365_id,
                } => {
                    delete_where(
                        &mut tx,
                        "mailbox = $1 AND folder = $2 AND m365_id = $3",
                        &[mailbox, folder, m365_id],
                    )
                    .await?;
                    touched.insert((mailbox.clone(), folder.clone()));
                }
                ContactWrite::Folder(row) => {
                    if let PhonebookOwner::Personal(n) = &row.owner {
                        if !crate::extensions::exists_in(&mut tx, n).await? {
                            continue;
                        }
                    }
                    sqlx::query(&format!(
                        "INSERT INTO contact_folders ({FOLDER_COLS}) VALUES ($1, $2, $3, $4, $5, 0, $6) \
                         ON CONFLICT (mailbox, folder) DO UPDATE SET owner_number = excluded.owner_number, \
                         name = excluded.name, delta_link = excluded.delta_link, synced_at = excluded.synced_at"
                    ))
                    .bind(row.mailbox.as_str())
                    .bind(row.folder.as_str())
                    .bind(owner_number(&row.owner))
                    .bind(row.name.as_str())
                    .bind(row.delta_link.as_deref())
                    .bind(ts(row.synced_at))
                    .execute(&mut *tx)
                    .await?;
                    touched.insert((row.mailbox.clone(), row.folder.clone()));
                }
                ContactWrite::DropFolder { mailbox, folder } => {
                    delete_where(&mut tx, "mailbox = $1 AND folder = $2", &[mailbox, folder])
                        .await?;
                    sqlx::query("DELETE FROM contact_folders WHERE mailbox = $1 AND folder = $2")
                        .bind(mailbox.as_str())
                        .bind(folder.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        for (mailbox, folder) in &touched {
            sqlx::query(
                "UPDATE contact_folders SET entries = (SELECT COUNT(*) FROM phonebook_entries e \
                 WHERE e.mailbox = $1 AND e.folder = $2) WHERE mailbox = $1 AND folder = $2",
            )
            .bind(mailbox.as_str())
            .bind(folder.as_str())
            .execute(&mut *tx)
            .await?;
        }
        crate::kv::set_in(&mut tx, cursor.0, cursor.1).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every synced contact folder, by mailbox and folder.
    pub async fn contact_folders(&self) -> StoreResult<Vec<ContactFolderRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {FOLDER_COLS} FROM contact_folders ORDER BY mailbox, folder"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(folder_row).collect()
    }

    /// The synced folders of these mailboxes.
    pub async fn contact_folders_of(
        &self,
        mailboxes: &[String],
    ) -> StoreResult<Vec<ContactFolderRow>> {
        let mut out = Vec::new();
        for chunk in mailboxes.chunks(CHUNK) {
            let sql = format!(
                "SELECT {FOLDER_COLS} FROM contact_folders WHERE mailbox IN ({}) ORDER BY mailbox, folder",
                params(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(m.as_str());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(folder_row(&r)?);
            }
        }
        Ok(out)
    }

    /// The synced entries of `mailbox` with these Microsoft ids (all of them when `None`), each
    /// with its folder.
    pub async fn synced_contact_entries(
        &self,
        mailbox: &str,
        m365_ids: Option<&[String]>,
    ) -> StoreResult<Vec<(String, PhonebookEntry)>> {
        let all = [String::new()];
        let (ids, filter) = match m365_ids {
            Some(ids) => (ids, true),
            None => (&all[..], false),
        };
        let mut out = Vec::new();
        let mut conn = self.pool.acquire().await?;
        for chunk in ids.chunks(CHUNK) {
            if filter && chunk.is_empty() {
                continue;
            }
            let cond = if filter {
                format!(
                    "e.mailbox = $1 AND e.m365_id IN ({})",
                    params(2, chunk.len())
                )
            } else {
                "e.mailbox = $1".to_string()
            };
            fn bind<'q>(
                sql: &'q str,
                mailbox: &str,
                ids: Option<&[String]>,
            ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
                let mut q = sqlx::query(sql).bind(mailbox.to_string());
                for id in ids.unwrap_or_default() {
                    q = q.bind(id.clone());
                }
                q
            }
            let ids = filter.then_some(chunk);
            let sql = format!(
                "SELECT e.id, e.owner_number, e.m365_id, e.display_name, e.first_name, e.last_name, \
                 e.company, e.emails, e.job_title, e.mailbox, e.folder FROM phonebook_entries e WHERE {cond}"
            );
            let rows = bind(&sql, mailbox, ids).fetch_all(&mut *conn).await?;
            let sql = format!(
                "SELECT n.entry_id, n.kind, n.raw, n.e164 FROM phonebook_numbers n \
                 JOIN phonebook_entries e ON e.id = n.entry_id WHERE {cond} ORDER BY n.entry_id, n.pos"
            );
            let mut numbers: HashMap<String, Vec<PhoneNumber>> = HashMap::new();
            for r in bind(&sql, mailbox, ids).fetch_all(&mut *conn).await? {
                numbers
                    .entry(r.try_get("entry_id")?)
                    .or_default()
                    .push(PhoneNumber {
                        kind: parse_kind(&r.try_get::<String, _>("kind")?),
                        raw: r.try_get("raw")?,
                        e164: r.try_get("e164")?,
                    });
            }
            for r in rows {
                let id: String = r.try_get("id")?;
                let emails: String = r.try_get("emails")?;
                let numbers = numbers.remove(&id).unwrap_or_default();
                let folder: Option<String> = r.try_get("folder")?;
                out.push((
                    folder.unwrap_or_default(),
                    PhonebookEntry {
                        owner: owner_of(r.try_get("owner_number")?),
                        m365_id: r.try_get("m365_id")?,
                        display_name: r.try_get("display_name")?,
                        first_name: r.try_get("first_name")?,
                        last_name: r.try_get("last_name")?,
                        company: r.try_get("company")?,
                        emails: serde_json::from_str(&emails).unwrap_or_default(),
                        no_number: numbers.is_empty(),
                        numbers,
                        job_title: r.try_get("job_title")?,
                        mailbox: r.try_get("mailbox")?,
                        id,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// The Microsoft ids of the synced entries of one folder.
    pub async fn synced_contact_ids(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT m365_id FROM phonebook_entries WHERE mailbox = $1 AND folder = $2 AND m365_id IS NOT NULL",
        )
        .bind(mailbox)
        .bind(folder)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Synced entries in every phonebook (the mass-deletion guard's base), from the folder rows.
    pub async fn synced_contact_total(&self) -> StoreResult<u64> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT CAST(SUM(entries) AS BIGINT) FROM contact_folders")
                .fetch_one(&self.pool)
                .await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Every synced mailbox: entries, folders, last read.
    pub async fn contact_mailboxes(&self) -> StoreResult<Vec<ContactMailboxStatus>> {
        let rows = sqlx::query(
            "SELECT mailbox, MIN(owner_number) AS owner_number, CAST(SUM(entries) AS BIGINT) AS entries, \
             COUNT(*) AS folders, MAX(synced_at) AS last_sync FROM contact_folders \
             GROUP BY mailbox ORDER BY mailbox",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let last: Option<String> = r.try_get("last_sync")?;
                Ok(ContactMailboxStatus {
                    mailbox: r.try_get("mailbox")?,
                    owner_number: r.try_get("owner_number")?,
                    entries: r.try_get::<i64, _>("entries")?.max(0) as u64,
                    folders: r.try_get::<i64, _>("folders")?.max(0) as u64,
                    last_sync: last.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    /// Enabled synced extensions after `after` by Microsoft object id: (object id, number), at
    /// most `limit` (the personal phonebooks a contact sync round fills, read a stretch at a time).
    pub async fn contact_sync_extensions(
        &self,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT m365_id, number FROM extensions WHERE source = 'm365' AND enabled = 1 \
             AND m365_id IS NOT NULL AND m365_id > $1 ORDER BY m365_id LIMIT $2",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("m365_id")?, r.try_get("number")?)))
            .collect()
    }
}
