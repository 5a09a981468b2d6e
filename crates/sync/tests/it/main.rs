//! Integration tests of the sync engine against the in-process m365-sim. Every test runs on
//! SQLite and on PostgreSQL (`PBX365_TEST_POSTGRES_URL`; skipped with a notice locally when
//! unset, a failure when `CI` is set).

mod contact_notifications;
mod contacts;
mod crash;
mod fencing;
mod framework_kind;
mod guard;
mod notifications;
mod plans;
mod retention;
mod users;
mod writers;
