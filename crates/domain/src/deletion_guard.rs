//! The mass-deletion guard (SPEC §3): a run that would disable or delete more than
//! `max_deletions` or `max_deletion_percent`% of the synced records stops before changing anything
//! and waits for an admin's approval of exactly that deletion set.

use crate::{ReportItem, SyncReport};
use std::collections::HashSet;

/// The mass-deletion guard's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Within the limits.
    Pass,
    /// Over `max_deletions` or `max_deletion_percent`: hold the run.
    Exceeded {
        /// Extensions the run would disable or delete.
        count: usize,
        /// Synced extensions before the run.
        synced: usize,
    },
}

/// The guard rule on its own: `count` disables/deletes out of `synced` extensions.
pub fn guard(count: usize, synced: usize, max_deletions: u32, max_percent: u32) -> Guard {
    if count == 0 {
        return Guard::Pass;
    }
    let over_count = count > max_deletions as usize;
    let over_share = (count as u128) * 100 > (max_percent as u128) * (synced as u128);
    if over_count || over_share {
        Guard::Exceeded { count, synced }
    } else {
        Guard::Pass
    }
}

/// What a deletion line removes: the extension number, else the Microsoft id (phonebook entries).
fn key_of(i: &ReportItem) -> &str {
    i.extension
        .as_deref()
        .or(i.m365_id.as_deref())
        .unwrap_or("")
}

/// A stable key of a deletion set (what the disabled and deleted lines name), used to
/// match an approval with the run it approved.
pub fn deletion_keys(report: &SyncReport) -> HashSet<String> {
    report
        .disabled
        .iter()
        .map(|i| format!("disable:{}", key_of(i)))
        .chain(
            report
                .deleted
                .iter()
                .map(|i| format!("delete:{}", key_of(i))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_absolute_and_percentage_limits() {
        assert_eq!(guard(0, 0, 50, 10), Guard::Pass);
        assert_eq!(guard(50, 10_000, 50, 10), Guard::Pass);
        assert_eq!(
            guard(51, 10_000, 50, 10),
            Guard::Exceeded {
                count: 51,
                synced: 10_000
            }
        );
        assert_eq!(guard(10, 100, 50, 10), Guard::Pass);
        assert_eq!(
            guard(11, 100, 50, 10),
            Guard::Exceeded {
                count: 11,
                synced: 100
            }
        );
        assert_eq!(
            guard(1, 5, 50, 10),
            Guard::Exceeded {
                count: 1,
                synced: 5
            }
        );
    }

    #[test]
    fn deletion_keys_name_extensions() {
        let mut r = SyncReport::default();
        r.disabled.push(ReportItem {
            extension: Some("100".into()),
            ..Default::default()
        });
        r.deleted.push(ReportItem {
            extension: Some("101".into()),
            ..Default::default()
        });
        let keys = deletion_keys(&r);
        assert!(keys.contains("disable:100") && keys.contains("delete:101"));
    }
}
