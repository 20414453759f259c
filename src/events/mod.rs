//! Events after the hand-off: the one-click unsubscribe and message streams.
//!
//! Must not: perform I/O, read the clock or draw randomness.

pub mod unsubscribe;
