//! The message core: from an untrusted send request to signed MIME bytes.
//!
//! Owns address parsing ([`address`]), the request wire shape ([`request`]),
//! validation into a [`Message`] ([`validate`]), MIME composition
//! ([`compose`](mod@compose), with the one-click unsubscribe and feedback
//! loop fields of [`unsubscribe`] and [`feedback_loop`]), what tracking a
//! request asks for ([`tracking`]) and DKIM signing
//! ([`dkim`]).
//! Must not: perform I/O, read the clock or draw randomness (times and random
//! bytes are passed in), or import `worker`, so it builds and is tested natively
//! as well as for `wasm32-unknown-unknown`.

pub mod address;
pub mod compose;
pub mod dkim;
pub mod error;
pub mod feedback_loop;
pub mod handlebars;
pub mod links;
pub mod lint;
pub mod request;
pub mod tracking;
pub mod unsubscribe;
pub mod validate;

pub use address::{AddressError, Domain, EmailAddress, Mailbox};
pub use compose::{ComposeContext, compose, compose_copy, compose_with, new_message_id};
pub use dkim::{
    DkimAlgorithm, DkimIdentity, DkimKey, PendingSignature, SignatureHeader, UnsignedMessage,
    keys_for_domain, sign_message,
};
pub use error::{
    ComposeError, DkimError, DkimKeyError, FieldError, RequestError, ValidationErrors,
};
pub use feedback_loop::FeedbackLoop;
pub use request::{Disposition, SendRequest, Tag};
pub use tracking::{Consent, Tracking, TrackingMode};
pub use unsubscribe::OneClick;
pub use validate::{Attachment, CustomHeader, Limits, Message};

#[cfg(test)]
mod header_safety_tests;
