//! The bridge to Kamailio, pbx365's SIP engine (SPEC §8): pbx365 implements no SIP itself.
//!
//! - [`digest`]: SIP secrets and the digest hashes (HA1, HA1b) that are all the store keeps;
//! - [`config`]: the `kamailio.cfg` of a deployment (`pbx365 sip config`);
//! - [`rpc`]: Kamailio's JSON-RPC over HTTP;
//! - [`presence`]: a profile as the PIDF document phones watching an extension read;
//! - [`pusher`]: routing and presence changes (profiles, disabled extensions) pushed to
//!   Kamailio at once, retried until it takes them, with a status for the console;
//! - [`supervisor`]: Kamailio as a child of `pbx365 serve`/`demo`, restarted when it dies.

pub mod config;
pub mod digest;
pub mod presence;
pub mod pusher;
pub mod rpc;
pub mod supervisor;

pub use config::KamailioConfig;
pub use pusher::{SipPusher, SipStatus};
pub use rpc::{RpcClient, RpcError};
pub use supervisor::Supervisor;
