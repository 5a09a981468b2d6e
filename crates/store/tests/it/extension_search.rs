//! The SSO picker's reads (issue 15): synced extensions found by the start of a number or a
//! name, at most `limit` (numbers as index ranges); chosen extensions read by number.

use pbx365_domain::NewExtension;
use pbx365_testkit::data::{put_extensions, synced_person};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use sqlx::Row;

fn numbers(exts: &[pbx365_domain::Extension]) -> Vec<&str> {
    exts.iter().map(|e| e.number.as_str()).collect()
}

on_both!(synced_extensions_are_found_by_number_or_name_start => search_body);
async fn search_body(db: TestDb) {
    let s = &db.store;
    let mut people = vec![
        synced_person("2", "Zeno", "Two"),
        synced_person("20", "Zoe", "Twenty"),
        synced_person("205", "Anna", "Berg"),
        synced_person("2000", "Åsa", "Lind"),
        synced_person("3000", "Жанна", "Петрова"),
        synced_person("3001", "Pia", "50%_off"),
    ];
    people[1].enabled = false;
    put_extensions(s, &people).await.unwrap();
    s.create_local_extension(
        "21",
        &NewExtension {
            first_name: "Anna".into(),
            last_name: "Local".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let find =
        |q: &'static str, limit| async move { s.search_synced_extensions(q, limit).await.unwrap() };
    // Numbers: every length, shortest first; disabled synced ones too; never the local 21.
    assert_eq!(numbers(&find("2", 20).await), ["2", "20", "205", "2000"]);
    assert_eq!(numbers(&find("2", 2).await), ["2", "20"]);
    assert_eq!(numbers(&find("20", 20).await), ["20", "205", "2000"]);
    assert!(find("9", 20).await.is_empty());
    // Names: first, last or display name, any case; non-ASCII capitalized names on both.
    assert_eq!(numbers(&find("anna", 20).await), ["205"]);
    assert_eq!(numbers(&find("BERG", 20).await), ["205"]);
    assert_eq!(numbers(&find("anna b", 20).await), ["205"]);
    assert_eq!(numbers(&find("åS", 20).await), ["2000"]);
    assert_eq!(numbers(&find("пеТР", 20).await), ["3000"]);
    assert_eq!(numbers(&find("z", 1).await), ["2"]);
    // LIKE's wildcards typed in a query match only themselves.
    assert_eq!(numbers(&find("50%_", 20).await), ["3001"]);
    assert!(find("%", 20).await.is_empty());
    assert!(find("_", 20).await.is_empty());
    assert!(find("  ", 20).await.is_empty());

    // Chosen numbers, by number, those that exist; the first synced ones of a small office.
    let chosen = s
        .extensions_by_numbers(&["2000".into(), "20".into(), "999".into(), "21".into()])
        .await
        .unwrap();
    assert_eq!(numbers(&chosen), ["20", "21", "2000"]);
    assert_eq!(
        numbers(&s.list_synced_extensions(3).await.unwrap()),
        ["2", "20", "205"]
    );
}

/// The plan the database chooses for `sql` (seq scans discouraged on PostgreSQL, whose planner
/// prefers them on tiny tables).
async fn plan(db: &TestDb, sql: &str) -> String {
    let mut conn = db.store.pool().acquire().await.unwrap();
    let (explain, column) = if db.url.starts_with("postgres") {
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        ("EXPLAIN", 0)
    } else {
        ("EXPLAIN QUERY PLAN", 3)
    };
    let rows = sqlx::query(&format!("{explain} {sql}"))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>(column))
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when a plan reads number ranges from an index (the number-order one or the primary
/// key, as the planner likes), never the whole table.
fn ranges_by_index(plan: &str) -> bool {
    let by_index = ["Index Cond", "SEARCH extensions USING"]
        .iter()
        .any(|s| plan.contains(s));
    let scan = plan.contains("Seq Scan") || plan.lines().any(|l| l.trim() == "SCAN extensions");
    by_index && !scan
}

on_both!(the_picker_reads_through_the_number_index => plan_body);
/// The shape `search_synced_extensions` sends for a number prefix: a range per digit count,
/// read from an index. (A name is a filter over the synced rows that stops at the limit when
/// the database walks them in number order; which way it goes is the planner's choice.)
async fn plan_body(db: TestDb) {
    let number = plan(
        &db,
        "SELECT number FROM extensions WHERE source = 'm365' AND m365_id IS NOT NULL AND \
         ((LENGTH(number) = 3 AND number >= '200' AND number <= '209') OR \
         (LENGTH(number) = 4 AND number >= '2000' AND number <= '2099')) \
         ORDER BY LENGTH(number), number LIMIT 20",
    )
    .await;
    assert!(ranges_by_index(&number), "{number}");
}
