//! Routing changes pushed to Kamailio the moment they happen (SPEC §8: within 100 ms).
//!
//! One worker per pbx365 process takes changes from a queue, keeps only the newest per extension,
//! and sends them over JSON-RPC. When Kamailio is down or refuses, the changes stay queued and
//! are retried (1 s, doubling to 10 s), and [`SipPusher::status`] says so for the console: no
//! change is dropped. Kamailio that (re)starts loads everything from the store, so the queue
//! only bridges the gap while it runs.

use crate::rpc::{RpcClient, RpcError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What Kamailio should hold for one extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// An enabled extension: its profile and display name.
    Route {
        /// `available`, `dnd`, … (as stored).
        profile: String,
        /// Put on the calls it places (as stored: Kamailio escapes it for the header).
        display_name: String,
        /// Its mobile number, for the `mobile` route.
        mobile: Option<String>,
    },
    /// A disabled or deleted extension: not routable, registrations ended.
    Remove,
    /// Its registrations made before `before` (Unix seconds) end: its secret changed then, so
    /// only a phone with the new secret registers after it. Routing unchanged.
    Unregister {
        /// When the secret changed.
        before: i64,
    },
}

impl Update {
    /// Route and Remove replace each other; Unregister is kept beside them.
    fn slot(&self) -> u8 {
        match self {
            Update::Route { .. } | Update::Remove => 0,
            Update::Unregister { .. } => 1,
        }
    }
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
}

impl SipPusher {
    /// Starts the worker on the current Tokio runtime; it ends when every clone is dropped.
    pub fn start(rpc: RpcClient) -> SipPusher {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(SipStatus::default()));
        tokio::spawn(work(rpc.clone(), rx, status.clone()));
        SipPusher { tx, status, rpc }
    }

    /// Kamailio's JSON-RPC this pusher sends to.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
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

async fn work(
    rpc: RpcClient,
    mut rx: mpsc::UnboundedReceiver<(String, Update)>,
    status: Arc<Mutex<SipStatus>>,
) {
    let mut pending: BTreeMap<(String, u8), Update> = BTreeMap::new();
    let mut backoff = Duration::from_secs(1);
    let set_status = |pending: usize, error: Option<String>, pushed: u64| {
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        s.pending = pending;
        s.pushed += pushed;
        s.last_error = error;
    };
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some((n, u)) => {
                    pending.insert((n, u.slot()), u);
                }
                None => return,
            }
        }
        while let Ok((n, u)) = rx.try_recv() {
            pending.insert((n, u.slot()), u);
        }
        let mut failure = None;
        let mut pushed = 0;
        let keys: Vec<_> = pending.keys().cloned().collect();
        for key in keys {
            let update = pending[&key].clone();
            match send(&rpc, &key.0, &update).await {
                Ok(()) => {
                    pending.remove(&key);
                    pushed += 1;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => {
                backoff = Duration::from_secs(1);
                set_status(pending.len(), None, pushed);
            }
            Some(e) => {
                // Logged once per outage (the status page shows it all along).
                if backoff == Duration::from_secs(1) {
                    tracing::warn!(error = %e, waiting = pending.len(), "Kamailio did not take a routing change; retrying until it does");
                }
                set_status(pending.len(), Some(e.to_string()), pushed);
                // New changes join the queue while we wait; the retry sends them all.
                let deadline = tokio::time::Instant::now() + backoff;
                loop {
                    tokio::select! {
                        got = rx.recv() => match got {
                            Some((n, u)) => { pending.insert((n, u.slot()), u); }
                            None => return,
                        },
                        _ = tokio::time::sleep_until(deadline) => break,
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One update as JSON-RPC calls.
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
    }
    Ok(())
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
