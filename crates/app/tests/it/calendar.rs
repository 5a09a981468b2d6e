//! Calendar status (SPEC §6) against m365-sim in real time with short entries, on SQLite and
//! PostgreSQL: the switch events are awaited, never slept for.

use chrono::{DateTime, Duration, DurationRound, Utc};
use pbx365_app::calendar::{CalendarSwitch, AUDIT_ACTION};
use pbx365_app::App;
use pbx365_domain::settings::Settings;
use pbx365_domain::{Profile, ProfileSource};
use pbx365_graph::{GraphClient, GraphRequest};
use pbx365_testkit::data::{put_extensions, synced_extension};
use pbx365_testkit::db::TestDb;
use pbx365_testkit::on_both;
use pbx365_testkit::tenant::{client, register, world, World};
use reqwest::Method;
use serde_json::json;
use tokio::sync::broadcast::Receiver;

/// Settings connected to `w`'s tenant with calendar status on for every synced extension.
fn settings(w: &World) -> Settings {
    let mut s = Settings {
        data_dir: w.reader_keys_dir.clone(),
        ..Settings::default()
    };
    s.m365.graph_url = w.sim.graph_url().into();
    s.m365.authority_url = w.sim.authority_url().into();
    s.m365.tenant_id = Some(w.sim.tenant_id.clone());
    s.m365.client_id = Some(w.reader_client_id.clone());
    s.calendar.enabled = true;
    s.sync.lease_ttl_secs = 3;
    s
}

/// A tenant with `n` users, each one a synced extension 100, 101, …; returns the world, a
/// client that may write calendars, and the users' ids by extension.
async fn tenant(db: &TestDb, n: usize) -> (World, GraphClient, Vec<String>) {
    let mut w = world(n).await;
    let pbx = register(&w.sim, &["Calendars.ReadWrite"], true).await;
    let writer = client(&w.sim, &pbx, pbx365_domain::settings::AssertionAlg::PS256);
    // The writer's key files live as long as the world.
    w._dirs.push(pbx.dir);
    let ids: Vec<String> = w.users().await.into_iter().map(|u| u.id).collect();
    let exts: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| synced_extension(&(100 + i).to_string(), id))
        .collect();
    put_extensions(&db.store, &exts).await.unwrap();
    for id in &ids {
        clear_calendar(&writer, id).await;
    }
    (w, writer, ids)
}

/// Deletes every event of `user`: the generated organisation has weekday meetings, which would
/// make what a test expects depend on the day and hour it runs.
async fn clear_calendar(writer: &GraphClient, user: &str) {
    let r = writer
        .send(GraphRequest::get(format!("/users/{user}/events?$top=999")))
        .await
        .unwrap();
    let v: serde_json::Value = r.json().unwrap();
    for e in v["value"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        writer
            .send(GraphRequest::new(
                Method::DELETE,
                format!("/users/{user}/events/{id}"),
            ))
            .await
            .unwrap();
    }
}

/// The next whole second at least `secs` seconds ahead.
fn ahead(secs: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::seconds(secs))
        .duration_trunc(Duration::seconds(1))
        .unwrap()
        + Duration::seconds(1)
}

fn dtz(t: DateTime<Utc>) -> serde_json::Value {
    json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(), "timeZone": "UTC"})
}

