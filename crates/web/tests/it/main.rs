//! Integration tests of the HTTP side: the REST API over real HTTP on loopback, on SQLite and
//! PostgreSQL.

mod api;
mod browser;
mod browser_m365;
mod browser_sso;
mod console;
mod contacts;
mod credentials;
mod hygiene;
mod m365;
mod mail;
mod phonebook;
mod sessions;
mod sso;
mod sso_picker;
