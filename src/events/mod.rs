//! After the hand-off: the event stream a tenant sees (and webhooks deliver),
//! and the rules about addresses that must not be mailed again.
//!
//! Owns: the event types and their stable payload ([`model`]), how a
//! permanent refusal is classed ([`bounce`]), and message streams with the
//! one-click unsubscribe ([`unsubscribe`]). Must not: perform I/O or read
//! the clock; the edge records and delivers what this module builds.

pub mod bounce;
pub mod model;
pub mod time;
pub mod unsubscribe;

pub use bounce::{BounceCategory, BounceClass, bounce_field};
pub use model::{EmailEvent, EventType};
