//! Accept: any entrance (API key, publishable key, queue producer) becomes one
//! validated, signed delivery job.
//!
//! Owns: who may send as which domain (API keys, publishable keys, queue
//! producers) and the settings that say so, per-key limits and the counting
//! rule behind them (`limits`, `quota`), request preparation (validate,
//! compose, sign), scheduled sending's rules (`schedule`: accepted forms,
//! horizon, queue delay, what an early job does), idempotency rules, the
//! commit sequence that makes an accepted message durable (over ports the
//! edge implements), and the one error shape every entrance answers with.
//! Must not: perform I/O, or decide anything about delivery.

pub mod body;
pub mod commit;
pub mod error;
pub mod idempotency;
pub mod issued_keys;
pub mod keys;
pub mod limits;
pub mod producer;
pub mod publishable;
pub mod quota;
pub mod schedule;
pub mod send;
pub mod settings;
pub mod templates;

pub use body::BodyLimit;
pub use error::{ApiError, ErrorBody};
pub use keys::{ApiKeyRecord, ApiKeys, AuthenticatedKey, KeyLimits, Lookup, Scope};
pub use producer::QueueProducer;
pub use settings::{AcceptSettings, FormSettings, SendSettings};
