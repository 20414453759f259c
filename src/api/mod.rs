//! The HTTP API's rules, without HTTP plumbing: who is calling (API keys),
//! what a request must look like, and how every error maps to a status code and
//! a JSON body. The edge glue turns these into `worker::Response`s.
//!
//! Must not: perform I/O, or decide anything about delivery.

pub mod accept_fault;
pub mod auth;
pub mod batch;
pub mod bench;
pub mod cors;
pub mod delivery_mode;
pub mod error;
pub mod idempotency;
pub mod listing;
pub mod publishable;
pub mod send;

pub use auth::{ApiKeys, AuthenticatedKey};
pub use error::{ApiError, ErrorBody};
