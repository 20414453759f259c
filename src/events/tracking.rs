//! Open and click tracking: the signed tokens of tracked links and the
//! pixel ([`token`]), the tracked HTML body ([`body`]), the settings
//! ([`settings`]), and what a hit on `/t/o/{token}` or `/t/c/{token}`
//! answers and records ([`hit`]).
//!
//! ```text
//! send:  message::tracking (opt-in, consent) ─> body::track per copy, before
//!        DKIM signing (tokens name the recipient only with consent)
//! GET  /t/o/{token}        hit::open_token ─> 43-byte GIF, no-store
//! GET|HEAD /t/c/{token}    hit::click_token ─> 302 to the signed URL only
//!        hit::record: engagement::classify ─> a count (always) and an
//!        `email.opened` / `email.clicked` event (consented recipients only)
//! ```
//!
//! Owns: those rules. Must not: perform I/O, read the clock, or look at
//! anything in a request but the token and the signals the edge passes.

pub mod body;
pub mod hit;
pub mod settings;
pub mod token;

pub use settings::TrackingSettings;
pub use token::{HitKind, TokenError, TrackingClaim, TrackingSecrets};
