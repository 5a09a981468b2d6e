//! One LDAP connection: reads messages with `ldap3_proto`'s codec, answers each, and ends on
//! unbind, idle time-out, or a message it cannot read (after a notice of disconnection).

use crate::tree::{matches, normalize_dn, Tree, Tri};
use crate::{IDLE_TIMEOUT, UNBOUND_TIMEOUT};
use futures::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute,
    LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};
use ldap3_proto::{DisconnectionNotice, LdapCodec};
use pbx365_app::directory::bind_matches;
use pbx365_app::App;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, Framed};

/// Largest LDAP message accepted (a phone's search is a few hundred bytes).
const MAX_MESSAGE: usize = 16 * 1024;
/// OID of the simple paged results control (RFC 2696).
const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// OID of the "Who am I?" extended operation (RFC 4532).
const WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
/// How long a loaded tree is reused before the store is read again.
const TREE_TTL: Duration = Duration::from_secs(5);

/// Most bind passwords checked at once: each check is an Argon2 run (19 MiB, tens of ms), so a
/// flood of binds queues here instead of taking every core.
const CONCURRENT_BIND_CHECKS: usize = 2;

/// Failed binds from one address within [`FAILURE_WINDOW`] after which its binds are refused
/// unchecked until the window has passed (a guessed password then cannot be told from a wrong one).
pub const MAX_FAILED_BINDS: u32 = 10;
/// The window of [`MAX_FAILED_BINDS`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Addresses whose failures are remembered; past this the oldest windows are forgotten.
const MAX_TRACKED: usize = 10_000;

