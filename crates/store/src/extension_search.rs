//! Finding a few extensions without reading the table: the SSO page's extension picker
//! (issue 15) searches by the start of a number or a name, and shows the chosen numbers.

use crate::db::in_list;
use crate::extensions::{fetch_with_groups, select_cols, IN_CHUNK, ORDER_BY_NUMBER};
use crate::{Store, StoreResult};
use pbx365_domain::Extension;

/// The longest extension number a number search looks for (digits).
const MAX_NUMBER_DIGITS: usize = 20;

/// The name columns whose start a name search matches.
const NAME_COLUMNS: [&str; 3] = ["first_name", "last_name", "display_name"];

/// Only extensions the user sync owns (the same test as the maintained counts).
const SYNCED: &str = "source = 'm365' AND m365_id IS NOT NULL";

/// `text` as the start of a `LIKE` pattern: `%`, `_` and the escape character match themselves.
fn like_prefix(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// `text` lower-cased with its first letter upper-cased ("жан" -> "Жан"), the way names are
/// written: SQLite's `LOWER` and `LIKE` fold only ASCII, so this form is what lets a lower-case
/// query find "Жанна" there too.
fn capitalized(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => lower,
    }
}

impl Store {
    /// Up to `limit` synced extensions, ordered by number, whose number starts with `text` (when
    /// it is all digits) or whose first, last or display name starts with it. Names match
    /// regardless of case for ASCII on both databases. Beyond ASCII (SQLite's `LOWER` folds
    /// only ASCII, PostgreSQL's as far as the database's locale does) a query typed in any case
    /// matches a name written with a capital first letter and the rest in lower case ("Åsa",
    /// "Жанна"), as names are; other spellings ("ÅSA" stored) only where the database folds.
    ///
    /// A number prefix is read as ranges of an index (one per digit count: digit strings of one
    /// length sort the same under every collation). A name is a filter over the synced rows
    /// that stops at `limit` matches: no more than `limit` rows leave the database, but a name
    /// nobody has is checked against every synced row (about 20 ms for 10,000 in a debug
    /// build); a prefix index on folded names would need a column of its own.
    pub async fn search_synced_extensions(
        &self,
        text: &str,
        limit: u32,
    ) -> StoreResult<Vec<Extension>> {
        let text = text.trim();
        if text.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        if text.bytes().all(|b| b.is_ascii_digit()) {
            if text.len() > MAX_NUMBER_DIGITS {
                return Ok(Vec::new());
            }
            let ranges: Vec<String> = (text.len()..=MAX_NUMBER_DIGITS)
                .map(|len| {
                    let i = 3 * (len - text.len()) + 1;
                    format!(
                        "(LENGTH(number) = ${i} AND number >= ${} AND number <= ${})",
                        i + 1,
                        i + 2
                    )
                })
                .collect();
            let sql = format!(
                "SELECT {} FROM extensions WHERE {SYNCED} AND ({}) {ORDER_BY_NUMBER} LIMIT {limit}",
                select_cols(),
                ranges.join(" OR ")
            );
            let mut q = sqlx::query(&sql);
            for len in text.len()..=MAX_NUMBER_DIGITS {
                let pad = len - text.len();
                q = q
                    .bind(len as i64)
                    .bind(format!("{text}{}", "0".repeat(pad)))
                    .bind(format!("{text}{}", "9".repeat(pad)));
            }
            return fetch_with_groups(&mut conn, q).await;
        }
        let matches: Vec<String> = NAME_COLUMNS
            .iter()
            .flat_map(|c| {
                [
                    format!("LOWER({c}) LIKE $1 ESCAPE '\\'"),
                    format!("{c} LIKE $2 ESCAPE '\\'"),
                ]
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM extensions WHERE {SYNCED} AND ({}) {ORDER_BY_NUMBER} LIMIT {limit}",
            select_cols(),
            matches.join(" OR ")
        );
        let q = sqlx::query(&sql)
            .bind(like_prefix(&text.to_lowercase()))
            .bind(like_prefix(&capitalized(text)));
        fetch_with_groups(&mut conn, q).await
    }

    /// The first `limit` synced extensions by number (a small office's whole list).
    pub async fn list_synced_extensions(&self, limit: u32) -> StoreResult<Vec<Extension>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {} FROM extensions WHERE {SYNCED} {ORDER_BY_NUMBER} LIMIT {limit}",
            select_cols()
        );
        fetch_with_groups(&mut conn, sqlx::query(&sql)).await
    }

    /// The extensions with these numbers (those that exist), ordered by number: primary-key
    /// lookups, for a page that shows a chosen few.
    pub async fn extensions_by_numbers(&self, numbers: &[String]) -> StoreResult<Vec<Extension>> {
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for part in numbers.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT {} FROM extensions WHERE number IN ({}) {ORDER_BY_NUMBER}",
                select_cols(),
                in_list(part.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for n in part {
                q = q.bind(n.as_str());
            }
            out.extend(fetch_with_groups(&mut conn, q).await?);
        }
        out.sort_by(|a, b| {
            (a.number.as_str().len(), a.number.as_str())
                .cmp(&(b.number.as_str().len(), b.number.as_str()))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_query_match_only_themselves() {
        assert_eq!(like_prefix("50%_a\\b"), "50\\%\\_a\\\\b%");
    }

    #[test]
    fn a_query_is_capitalized_the_way_names_are_written() {
        assert_eq!(capitalized("жАН"), "Жан");
        assert_eq!(capitalized("åsa"), "Åsa");
        assert_eq!(capitalized(""), "");
    }
}
