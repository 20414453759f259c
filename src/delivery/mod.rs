//! What travels through the queue and what happens after each delivery attempt.
//!
//! Owns: the queue message formats (versioned JSON) and the retry policy that
//! turns a classified attempt result into ack, retry-with-delay or fail.
//! Must not: open sockets, read the clock, or touch storage; times and random
//! jitter are passed in.

pub mod attempt;
pub mod body;
pub mod health;
pub mod immediate;
pub mod job;
pub mod plan;
pub mod policy;
pub mod producer;
pub mod recipients;

pub use attempt::AttemptReport;
pub use body::{ExternalBody, QueuePlacement, place};
pub use health::{SessionVerdict, UpstreamHealth, upstream_order};
pub use job::{DeadLetter, DeliveryJob, QUEUE_BODY_LIMIT, QueueBody};
pub use policy::{AttemptResult, Decision, RetryPolicy};
pub use producer::QueueProducer;
pub use recipients::{RecipientResult, RecipientState};
