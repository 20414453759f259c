//! What travels through the queue and what happens after each delivery attempt.
//!
//! Owns: the queue message formats (versioned JSON) and the retry policy that
//! turns a classified attempt result into ack, retry-with-delay or fail.
//! Must not: open sockets, read the clock, or touch storage; times and random
//! jitter are passed in.

pub mod attempt;
pub mod health;
pub mod job;
pub mod policy;

pub use attempt::AttemptReport;
pub use health::{SessionVerdict, UpstreamHealth, upstream_order};
pub use job::{DeadLetter, DeliveryJob, QUEUE_BODY_LIMIT, QueueBody};
pub use policy::{AttemptResult, Decision, RetryPolicy};
