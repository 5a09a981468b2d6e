//! Calendar status: stored timelines survive a reopen as written, and the calendar's profile
//! write never overwrites a change it has not seen.

use chrono::{Duration, TimeZone, Utc};
use pbx365_domain::calendar::{CalendarEntry, ShowAs, Timeline};
use pbx365_domain::*;
use pbx365_store::StoredTimeline;
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;

async fn a_timeline_reads_back_and_keeps_what_was_handled(db: TestDb) {
    let s = &db.store;
    let ann = NewExtension {
        display_name: "Ann".into(),
        ..Default::default()
    };
    s.create_local_extension("100", &ann).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let mut t = StoredTimeline {
        number: "100".into(),
        m365_id: "u-1".into(),
        timeline: Timeline {
            entries: vec![CalendarEntry {
                id: "e1".into(),
                start: at,
                end: at + Duration::hours(1),
                show_as: ShowAs::Busy,
                subject: "Board meeting".into(),
                private: false,
                all_day: false,
                cancelled: false,
            }],
        },
        delta_link: Some("https://graph/delta?token=1".into()),
        window_end: Some(at + Duration::hours(36)),
        handled_until: at - Duration::hours(1),
        read_at: at - Duration::hours(1),
    };
    s.put_timeline(&t).await.unwrap();
    assert_eq!(s.list_timelines().await.unwrap(), vec![t.clone()]);
    s.set_timeline_handled("100", at).await.unwrap();
    // A new read replaces the entries but not what the scheduler handled.
    t.timeline.entries.clear();
    s.put_timeline(&t).await.unwrap();
    let read = s.get_timeline("100").await.unwrap().unwrap();
    assert_eq!(read.handled_until, at);
    assert!(read.timeline.entries.is_empty());
    // Deleting the extension deletes its timeline.
    s.delete_extension("100").await.unwrap();
    assert!(s.list_timelines().await.unwrap().is_empty());
}

async fn the_calendar_write_does_not_overwrite_an_unseen_change(db: TestDb) {
    let s = &db.store;
    let ann = NewExtension {
        display_name: "Ann".into(),
        ..Default::default()
    };
    s.create_local_extension("100", &ann).await.unwrap();
    let seen = ProfileState::default();
    let cal = ProfileState {
        profile: Profile::Dnd,
        source: ProfileSource::Calendar,
        until: Some(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()),
        return_to: Some(Profile::Available),
    };
    let before = feed(s).await;
    assert!(s.set_profile_if("100", &seen, &cal).await.unwrap());
    let read = s.get_extension("100").await.unwrap().unwrap();
    assert_eq!(read.profile, cal);
    // The switch is in the SIP change feed, so Kamailio (every instance's pusher) follows it.
    assert_eq!(feed(s).await, before + 1);
    // A person changed it meanwhile: the calendar's write (expecting `seen`) does nothing.
    let lunch = ProfileState {
        profile: Profile::Lunch,
        ..Default::default()
    };
    s.set_profile("100", &lunch).await.unwrap();
    let before = feed(s).await;
    assert!(!s.set_profile_if("100", &cal, &seen).await.unwrap());
    let read = s.get_extension("100").await.unwrap().unwrap();
    assert_eq!(read.profile, lunch);
    assert_eq!(
        feed(s).await,
        before,
        "a write that did nothing is not in the feed"
    );
}

/// Routing changes of extension 100 in the SIP change feed.
async fn feed(s: &pbx365_store::Store) -> usize {
    s.sip_changes_after("", 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|c| c.number == "100")
        .count()
}

on_both!(
    a_timeline_reads_back_and_keeps_what_was_handled,
    the_calendar_write_does_not_overwrite_an_unseen_change
);
