//! Delivery: from a job to its upstream, and from the attempt's outcome to
//! what must be recorded and sent next.
//!
//! Owns: screening recorded recipients and suppressed ones (`screen`), the
//! test addresses that never reach an upstream (`test_addresses`),
//! upstreams with their health and failover, the API upstream kinds
//! (`transport`: send_email binding, SES, Mailgun), the record each session
//! leaves for operators (`upstream_sessions`) (and the provider header an
//! upstream's events need, `provider_header`), an attempt's outcome, the
//! retry policy, settlement (`settle`, a [`Settlement`] value the edge
//! executes), the classification of queue messages, the immediate-delivery
//! lease plan, the delivery lease and the reconciliation sweep
//! (`recovery`), and delivery's own settings.
//! Must not: open sockets, read the clock, or touch storage; times and random
//! jitter are passed in, and the edge writes and sends what these decide.

pub mod attempt;
pub mod dispatch;
pub mod email_events;
pub mod failover;
pub mod health;
pub mod immediate;
pub mod outage;
pub mod parts;
pub mod plan;
pub mod policy;
pub mod provider_header;
pub mod recipients;
pub mod recovery;
pub mod reports;
pub mod routing;
pub mod screen;
pub mod settings;
pub mod settle;
pub mod shaping;
pub mod test_addresses;
pub mod transport;
pub mod upstream;
pub mod upstream_sessions;

pub use attempt::{AttemptReport, Outgoing};
pub use failover::{Failover, Session, SessionEnd};
pub use health::{HealthChange, Notice, SessionVerdict, UpstreamHealth, upstream_order};
pub use policy::{AttemptResult, Decision, RetryPolicy, RetrySettings};
pub use recipients::{RecipientResult, RecipientState};
pub use settings::{DeliverySettings, HealthSettings};
pub use settle::{Attempt, Carrier, Event, FollowUp, Record, Settlement, settle};
pub use upstream::{Upstream, UpstreamSecurity};
pub use upstream_sessions::{
    RECENT_SESSIONS, SessionOutcome, SessionRecord, SessionTotals, UpstreamState,
};
