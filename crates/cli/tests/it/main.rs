//! Tests of the `pbx365` binary run as a real child process: start-up, configuration errors,
//! TLS, the admin commands, and crash consistency under SIGKILL.

mod cluster;
mod commands;
mod contacts;
mod crash;
mod credentials;
mod m365;
mod mail;
mod server;
mod sip;
mod sync_wiring;
mod sync_wiring_browser;
