//! Routing and presence changes pushed to Kamailio the moment they happen (SPEC §8: within
//! 100 ms).
//!
//! One worker per pbx365 process takes changes from a queue, keeps only the newest per extension,
//! and sends them over JSON-RPC: the routing `htable`s at once, then the extension's presence (a
//! PIDF `pua.publish`, which Kamailio's presence server hands to the phones watching it), paced
//! to [`PUBLISH_RATE`] so that thousands of them never exhaust Kamailio's memory. When Kamailio
//! is down or refuses, the changes stay queued and are retried (1 s, doubling to 10 s), and
//! [`SipPusher::status`] says so for the console: no change is dropped. Kamailio that (re)starts
//! loads the routing from the store, but its presence lives in memory only: the worker notices
//! every Kamailio it has not seen before (`core.uptime`) and says so through
//! [`SipPusher::kamailio_starts`], whereupon the feed's tail queues every extension's presence
//! again ([`Update::Presence`], sent after the live changes).

use crate::presence::Presence;
use crate::rpc::{RpcClient, RpcError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often the worker asks which Kamailio runs (to notice a restart).
const START_CHECK: Duration = Duration::from_secs(1);

/// What Kamailio should hold for one extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// An enabled extension: its profile and display name (and its presence).
    Route {
        /// `available`, `dnd`, … (as stored).
        profile: String,
        /// Put on the calls it places (as stored: Kamailio escapes it for the header).
        display_name: String,
        /// Its mobile number, for the `mobile` route.
        mobile: Option<String>,
    },
    /// A disabled or deleted extension: not routable, registrations ended, shown offline.
    Remove,
    /// Its registrations made before `before` (Unix seconds) end: its secret changed then, so
    /// only a phone with the new secret registers after it. Routing unchanged.
    Unregister {
        /// When the secret changed.
        before: i64,
    },
    /// Only its presence, published again (a Kamailio that restarted has none); sent after
    /// every live change.
    Presence {
        /// `available`, `dnd`, … (as stored).
        profile: String,
    },
}

/// The pusher's state for the console's status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipStatus {
    /// Changes waiting for Kamailio.
    pub pending: usize,
    /// Why the last attempt failed (cleared by the next success).
    pub last_error: Option<String>,
    /// Changes Kamailio has taken since start.
    pub pushed: u64,
}

/// The queue to Kamailio; cheap to clone.
#[derive(Debug, Clone)]
pub struct SipPusher {
    tx: mpsc::UnboundedSender<(String, Update)>,
    status: Arc<Mutex<SipStatus>>,
    rpc: RpcClient,
    starts: watch::Receiver<u64>,
}

impl SipPusher {
    /// Starts the worker on the current Tokio runtime for the SIP domain `domain` (presence is
    /// published for `sip:NUMBER@domain`); it ends when every clone is dropped.
    pub fn start(rpc: RpcClient, domain: &str) -> SipPusher {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(SipStatus::default()));
        let (starts_tx, starts) = watch::channel(0);
        let worker = Worker {
            rpc: rpc.clone(),
            domain: domain.to_string(),
            status: status.clone(),
            starts: starts_tx,
            seen_start: None,
        };
        tokio::spawn(worker.work(rx));
        SipPusher {
            tx,
            status,
            rpc,
            starts,
        }
    }

    /// Kamailio's JSON-RPC this pusher sends to.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// Counts the Kamailio starts the worker has noticed (the first one it talks to counts):
    /// each needs every extension's presence queued again.
    pub fn kamailio_starts(&self) -> watch::Receiver<u64> {
        self.starts.clone()
    }

    /// Queues `update` for extension `number`.
    pub fn push(&self, number: &str, update: Update) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending += 1;
        if self.tx.send((number.to_string(), update)).is_err() {
            tracing::error!(
                number,
                "the SIP pusher has stopped; Kamailio gets the change at its next start"
            );
        }
    }

    /// True once the worker has ended (its runtime is shutting down).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The current status.
    pub fn status(&self) -> SipStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One piece of work for Kamailio: routing (an [`Update`] but presence) or a publication.
#[derive(Debug, Clone)]
enum Work {
    /// `Route`, `Remove` or `Unregister`: sent at once.
    Routing(Update),
    /// A publication, paced (see [`PUBLISH_RATE`]).
    Publish(Presence),
}

