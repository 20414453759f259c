//! Webhooks: the events of a tenant's messages, sent to the HTTPS endpoints
//! it registered, signed per the Standard Webhooks specification.
//!
//! Owns the rules: the endpoint URL policy (`url_policy`), which endpoints
//! an event goes to (`endpoint`), the signature and its headers (`signing`),
//! the queue task that carries one event to one endpoint (`task`), and what
//! an attempt's answer means and when the next one is due (`schedule`).
//! Must not: perform I/O, read the clock or draw randomness: the edge stores
//! endpoints, sends the requests and passes the time and random bytes in.

pub mod endpoint;
pub mod schedule;
pub mod settings;
pub mod signing;
pub mod task;
pub mod test_event;
pub mod url_policy;

pub use schedule::{Answer, RetrySchedule, Verdict, verdict};
pub use settings::WebhookSettings;
pub use signing::SigningSecret;
pub use task::WebhookTask;