/// Creates an event in `user`'s calendar; returns its id.
async fn event(
    writer: &GraphClient,
    user: &str,
    subject: &str,
    show_as: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let body = json!({"subject": subject, "showAs": show_as, "start": dtz(start), "end": dtz(end)});
    let r = writer
        .send(GraphRequest::with_json(
            Method::POST,
            format!("/users/{user}/events"),
            body,
        ))
        .await
        .unwrap();
    let v: serde_json::Value = r.json().unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// The next switch of extension `number`.
async fn next_switch(rx: &mut Receiver<CalendarSwitch>, number: &str) -> CalendarSwitch {
    let wait = async {
        loop {
            let s = rx.recv().await.expect("the switch feed is open");
            if s.number == number {
                return s;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no switch of {number} within 30 s"))
}

/// Asserts a switch to `profile` happened within 1 s after `due`.
fn on_time(s: &CalendarSwitch, profile: Profile, due: DateTime<Utc>) {
    assert_eq!(s.profile, profile, "{s:?}");
    let late = s.at - due;
    assert!(
        late >= Duration::zero() && late <= Duration::seconds(1),
        "switched to {profile} {} ms after {due}",
        late.num_milliseconds()
    );
}

async fn busy_oof_tentative_and_business_trip_switch_as_the_spec_says(db: TestDb) {
    let (w, writer, ids) = tenant(&db, 4).await;
    let app = App::new(db.store.clone(), settings(&w));
    app.set_profile("t", "103", Profile::BusinessTrip, None)
        .await
        .unwrap();
    let (start, end) = (ahead(2), ahead(2) + Duration::seconds(3));
    event(&writer, &ids[0], "Board meeting", "busy", start, end).await;
    event(&writer, &ids[1], "Holiday", "oof", start, end).await;
    event(&writer, &ids[2], "Maybe", "tentative", start, end).await;
    event(&writer, &ids[3], "Trip meeting", "busy", start, end).await;
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();

    let s = next_switch(&mut rx, "100").await;
    on_time(&s, Profile::Dnd, start);
    let view = app.extension("100").await.unwrap().profile;
    assert_eq!(
        (view.source, view.until),
        (ProfileSource::Calendar, Some(end))
    );
    let ext = app.extension("100").await.unwrap();
    let why = app.calendar_reason(&ext).await.unwrap();
    assert!(
        why.starts_with("Do Not Disturb — calendar: 'Board meeting' until "),
        "{why}"
    );
    let s = next_switch(&mut rx, "101").await;
    on_time(&s, Profile::Away, start);
    let s = next_switch(&mut rx, "100").await;
    on_time(&s, Profile::Available, end);
    assert_eq!(s.source, ProfileSource::Manual);
    let s = next_switch(&mut rx, "101").await;
    on_time(&s, Profile::Available, end);
    // Tentative switches nothing; business_trip ignores the calendar.
    assert_eq!(
        app.extension("102").await.unwrap().profile.profile,
        Profile::Available
    );
    assert_eq!(
        app.extension("103").await.unwrap().profile.profile,
        Profile::BusinessTrip
    );
    assert!(rx.try_recv().is_err(), "no other switch");
    let audit = db.store.list_audit(50).await.unwrap();
    let switches = audit.iter().filter(|a| a.action == AUDIT_ACTION).count();
    assert_eq!(switches, 4, "each switch is in the audit log");
}

async fn a_manual_change_mid_entry_is_kept_after_the_entry(db: TestDb) {
    let (w, writer, ids) = tenant(&db, 2).await;
    let app = App::new(db.store.clone(), settings(&w));
    let (start, end) = (ahead(2), ahead(2) + Duration::seconds(3));
    event(&writer, &ids[0], "Review", "busy", start, end).await;
    // A marker entry on another extension ending just after: its switch back shows the
    // first entry's end has been handled.
    event(
        &writer,
        &ids[1],
        "Marker",
        "busy",
        start,
        end + Duration::seconds(1),
    )
    .await;
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();
    let s = next_switch(&mut rx, "100").await;
    on_time(&s, Profile::Dnd, start);
    app.set_profile("t", "100", Profile::Lunch, None)
        .await
        .unwrap();
    let s = next_switch(&mut rx, "101").await;
    assert_eq!(s.profile, Profile::Dnd);
    let s = next_switch(&mut rx, "101").await;
    on_time(&s, Profile::Available, end + Duration::seconds(1));
    let view = app.extension("100").await.unwrap().profile;
    assert_eq!(
        (view.profile, view.source),
        (Profile::Lunch, ProfileSource::Manual)
    );
}

async fn overlapping_busy_and_oof_give_away_then_dnd_then_the_saved_profile(db: TestDb) {
    let (w, writer, ids) = tenant(&db, 1).await;
    let app = App::new(db.store.clone(), settings(&w));
    app.set_profile("t", "100", Profile::Lunch, None)
        .await
        .unwrap();
    let t0 = ahead(2);
    event(
        &writer,
        &ids[0],
        "Offsite",
        "oof",
        t0,
        t0 + Duration::seconds(2),
    )
    .await;
    event(
        &writer,
        &ids[0],
        "Call",
        "busy",
        t0 + Duration::seconds(1),
        t0 + Duration::seconds(4),
    )
    .await;
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();
    on_time(&next_switch(&mut rx, "100").await, Profile::Away, t0);
    on_time(
        &next_switch(&mut rx, "100").await,
        Profile::Dnd,
        t0 + Duration::seconds(2),
    );
    on_time(
        &next_switch(&mut rx, "100").await,
        Profile::Lunch,
        t0 + Duration::seconds(4),
    );
}

async fn an_entry_created_moved_or_cancelled_after_planning_takes_effect(db: TestDb) {
    let (w, writer, ids) = tenant(&db, 1).await;
    let app = App::new(db.store.clone(), settings(&w));
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();
    // The first read has happened once the timeline is stored.
    pbx365_testkit::wait::eventually(10, "the calendar is read", || async {
        db.store.get_timeline("100").await.unwrap().is_some()
    })
    .await;
    let (start, end) = (ahead(2), ahead(2) + Duration::seconds(2));
    let id = event(&writer, &ids[0], "New", "busy", start, end).await;
    // What a change notification for the user's events does.
    app.replan_calendar(&ids[0]);
    on_time(&next_switch(&mut rx, "100").await, Profile::Dnd, start);
    // Moved: it now ends a second later.
    let later = end + Duration::seconds(1);
    writer
        .send(GraphRequest::with_json(
            Method::PATCH,
            format!("/users/{}/events/{id}", ids[0]),
            json!({"end": dtz(later)}),
        ))
        .await
        .unwrap();
    app.replan_calendar(&ids[0]);
    on_time(
        &next_switch(&mut rx, "100").await,
        Profile::Available,
        later,
    );
    // Cancelled (deleted) before it starts: nothing switches; a marker entry after it does.
    let (s2, e2) = (ahead(2), ahead(2) + Duration::seconds(1));
    let gone = event(&writer, &ids[0], "Cancelled", "oof", s2, e2).await;
    app.replan_calendar(&ids[0]);
    writer
        .send(GraphRequest::new(
            Method::DELETE,
            format!("/users/{}/events/{gone}", ids[0]),
        ))
        .await
        .unwrap();
    let marker = e2 + Duration::seconds(1);
    event(
        &writer,
        &ids[0],
        "Marker",
        "busy",
        marker,
        marker + Duration::seconds(1),
    )
    .await;
    app.replan_calendar(&ids[0]);
    on_time(&next_switch(&mut rx, "100").await, Profile::Dnd, marker);
}

async fn a_restart_mid_entry_keeps_the_profile_and_returns_at_the_end(db: TestDb) {
    let (w, writer, ids) = tenant(&db, 1).await;
    let (start, end) = (ahead(2), ahead(2) + Duration::seconds(4));
    event(&writer, &ids[0], "Long call", "busy", start, end).await;
    let app = App::new(db.store.clone(), settings(&w));
    let mut rx = app.calendar_switches();
    let worker = app.start_calendar_worker();
    on_time(&next_switch(&mut rx, "100").await, Profile::Dnd, start);
    worker.stop();
    // A new process: the same store, rebuilt from the stored timeline.
    let app = App::new(db.store.clone(), settings(&w));
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();
    assert_eq!(
        app.extension("100").await.unwrap().profile.profile,
        Profile::Dnd
    );
    on_time(&next_switch(&mut rx, "100").await, Profile::Available, end);
}

/// The notification receiver on 127.0.0.1:0, wrapped like the web crate's handler.
async fn serve_receiver(store: pbx365_store::Store) -> String {
    pbx365_testkit::receiver::serve(store).await
}

async fn a_change_arrives_by_notification_and_by_the_fallback_when_notifications_are_dropped(
    db: TestDb,
) {
    let (w, writer, ids) = tenant(&db, 1).await;
    let mut s = settings(&w);
    s.public_url = Some(serve_receiver(db.store.clone()).await);
    // The fallback read is an hour away: only a notification can bring a change in time.
    let app = App::new(db.store.clone(), s.clone());
    let mut rx = app.calendar_switches();
    let worker = app.start_calendar_worker();
    pbx365_testkit::wait::eventually(20, "the events subscription exists", || async {
        db.store
            .list_subscriptions()
            .await
            .unwrap()
            .iter()
            .any(|s| s.resource.ends_with("/events"))
    })
    .await;
    // Created after the plan: the notification brings it in time for its start.
    let (start, end) = (ahead(4), ahead(4) + Duration::seconds(3));
    event(&writer, &ids[0], "Notified", "busy", start, end).await;
    on_time(&next_switch(&mut rx, "100").await, Profile::Dnd, start);
    on_time(&next_switch(&mut rx, "100").await, Profile::Available, end);
    // Notifications dropped: the fallback read (every 3 s here) brings the next one.
    worker.stop();
    let app = App::new(db.store.clone(), s).with_calendar_poll(std::time::Duration::from_secs(3));
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();
    w.sim.control().drop_notifications().await.unwrap();
    let (start, end) = (ahead(5), ahead(5) + Duration::seconds(1));
    event(&writer, &ids[0], "Polled", "oof", start, end).await;
    on_time(&next_switch(&mut rx, "100").await, Profile::Away, start);
}

/// `pbx365 sync calendar [--dry-run]`: the plan says who switches to what when, and switches
/// nothing; a dry run stores nothing either.
async fn the_plan_says_who_switches_when_and_switches_nothing(db: TestDb) {
    let (w, writer, ids) = tenant(&db, 3).await;
    let app = App::new(db.store.clone(), settings(&w));
    let (start, end) = (ahead(3600), ahead(7200));
    event(&writer, &ids[0], "Board meeting", "busy", start, end).await;
    event(
        &writer,
        &ids[1],
        "Holiday",
        "oof",
        end,
        end + Duration::hours(1),
    )
    .await;
    event(&writer, &ids[2], "Maybe", "tentative", start, end).await;

    let plan = app.calendar_plan(true).await.unwrap();
    let seen: Vec<_> = plan
        .iter()
        .map(|p| (p.at, p.number.as_str(), p.profile, p.why.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (start, "100", Profile::Dnd, "Board meeting"),
            (end, "100", Profile::Available, ""),
            (end, "101", Profile::Away, "Holiday"),
            (end + Duration::hours(1), "101", Profile::Available, ""),
        ]
    );
    assert!(
        db.store.list_timelines().await.unwrap().is_empty(),
        "a dry run stores nothing"
    );

    let again = app.calendar_plan(false).await.unwrap();
    assert_eq!(again.len(), plan.len());
    assert_eq!(db.store.list_timelines().await.unwrap().len(), 3);
    for n in ["100", "101", "102"] {
        let p = app.extension(n).await.unwrap().profile;
        assert_eq!(
            (p.profile, p.source),
            (Profile::Available, ProfileSource::Manual),
            "{n} is not switched by a plan"
        );
    }
    let audit = db.store.list_audit(50).await.unwrap();
    assert!(audit.iter().all(|a| a.action != AUDIT_ACTION));
}

on_both!(
    the_plan_says_who_switches_when_and_switches_nothing,
    a_change_arrives_by_notification_and_by_the_fallback_when_notifications_are_dropped,
    busy_oof_tentative_and_business_trip_switch_as_the_spec_says,
    a_manual_change_mid_entry_is_kept_after_the_entry,
    overlapping_busy_and_oof_give_away_then_dnd_then_the_saved_profile,
    an_entry_created_moved_or_cancelled_after_planning_takes_effect,
    a_restart_mid_entry_keeps_the_profile_and_returns_at_the_end
);
