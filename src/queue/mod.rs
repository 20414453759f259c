//! The contract between stages: what travels through the queue and where a
//! message body waits for delivery.
//!
//! Owns: the versioned queue body formats (delivery jobs, producer sends, dead
//! letters), the seals on the bodies edgerelay writes for itself, the placement of bodies (inline or in the bucket), and the
//! statuses and event kinds every stage records.
//! Must not: perform I/O, or decide anything about delivery.

pub mod body;
pub mod job;
pub mod records;
pub mod seal;

pub use body::{ExternalBody, QueuePlacement, place};
pub use job::{
    DEFAULT_STREAM, DeadLetter, DeliveryJob, QUEUE_BODY_LIMIT, QUEUE_MAX_DELAY_SECONDS, QueueBody,
    Unreadable,
};
pub use records::{EventKind, MessageStatus};
pub use seal::QueueSecrets;