/// Where a piece of work waits: routing first, then the presence of routing changes, then
/// republished presence; one entry per extension and kind, the newest.
type Key = (u8, String, u8);

/// Publications per second at most. Each one holds two transactions in Kamailio's shared memory
/// for tm's wait timer (5 s, about 24 KB in all): a restart's republication of thousands of
/// extensions at full speed would exhaust the 64 MB Debian gives Kamailio.
pub const PUBLISH_RATE: f64 = 200.0;
/// Publications sent at once before the pace applies (a single change is never held back).
const PUBLISH_BURST: f64 = 50.0;

/// The worker behind a [`SipPusher`].
struct Worker {
    rpc: RpcClient,
    domain: String,
    status: Arc<Mutex<SipStatus>>,
    starts: watch::Sender<u64>,
    /// When the Kamailio last seen started (`core.uptime` `up_since`).
    seen_start: Option<String>,
}

/// The queue of a worker.
#[derive(Default)]
struct Queue {
    pending: BTreeMap<Key, (String, Work)>,
}

impl Queue {
    /// Queues an update from pbx365: a routing change replaces the waiting publications of its
    /// extension (it brings its own); a republication waits unless a live change is pending (that
    /// one is at least as new: the feed delivers every change).
    fn take(&mut self, number: String, update: Update) {
        let key = |p: u8, slot: u8| (p, number.clone(), slot);
        match update {
            Update::Presence { profile } => {
                if self.pending.contains_key(&key(0, 0)) || self.pending.contains_key(&key(1, 0)) {
                    return;
                }
                let work = Work::Publish(Presence::of_stored(&profile));
                self.pending.insert(key(2, 0), (number, work));
            }
            Update::Unregister { .. } => {
                self.pending
                    .insert(key(0, 1), (number.clone(), Work::Routing(update)));
            }
            Update::Route { .. } | Update::Remove => {
                self.pending.remove(&key(1, 0));
                self.pending.remove(&key(2, 0));
                self.pending
                    .insert(key(0, 0), (number.clone(), Work::Routing(update)));
            }
        }
    }

    /// After a routing change went through: its extension's presence, as a live publication.
    fn publish_after(&mut self, number: &str, update: &Update) {
        let presence = match update {
            Update::Route { profile, .. } => Presence::of_stored(profile),
            Update::Remove => Presence::Gone,
            _ => return,
        };
        self.pending.insert(
            (1, number.to_string(), 0),
            (number.to_string(), Work::Publish(presence)),
        );
    }
}

