//! Integration tests of the store. Every test runs twice: on SQLite (a temp file) and on
//! PostgreSQL (a fresh database in the server named by `PBX365_TEST_POSTGRES_URL`; run the tests
//! through `scripts/with-postgres`, which starts a throwaway PostgreSQL 15), through
//! `pbx365_testkit::on_both!`.

mod auth;
mod calendar;
mod extension_search;
mod extensions;
mod groups;
mod leases;
mod lookup;
mod migrations;
mod misc;
mod notifications;
mod ops;
mod phonebook;
mod plans;
mod retention;
mod round_reads;
