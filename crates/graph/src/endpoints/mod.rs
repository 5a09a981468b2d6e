//! The endpoints: one module per Microsoft 365 resource, each holding that resource's Graph
//! URLs, query options (`$select`, `$top`, `Prefer` headers), request builders (plain and
//! `$batch` sub-requests), shapes and typed calls on [`crate::GraphClient`]. The transport
//! ([`crate::transport`]) sends what they build.
//!
//! Resources: https://learn.microsoft.com/graph/api/overview

pub mod calendar;
pub mod contacts;
pub mod groups;
pub mod mail;
pub mod photos;
pub mod subscriptions;
pub mod users;