impl Worker {
    async fn work(mut self, mut rx: mpsc::UnboundedReceiver<(String, Update)>) {
        let mut queue = Queue::default();
        let mut backoff = Duration::from_secs(1);
        let mut checked = tokio::time::Instant::now() - START_CHECK;
        let mut tokens = PUBLISH_BURST;
        let mut refilled = tokio::time::Instant::now();
        loop {
            if checked.elapsed() >= START_CHECK {
                checked = tokio::time::Instant::now();
                self.check_start().await;
            }
            if queue.pending.is_empty() {
                match tokio::time::timeout(START_CHECK, rx.recv()).await {
                    Ok(Some((n, u))) => queue.take(n, u),
                    Ok(None) => return,
                    Err(_) => continue, // idle: time to look at Kamailio again
                }
            }
            while let Ok((n, u)) = rx.try_recv() {
                queue.take(n, u);
            }
            // The first entry: routing if any, else a publication. New changes are taken
            // between two sends, so a long republication never holds a routing change back.
            let Some((key, (number, work))) = queue
                .pending
                .first_key_value()
                .map(|(k, v)| (k.clone(), v.clone()))
            else {
                continue;
            };
            let result = match &work {
                Work::Routing(update) => send(&self.rpc, &number, update).await,
                Work::Publish(presence) => {
                    let now = tokio::time::Instant::now();
                    tokens =
                        (tokens + (now - refilled).as_secs_f64() * PUBLISH_RATE).min(PUBLISH_BURST);
                    refilled = now;
                    if tokens < 1.0 {
                        // Wait for the next token, taking new changes meanwhile.
                        let wait = Duration::from_secs_f64((1.0 - tokens) / PUBLISH_RATE);
                        if let Ok(got) = tokio::time::timeout(wait, rx.recv()).await {
                            match got {
                                Some((n, u)) => queue.take(n, u),
                                None => return,
                            }
                        }
                        continue;
                    }
                    tokens -= 1.0;
                    publish(&self.rpc, &self.domain, &number, *presence).await
                }
            };
            match result {
                Ok(()) => {
                    queue.pending.remove(&key);
                    if let Work::Routing(update) = &work {
                        queue.publish_after(&number, update);
                    }
                    backoff = Duration::from_secs(1);
                    self.set_status(queue.pending.len(), None, 1);
                }
                Err(e) => {
                    // Logged once per outage (the status page shows it all along).
                    if backoff == Duration::from_secs(1) {
                        tracing::warn!(error = %e, waiting = queue.pending.len(), "Kamailio did not take a change; retrying until it does");
                    }
                    self.set_status(queue.pending.len(), Some(refusal_sentence(&e)), 0);
                    // New changes join the queue while we wait; the retry sends them all.
                    let deadline = tokio::time::Instant::now() + backoff;
                    loop {
                        tokio::select! {
                            got = rx.recv() => match got {
                                Some((n, u)) => queue.take(n, u),
                                None => return,
                            },
                            _ = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    // A Kamailio that was down may be a new one now.
                    checked = tokio::time::Instant::now() - START_CHECK;
                }
            }
        }
    }

    fn set_status(&self, pending: usize, error: Option<String>, pushed: u64) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.pending = pending;
        s.pushed += pushed;
        s.last_error = error;
    }

    /// Asks Kamailio when it started; a start not seen before is announced on `starts`.
    async fn check_start(&mut self) {
        let Ok(up) = self.rpc.call("core.uptime", json!([])).await else {
            return; // down: the pushes report it
        };
        let since = up["up_since"].as_str().unwrap_or_default().to_string();
        if self.seen_start.as_deref() != Some(since.as_str()) {
            if self.seen_start.is_some() {
                tracing::info!(up_since = %since, "Kamailio restarted; publishing every extension's presence again");
            }
            self.seen_start = Some(since);
            self.starts.send_modify(|n| *n += 1);
        }
    }
}

/// The status page's words for a failed push: a refusal says what to check.
fn refusal_sentence(e: &RpcError) -> String {
    match e {
        RpcError::Unreachable { .. } => format!("{e}."),
        RpcError::Refused { .. } => format!(
            "{e}. Check that Kamailio runs the configuration `pbx365 sip config` prints for \
             this deployment (with the kamailio-presence-modules package installed)."
        ),
    }
}

/// One routing update as JSON-RPC calls (its presence follows as a publication of its own).
async fn send(rpc: &RpcClient, number: &str, update: &Update) -> Result<(), RpcError> {
    match update {
        Update::Route {
            profile,
            display_name,
            mobile,
        } => {
            rpc.call("htable.sets", json!(["name", number, display_name]))
                .await?;
            match mobile {
                Some(m) => rpc.call("htable.sets", json!(["mob", number, m])).await?,
                None => forget(rpc, "mob", number).await?,
            };
            rpc.call("htable.sets", json!(["prof", number, profile]))
                .await?;
        }
        Update::Remove => {
            // Registrations first: once it is unroutable, it is also unregistered.
            unregister(rpc, number).await?;
            forget(rpc, "prof", number).await?;
            forget(rpc, "name", number).await?;
            forget(rpc, "mob", number).await?;
        }
        Update::Unregister { before } => unregister_before(rpc, number, *before).await?,
        Update::Presence { .. } => {} // queued as a publication, never sent as routing
    }
    Ok(())
}

/// Publishes `presence` for `number` through Kamailio's `pua` (module `pua_rpc`), which sends
/// the PUBLISH to Kamailio's own presence server and refreshes it until the next one. An
/// enabled extension's publication never expires (`-1`: refreshed); an offline one lapses after
/// an hour. Kamailio answers with the publication's entity tag once its presence server took it.
async fn publish(
    rpc: &RpcClient,
    domain: &str,
    number: &str,
    presence: Presence,
) -> Result<(), RpcError> {
    let entity = format!("sip:{number}@{domain}");
    let expires = match presence {
        Presence::Gone => "3600",
        Presence::Profile(_) => "-1",
    };
    // presentity, expires, event, content type, id (one series per extension), ETag (pua
    // keeps it), outbound proxy (the configuration's), extra headers, body.
    let params = json!([
        entity,
        expires,
        "presence",
        "application/pidf+xml",
        ".",
        ".",
        ".",
        ".",
        presence.pidf(&entity)
    ]);
    let etag = |v: &Value| v.get("SIP-ETag").is_some();
    // pua answers without an entity tag when the presence server refused the PUBLISH. A
    // publication pua restored from its table after a restart is unknown to the presence
    // server (412) and forgotten by pua then: the second attempt starts a new one.
    for _ in 0..2 {
        let answer = rpc.call("pua.publish", params.clone()).await?;
        if etag(&answer) || answer.as_array().is_some_and(|a| a.iter().any(etag)) {
            return Ok(());
        }
    }
    Err(RpcError::Refused {
        method: "pua.publish".into(),
        message: format!("its presence server did not accept the presence of {number}"),
    })
}

/// Deletes `number` from `table` (absent already is not an error).
async fn forget(rpc: &RpcClient, table: &str, number: &str) -> Result<Value, RpcError> {
    match rpc.call("htable.delete", json!([table, number])).await {
        Err(RpcError::Refused { message, .. }) if message.contains("not found") => Ok(Value::Null),
        other => other,
    }
}

/// Ends the registrations of `number` last refreshed before `before` (Unix seconds).
async fn unregister_before(rpc: &RpcClient, number: &str, before: i64) -> Result<(), RpcError> {
    let found = match rpc.call("ul.lookup", json!(["location", number])).await {
        Ok(v) => v,
        Err(RpcError::Refused { .. }) => return Ok(()), // not registered
        Err(e) => return Err(e),
    };
    let mut contacts = Vec::new();
    contacts_in(&found, &mut contacts);
    for (address, modified) in contacts {
        if modified < before {
            match rpc
                .call("ul.rm_contact", json!(["location", number, address]))
                .await
            {
                Ok(_) | Err(RpcError::Refused { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The (address, last modified) of every contact in an `ul.lookup` answer.
fn contacts_in(v: &Value, out: &mut Vec<(String, i64)>) {
    match v {
        Value::Object(map) => {
            if let (Some(Value::String(a)), Some(m)) =
                (map.get("Address"), map.get("Last-Modified"))
            {
                out.push((a.clone(), m.as_i64().unwrap_or(0)));
            }
            map.values().for_each(|c| contacts_in(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| contacts_in(c, out)),
        _ => {}
    }
}

/// Ends the registrations of `number` (none is not an error).
async fn unregister(rpc: &RpcClient, number: &str) -> Result<(), RpcError> {
    match rpc.call("ul.rm", json!(["location", number])).await {
        Ok(_) | Err(RpcError::Refused { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(profile: &str) -> Update {
        Update::Route {
            profile: profile.into(),
            display_name: "Ann".into(),
            mobile: None,
        }
    }

    fn republish(profile: &str) -> Update {
        Update::Presence {
            profile: profile.into(),
        }
    }

    /// The order the worker would send the queue in.
    fn order(q: &Queue) -> Vec<String> {
        q.pending
            .values()
            .map(|(n, w)| match w {
                Work::Routing(Update::Unregister { .. }) => format!("{n}:unregister"),
                Work::Routing(_) => format!("{n}:routing"),
                Work::Publish(p) => format!("{n}:publish:{p:?}"),
            })
            .collect()
    }

    #[test]
    fn routing_goes_before_publications_and_republications_come_last() {
        let mut q = Queue::default();
        q.take("105".into(), republish("away"));
        q.take("101".into(), route("dnd"));
        q.take("103".into(), Update::Unregister { before: 1 });
        q.publish_after("102", &route("available"));
        assert_eq!(
            order(&q),
            [
                "101:routing",
                "103:unregister",
                "102:publish:Profile(Available)",
                "105:publish:Profile(Away)"
            ]
        );
    }

    #[test]
    fn a_routing_change_replaces_waiting_publications_and_a_republication_never_overrides_it() {
        let mut q = Queue::default();
        q.take("101".into(), republish("available"));
        q.publish_after("101", &route("away"));
        q.take("101".into(), route("dnd"));
        assert_eq!(order(&q), ["101:routing"]);
        // Read before the change was queued: it must not be sent after the change's own.
        q.take("101".into(), republish("available"));
        assert_eq!(order(&q), ["101:routing"]);
        q.pending.clear();
        q.publish_after("101", &route("dnd"));
        q.take("101".into(), republish("available"));
        assert_eq!(order(&q), ["101:publish:Profile(Dnd)"]);
        q.publish_after("101", &Update::Remove);
        assert_eq!(order(&q), ["101:publish:Gone"]);
    }
}
