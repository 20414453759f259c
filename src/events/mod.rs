//! After the hand-off: the event stream a tenant sees (and webhooks deliver),
//! and the rules about addresses that must not be mailed again.
//!
//! Owns: the event types and their stable payload ([`model`]), how a
//! permanent refusal is classed ([`bounce`]), the suppression list's rules
//! ([`suppression`]: which entries apply, what a refusal adds), message
//! streams with the one-click unsubscribe ([`unsubscribe`]), who opened or
//! clicked ([`engagement`]), open and click tracking ([`tracking`]: tokens,
//! tracked bodies, what a hit records), the reputation guard ([`reputation`]), the
//! statistics' counters ([`rollup`]), the rules of webhooks ([`webhooks`]:
//! URL policy, fan-out, signing, retries), how long records are kept
//! ([`retention`]), how an address is erased ([`erasure`]) and how a log
//! line shows one ([`log_line`]). Must not: perform I/O or read the
//! clock; the edge records and delivers what this module builds.

pub mod bounce;
pub mod engagement;
pub mod erasure;
pub mod log_line;
pub mod mac;
pub mod model;
pub mod reputation;
pub mod retention;
pub mod rollup;
pub mod stats;
pub mod suppression;
pub mod time;
pub mod tracking;
pub mod unsubscribe;
pub mod webhooks;

pub use bounce::{BounceCategory, BounceClass, bounce_field};
pub use model::{EmailEvent, EventType, MessageFacts};
