//! What a sync round reads instead of whole tables: maintained counts of synced extensions,
//! lookups by object id, taken numbers of a range, numbers deleted and not taken again, and
//! extensions whose grace period is over.

use chrono::{Duration, Utc};
use pbx365_domain::*;
use pbx365_store::{ExtensionOp, SyncedCounts};
use pbx365_testkit::data::{object_id, synced_extension};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

fn counts(synced: u64, enabled: u64) -> SyncedCounts {
    SyncedCounts { synced, enabled }
}

async fn every_write_keeps_the_synced_counts_true(db: TestDb) {
    let s = &db.store;
    assert_eq!(s.synced_counts().await.unwrap(), counts(0, 0));
    let ops: Vec<ExtensionOp> = (0..5)
        .map(|i| ExtensionOp::Sync(synced_extension(&format!("10{i}"), &object_id(i))))
        .collect();
    s.apply_extension_ops(&ops, None).await.unwrap();
    assert_eq!(s.synced_counts().await.unwrap(), counts(5, 5));
    // Writing the same users again changes nothing.
    s.apply_extension_ops(&ops, None).await.unwrap();
    assert_eq!(s.synced_counts().await.unwrap(), counts(5, 5));
    let at = Utc::now();
    s.apply_extension_ops(
        &[
            ExtensionOp::Disable {
                number: "100".into(),
                at,
            },
            ExtensionOp::Disable {
                number: "101".into(),
                at,
            },
            ExtensionOp::Enable {
                number: "101".into(),
            },
            ExtensionOp::Delete {
                number: "102".into(),
            },
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.synced_counts().await.unwrap(), counts(4, 3));
    s.create_local_extension("200", &NewExtension::default())
        .await
        .unwrap();
    s.delete_extension("103").await.unwrap();
    assert_eq!(s.synced_counts().await.unwrap(), counts(3, 2));
    assert_eq!(s.recount_synced().await.unwrap(), counts(3, 2));
}

on_both!(every_write_keeps_the_synced_counts_true);

/// Sync writes, admin disables, enables and deletes of the same extensions at once (several
/// `pbx365 serve` on one PostgreSQL) leave the maintained counts equal to a recount.
async fn concurrent_writers_keep_the_synced_counts_true(db: TestDb) {
    let s = &db.store;
    let sync = |i: u32| ExtensionOp::Sync(synced_extension(&format!("10{i}"), &object_id(i)));
    let ops: Vec<ExtensionOp> = (0..4).map(sync).collect();
    s.apply_extension_ops(&ops, None).await.unwrap();
    let writers: Vec<_> = (0..12u32)
        .map(|w| {
            let store = s.clone();
            tokio::spawn(async move {
                for step in 0..30u32 {
                    let i = (w + step) % 4;
                    let number = format!("10{i}");
                    let op = match (w * 7 + step) % 4 {
                        0 => ExtensionOp::Disable {
                            number,
                            at: Utc::now(),
                        },
                        1 => ExtensionOp::Enable { number },
                        2 => ExtensionOp::Delete { number },
                        _ => sync(i),
                    };
                    match store.apply_extension_ops(&[op], None).await {
                        // Another writer deleted it first.
                        Ok(()) | Err(pbx365_store::StoreError::NotFound { .. }) => {}
                        Err(e) => panic!("writer {w} step {step}: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let kept = s.synced_counts().await.unwrap();
    assert_eq!(kept, s.recount_synced().await.unwrap());
}

on_both!(concurrent_writers_keep_the_synced_counts_true);

async fn extensions_are_read_by_object_id_with_their_groups(db: TestDb) {
    let s = &db.store;
    let ops: Vec<ExtensionOp> = (0..3)
        .map(|i| ExtensionOp::Sync(synced_extension(&format!("10{i}"), &object_id(i))))
        .collect();
    s.apply_extension_ops(&ops, None).await.unwrap();
    let found = s
        .extensions_by_m365_ids(&[object_id(2), object_id(9), object_id(0)])
        .await
        .unwrap();
    let mut numbers: Vec<&str> = found.iter().map(|e| e.number.as_str()).collect();
    numbers.sort();
    assert_eq!(numbers, vec!["100", "102"]);
    assert!(found
        .iter()
        .all(|e| e.groups == vec![AZURE_AD_GROUP.to_string()]));
}

on_both!(extensions_are_read_by_object_id_with_their_groups);

async fn taken_numbers_of_a_range_are_read_in_numeric_order(db: TestDb) {
    let s = &db.store;
    for n in ["99", "100", "0102", "1000", "1005", "10001", "7"] {
        s.create_local_extension(n, &NewExtension::default())
            .await
            .unwrap();
    }
    assert_eq!(
        s.numbers_taken_between(100, 10_000).await.unwrap(),
        vec![100, 102, 1000, 1005]
    );
    assert_eq!(s.numbers_taken_between(5, 99).await.unwrap(), vec![7, 99]);
    assert!(s.numbers_taken_between(101, 101).await.unwrap().is_empty());
}

on_both!(taken_numbers_of_a_range_are_read_in_numeric_order);

async fn a_deleted_number_is_free_until_taken_again(db: TestDb) {
    let s = &db.store;
    for n in ["100", "101", "150"] {
        s.create_local_extension(n, &NewExtension::default())
            .await
            .unwrap();
    }
    assert_eq!(s.lowest_freed_number(100).await.unwrap(), None);
    s.delete_extension("150").await.unwrap();
    s.delete_extension("101").await.unwrap();
    assert_eq!(s.lowest_freed_number(100).await.unwrap(), Some(101));
    assert_eq!(s.lowest_freed_number(102).await.unwrap(), Some(150));
    s.apply_extension_ops(
        &[ExtensionOp::Sync(synced_extension("101", &object_id(1)))],
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.lowest_freed_number(100).await.unwrap(), Some(150));
    s.create_local_extension("150", &NewExtension::default())
        .await
        .unwrap();
    assert_eq!(s.lowest_freed_number(100).await.unwrap(), None);
}

on_both!(a_deleted_number_is_free_until_taken_again);

async fn synced_extensions_disabled_long_ago_are_found_by_date(db: TestDb) {
    let s = &db.store;
    let ops: Vec<ExtensionOp> = (0..3)
        .map(|i| ExtensionOp::Sync(synced_extension(&format!("10{i}"), &object_id(i))))
        .collect();
    s.apply_extension_ops(&ops, None).await.unwrap();
    let now = Utc::now();
    s.apply_extension_ops(
        &[
            ExtensionOp::Disable {
                number: "100".into(),
                at: now - Duration::days(40),
            },
            ExtensionOp::Disable {
                number: "101".into(),
                at: now - Duration::days(2),
            },
        ],
        None,
    )
    .await
    .unwrap();
    let due = s
        .synced_disabled_before(now - Duration::days(30))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].number.as_str(), "100");
    assert_eq!(due[0].groups, vec![AZURE_AD_GROUP.to_string()]);
}

on_both!(synced_extensions_disabled_long_ago_are_found_by_date);
