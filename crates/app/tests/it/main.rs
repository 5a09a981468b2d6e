//! Integration tests of the use-case layer against m365-sim: the mail outbox.

mod calendar;
mod mail;
