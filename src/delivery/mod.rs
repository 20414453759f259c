//! What travels through the queue and what happens after each delivery attempt.
//!
//! Owns: the queue message formats (versioned JSON) and the retry policy that
//! turns a classified attempt result into ack, retry-with-delay or fail.
//! Must not: open sockets, read the clock, or touch storage; times and random
//! jitter are passed in.

pub mod attempt;
pub mod health;
pub mod immediate;
pub mod plan;
pub mod policy;
pub mod recipients;
pub mod upstream;
pub mod upstream_settings;

pub use attempt::AttemptReport;
pub use health::{SessionVerdict, UpstreamHealth, upstream_order};
pub use policy::{AttemptResult, Decision, RetryPolicy, RetrySettings};
pub use recipients::{RecipientResult, RecipientState};
pub use upstream::{Upstream, UpstreamSecurity};
pub use upstream_settings::HealthSettings;