/// What every connection shares: the application, the tree last read from the store, the bind
/// checks' slots and the failed binds per address.
pub struct Directory {
    app: App,
    cached: Mutex<Option<(Instant, Arc<Tree>)>>,
    ttl: Duration,
    bind_checks: tokio::sync::Semaphore,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Directory {
    /// The directory of `app`'s phonebook and extensions.
    pub fn new(app: App) -> Self {
        Directory {
            app,
            cached: Mutex::new(None),
            ttl: TREE_TTL,
            bind_checks: tokio::sync::Semaphore::new(CONCURRENT_BIND_CHECKS),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` has failed too many binds lately.
    fn throttled(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(&ip)
            .is_some_and(|(since, n)| since.elapsed() < FAILURE_WINDOW && *n >= MAX_FAILED_BINDS)
    }

    /// Counts a failed bind of `ip`.
    fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        let slot = failures.entry(ip).or_insert((Instant::now(), 0));
        if slot.0.elapsed() >= FAILURE_WINDOW {
            *slot = (Instant::now(), 0);
        }
        slot.1 += 1;
    }

    /// The tree, read again when older than its time to live (phones search on every key).
    async fn tree(&self) -> Result<Arc<Tree>, String> {
        if let Some((at, tree)) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if at.elapsed() < self.ttl {
                return Ok(tree.clone());
            }
        }
        let settings = self.app.settings();
        let cards = self
            .app
            .directory_cards()
            .await
            .map_err(|e| e.to_string())?;
        let tree = Arc::new(Tree::build(
            &settings.phonebook.ldap_base_dn,
            &cards,
            &settings.contacts.default_country,
        ));
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), tree.clone()));
        Ok(tree)
    }
}

/// The codec of `ldap3_proto` behind a check of the outer BER header: a message must be a
/// SEQUENCE of at most [`MAX_MESSAGE`] bytes, so a client announcing a huge length is refused at
/// once instead of being waited for.
struct Codec(LdapCodec);

impl Decoder for Codec {
    type Item = LdapMsg;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, std::io::Error> {
        let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
        if let Some(&tag) = buf.first() {
            if tag != 0x30 {
                return Err(bad("not an LDAP message"));
            }
        }
        if let Some(&len) = buf.get(1) {
            if len & 0x80 != 0 {
                let n = usize::from(len & 0x7f);
                if n == 0 || n > 4 {
                    return Err(bad("length not allowed"));
                }
                if buf.len() >= 2 + n {
                    let declared = buf[2..2 + n]
                        .iter()
                        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                    if declared > MAX_MESSAGE {
                        return Err(bad("message too large"));
                    }
                }
            }
        }
        self.0.decode(buf)
    }
}

impl Encoder<LdapMsg> for Codec {
    type Error = std::io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> Result<(), std::io::Error> {
        self.0.encode(msg, buf)
    }
}

/// One client connection.
pub struct Session {
    directory: Arc<Directory>,
    peer: IpAddr,
    /// The DN a successful bind named ("" for anonymous), or None before any bind.
    bound: Option<String>,
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_string(),
        referral: Vec::new(),
    }
}

fn reply(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

impl Session {
    /// A connection from `peer` that has not bound yet.
    pub fn new(directory: Arc<Directory>, peer: IpAddr) -> Self {
        Session {
            directory,
            peer,
            bound: None,
        }
    }

    /// Answers messages on `io` until the client unbinds, goes quiet or breaks the protocol.
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, io: S) {
        let codec = Codec(LdapCodec::new(Some(MAX_MESSAGE), None));
        let mut framed = Framed::new(io, codec);
        loop {
            let idle = if self.bound.is_some() {
                IDLE_TIMEOUT
            } else {
                UNBOUND_TIMEOUT
            };
            let next = match tokio::time::timeout(idle, framed.next()).await {
                Err(_) => {
                    let _ = framed
                        .send(DisconnectionNotice::gen_response(
                            LdapResultCode::Unavailable,
                            "idle for too long",
                        ))
                        .await;
                    return;
                }
                Ok(None) => return,
                Ok(Some(n)) => n,
            };
            let msg = match next {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "LDAP: unreadable message");
                    let _ = framed
                        .send(DisconnectionNotice::gen_response(
                            LdapResultCode::ProtocolError,
                            "the message is not a valid LDAPv3 message",
                        ))
                        .await;
                    return;
                }
            };
            let (replies, go_on) = self.answer(msg).await;
            for r in replies {
                if framed.feed(r).await.is_err() {
                    return;
                }
            }
            if framed.flush().await.is_err() || !go_on {
                return;
            }
        }
    }

    /// The replies to one message, and whether the connection goes on.
    async fn answer(&mut self, msg: LdapMsg) -> (Vec<LdapMsg>, bool) {
        let LdapMsg { msgid, op, ctrl } = msg;
        let unwilling = |m: &str| result(LdapResultCode::UnwillingToPerform, m);
        let read_only = "this directory is read-only";
        let replies = match op {
            LdapOp::BindRequest(req) => {
                let res = self.bind(req.version, &req.dn, req.cred).await;
                vec![reply(
                    msgid,
                    LdapOp::BindResponse(LdapBindResponse {
                        res,
                        saslcreds: None,
                    }),
                )]
            }
            LdapOp::UnbindRequest => return (Vec::new(), false),
            LdapOp::SearchRequest(req) => self.search(msgid, &req, &ctrl).await,
            LdapOp::AbandonRequest(_) => Vec::new(),
            LdapOp::AddRequest(_) => vec![reply(msgid, LdapOp::AddResponse(unwilling(read_only)))],
            LdapOp::ModifyRequest(_) => {
                vec![reply(msgid, LdapOp::ModifyResponse(unwilling(read_only)))]
            }
            LdapOp::DelRequest(_) => vec![reply(msgid, LdapOp::DelResponse(unwilling(read_only)))],
            LdapOp::ModifyDNRequest(_) => {
                vec![reply(msgid, LdapOp::ModifyDNResponse(unwilling(read_only)))]
            }
            LdapOp::CompareRequest(_) => vec![reply(
                msgid,
                LdapOp::CompareResult(unwilling("compare is not supported; search instead")),
            )],
            LdapOp::ExtendedRequest(req) => {
                let (res, value) = if req.name == WHOAMI {
                    let who = match &self.bound {
                        Some(dn) if !dn.is_empty() => format!("dn:{dn}"),
                        _ => String::new(),
                    };
                    (result(LdapResultCode::Success, ""), Some(who.into_bytes()))
                } else {
                    // RFC 4511 §4.12: an extended operation the server does not know.
                    (
                        result(
                            LdapResultCode::ProtocolError,
                            "this extended operation is not supported",
                        ),
                        None,
                    )
                };
                vec![reply(
                    msgid,
                    LdapOp::ExtendedResponse(LdapExtendedResponse {
                        res,
                        name: None,
                        value,
                    }),
                )]
            }
            // A response or intermediate message from a client breaks the protocol.
            _ => {
                let notice = DisconnectionNotice::gen_response(
                    LdapResultCode::ProtocolError,
                    "a client sent a message only servers send",
                );
                return (vec![notice], false);
            }
        };
        (replies, true)
    }

    async fn bind(&mut self, version: i64, dn: &str, cred: LdapBindCred) -> LdapResult {
        self.bound = None;
        if version != 3 {
            return result(LdapResultCode::ProtocolError, "only LDAPv3 is supported");
        }
        let LdapBindCred::Simple(password) = cred else {
            return result(
                LdapResultCode::AuthMethodNotSupported,
                "only simple bind is supported",
            );
        };
        // Read as stored: a password changed on another instance counts at once.
        let Ok(p) = self.directory.app.phonebook_settings().await else {
            return result(
                LdapResultCode::Unavailable,
                "the directory cannot be read now",
            );
        };
        if dn.is_empty() && password.is_empty() {
            return if p.ldap_anonymous {
                self.bound = Some(String::new());
                result(LdapResultCode::Success, "")
            } else {
                result(
                    LdapResultCode::InappropriateAuthentication,
                    "anonymous bind is not allowed; bind with the directory's DN and password",
                )
            };
        }
        if password.is_empty() {
            // RFC 4513 §5.1.2: an unauthenticated bind is refused.
            return result(
                LdapResultCode::UnwillingToPerform,
                "a bind without a password is refused",
            );
        }
        if self.directory.throttled(self.peer) {
            return result(LdapResultCode::InvalidCredentials, "invalid credentials");
        }
        let (who, pw) = (dn.to_string(), password);
        let ok = match self.directory.bind_checks.acquire().await {
            Ok(_slot) => tokio::task::spawn_blocking(move || bind_matches(&p, &who, &pw))
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        if ok {
            self.bound = Some(dn.to_string());
            result(LdapResultCode::Success, "")
        } else {
            self.directory.failed(self.peer);
            result(LdapResultCode::InvalidCredentials, "invalid credentials")
        }
    }

    async fn search(
        &mut self,
        msgid: i32,
        req: &LdapSearchRequest,
        ctrl: &[LdapControl],
    ) -> Vec<LdapMsg> {
        let done = |res: LdapResult, ctrl: Vec<LdapControl>| LdapMsg {
            msgid,
            op: LdapOp::SearchResultDone(res),
            ctrl,
        };
        let settings = self.directory.app.settings();
        if req.base.is_empty() && req.scope == LdapSearchScope::Base {
            return vec![
                self.root_dse(msgid, req),
                done(result(LdapResultCode::Success, ""), Vec::new()),
            ];
        }
        let anonymous = || async {
            let p = self.directory.app.phonebook_settings().await;
            p.is_ok_and(|p| p.ldap_anonymous)
        };
        if self.bound.is_none() && !anonymous().await {
            return vec![done(
                result(
                    LdapResultCode::InsufficentAccessRights,
                    "bind with the directory's DN and password first",
                ),
                Vec::new(),
            )];
        }
        let mut paged = None;
        for c in ctrl {
            match c {
                LdapControl::SimplePagedResults { size, cookie } => paged = Some((*size, cookie)),
                LdapControl::Unknown {
                    criticality: true,
                    oid,
                    ..
                } => {
                    return vec![done(
                        result(
                            LdapResultCode::UnavailableCriticalExtension,
                            &format!("control {oid} is not supported"),
                        ),
                        Vec::new(),
                    )]
                }
                _ => {}
            }
        }
        let tree = match self.directory.tree().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "LDAP search: the directory could not be read");
                return vec![done(
                    result(
                        LdapResultCode::Unavailable,
                        "the directory cannot be read now",
                    ),
                    Vec::new(),
                )];
            }
        };
        let Some(scope) = tree.in_scope(&req.base, &req.scope) else {
            let mut res = result(LdapResultCode::NoSuchObject, "no such entry");
            if normalize_dn(&req.base).ends_with(&tree.nbase) {
                res.matcheddn = tree.base.clone();
            }
            return vec![done(res, Vec::new())];
        };
        let found: Vec<_> = scope
            .into_iter()
            .filter(|e| matches(e, &req.filter) == Tri::True)
            .collect();
        // The phone's size limit (0: none), never more than the server's.
        let max = settings.phonebook.ldap_max_results as usize;
        let limit = match usize::try_from(req.sizelimit) {
            Ok(n) if n > 0 => n.min(max),
            _ => max,
        };
        let (start, page_size) = match paged {
            Some((size, cookie)) => {
                let start = if cookie.is_empty() {
                    Some(0)
                } else {
                    std::str::from_utf8(cookie)
                        .ok()
                        .and_then(|c| c.strip_prefix("pbx365:"))
                        .and_then(|n| n.parse::<usize>().ok())
                };
                let Some(start) = start else {
                    return vec![done(
                        result(
                            LdapResultCode::UnwillingToPerform,
                            "the paging cookie is not valid",
                        ),
                        Vec::new(),
                    )];
                };
                // RFC 2696 §3: a size of 0 abandons the paged search.
                if size <= 0 {
                    let ctl = LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: Vec::new(),
                    };
                    return vec![done(result(LdapResultCode::Success, ""), vec![ctl])];
                }
                (start, usize::try_from(size).unwrap_or(max).min(max))
            }
            None => (0, limit),
        };
        let total = found.len().min(limit);
        let end = start.saturating_add(page_size).min(total);
        let mut out: Vec<LdapMsg> = found
            .get(start.min(end)..end)
            .unwrap_or_default()
            .iter()
            .map(|e| {
                reply(
                    msgid,
                    LdapOp::SearchResultEntry(e.result(&req.attrs, req.typesonly)),
                )
            })
            .collect();
        let truncated = found.len() > limit;
        let last_page = end >= total;
        let code = if truncated && last_page {
            LdapResultCode::SizeLimitExceeded
        } else {
            LdapResultCode::Success
        };
        let ctl = match paged {
            Some(_) => vec![LdapControl::SimplePagedResults {
                size: i64::try_from(found.len()).unwrap_or(0),
                cookie: if last_page {
                    Vec::new()
                } else {
                    format!("pbx365:{end}").into_bytes()
                },
            }],
            None => Vec::new(),
        };
        out.push(done(result(code, ""), ctl));
        out
    }

    /// The root DSE (RFC 4512 §5.1): what this server supports, readable before a bind.
    fn root_dse(&self, msgid: i32, req: &LdapSearchRequest) -> LdapMsg {
        let settings = self.directory.app.settings();
        let attr = |name: &str, vals: &[&str]| LdapPartialAttribute {
            atype: name.to_string(),
            vals: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
        };
        let all = [
            attr("objectClass", &["top"]),
            attr(
                "namingContexts",
                &[settings.phonebook.ldap_base_dn.as_str()],
            ),
            attr("supportedLDAPVersion", &["3"]),
            attr("supportedControl", &[PAGED_RESULTS]),
            attr("supportedExtension", &[WHOAMI]),
            attr("vendorName", &["pbx365"]),
        ];
        let wanted = &req.attrs;
        let every = wanted.is_empty() || wanted.iter().any(|w| w == "*" || w == "+");
        let attributes = all
            .into_iter()
            .filter(|a| every || wanted.iter().any(|w| w.eq_ignore_ascii_case(&a.atype)))
            .collect();
        reply(
            msgid,
            LdapOp::SearchResultEntry(LdapSearchResultEntry {
                dn: String::new(),
                attributes,
            }),
        )
    }
}
