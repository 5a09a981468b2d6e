//! Integration tests of the HTTP side: the REST API over real HTTP on loopback, on SQLite and
//! PostgreSQL.

mod db;
mod harness;

mod api;
mod browser;
mod browser_m365;
mod browser_support;
mod console;
mod console_support;
mod m365;
mod m365_support;
