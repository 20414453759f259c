//! The commit sequence: how a signed message becomes accepted, durably, or
//! leaves nothing behind.
//!
//! Nothing is answered `202` before the message is stored and its job is on
//! the queue. In order:
//!
//! 1. a body too large for a queue message is put in the body store (see
//!    [`crate::queue::place`]);
//! 2. the message row is inserted (status `queued`, with its `accepted` event
//!    and the job that delivers it, in one atomic write): the job stays on
//!    the row until the message is final, so a queue message that is lost
//!    later is re-enqueued from it by the reconciliation sweep
//!    (`delivery::recovery`);
//! 3. in immediate mode, the row's lease is taken, before its safety job
//!    exists (so the job can never find the message unleased too early);
//! 4. the tags are recorded: metadata for listing, so a failure here does
//!    not refuse the message;
//! 5. the job is enqueued (in immediate mode, the safety job with its delay).
//!
//! When a step fails, the steps before it are undone in reverse (release the
//! lease, delete the row with its stored job, release the body) and the
//! caller gets `503`: it retries with a fresh id, or with its
//! `Idempotency-Key`. Undoing is best effort, and a [`CommitFailure`] lists
//! what it could not remove.
//!
//! An enqueue can fail ambiguously: the platform reports an error although
//! the queue message was sent. That job then finds no row, and the consumer
//! refuses a job whose message has no row (`delivery::recovery::verdict`),
//! so the caller's retry is the only copy that goes out. The residue that
//! matters is a row whose delete failed right after the enqueue (or lease)
//! failed: it keeps its stored job, so the sweep delivers it although the
//! caller was told `503`, and the caller's retry sends a second copy. It
//! takes two failures in a row (the enqueue, then a D1 write). A leftover
//! body or lease is harmless: nothing refers to it.
//!
//! Owns: the order of the steps and what undoing each takes, the ports they
//! run on ([`MessageStore`], [`JobQueue`], [`BodyStore`]), and the failure the
//! caller is answered. Must not: perform I/O itself; the edge implements the
//! ports over D1, Queues and R2, and tests implement them in memory.
//!
//! The ports are async so the edge can await the platform, but nothing here
//! depends on a runtime: the in-memory ports finish at once and the tests
//! poll the sequence to its end in one go.

use std::fmt;
use std::future::Future;

use crate::message::Tag;
use crate::queue::{DeliveryJob, ExternalBody, QueueBody, place};

use super::error::ApiError;

/// A storage call that failed, in the words of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError(pub String);

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Message records: the row, its lease and its tags.
pub trait MessageStore {
    /// Inserts the row as `queued` with its `accepted` event and `job` (the
    /// queue body's job: the MIME, or the body's key when stored apart),
    /// atomically.
    fn insert(
        &self,
        job: &DeliveryJob,
        accepted_at_ms: u64,
    ) -> impl Future<Output = Result<(), PortError>>;
    /// Deletes the row, its stored job and its events.
    fn delete(&self, id: &str) -> impl Future<Output = Result<(), PortError>>;
    /// Takes the immediate-delivery lease until `until_ms`.
    fn take_lease(&self, id: &str, until_ms: u64) -> impl Future<Output = Result<(), PortError>>;
    /// Lets go of the lease.
    fn release_lease(&self, id: &str) -> impl Future<Output = Result<(), PortError>>;
    /// Records the message's tags (never called with none).
    fn tag(&self, id: &str, tags: &[Tag]) -> impl Future<Output = Result<(), PortError>>;
}

/// The jobs queue.
pub trait JobQueue {
    /// Sends one queue message, delayed by `delay_seconds` when given.
    fn enqueue(
        &self,
        body: &QueueBody,
        delay_seconds: Option<u32>,
    ) -> impl Future<Output = Result<(), PortError>>;
}

/// Where bodies too large for a queue message wait.
pub trait BodyStore {
    fn put(&self, body: &ExternalBody) -> impl Future<Output = Result<(), PortError>>;
    fn release(&self, key: &str) -> impl Future<Output = Result<(), PortError>>;
}

/// Immediate mode: the lease the request holds while it delivers, and how
/// long the safety job waits (see `delivery::immediate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub until_ms: u64,
    pub safety_delay_seconds: u32,
}

/// A signed message to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The signed job, body included.
    pub job: DeliveryJob,
    /// When the request was accepted (the row's time).
    pub accepted_at_ms: u64,
    /// Set in immediate mode.
    pub lease: Option<Lease>,
}

/// The step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Putting a large body in the body store.
    Body,
    /// Inserting the message row.
    Row,
    /// Taking the immediate-delivery lease.
    Lease,
    /// Sending the job to the queue.
    Enqueue,
}

/// Something undoing could not remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Residue {
    /// The row stays `queued` with its stored job: the sweep delivers it,
    /// although the caller was answered `503`.
    RowNotRemoved(String),
    /// The lease row stays until it runs out; nothing reads it.
    Lease(String),
    /// The body object stays in the bucket (a lifecycle rule can sweep it).
    Body(String),
}

/// Why a message was not accepted, and what, if anything, stayed behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFailure {
    pub step: Step,
    pub error: PortError,
    /// Empty when undoing succeeded: then nothing of the message remains.
    pub residue: Vec<Residue>,
}

impl From<CommitFailure> for ApiError {
    /// `503`: nothing was accepted, the caller retries.
    fn from(f: CommitFailure) -> Self {
        let what = match f.step {
            Step::Body => "could not store the message body",
            Step::Row | Step::Lease => "could not store the message",
            Step::Enqueue => "could not enqueue the message",
        };
        ApiError::unavailable(format!("{what}: {}", f.error))
    }
}

/// What has been done so far, and so what undoing takes.
struct Done<'a> {
    id: &'a str,
    body: Option<&'a str>,
    row: bool,
    lease: bool,
}

impl Done<'_> {
    /// Undoes everything done, newest first; returns what could not be undone.
    async fn undo(&self, store: &impl MessageStore, bodies: &impl BodyStore) -> Vec<Residue> {
        let mut residue = Vec::new();
        if self.lease && store.release_lease(self.id).await.is_err() {
            residue.push(Residue::Lease(self.id.to_string()));
        }
        if self.row && store.delete(self.id).await.is_err() {
            residue.push(Residue::RowNotRemoved(self.id.to_string()));
        }
        if let Some(key) = self.body
            && bodies.release(key).await.is_err()
        {
            residue.push(Residue::Body(key.to_string()));
        }
        residue
    }

    async fn fail(
        &self,
        step: Step,
        error: PortError,
        store: &impl MessageStore,
        bodies: &impl BodyStore,
    ) -> CommitFailure {
        CommitFailure {
            step,
            error,
            residue: self.undo(store, bodies).await,
        }
    }
}

/// Runs the sequence. On success returns the job as the request goes on with
/// it: the whole signed body, and the body's key when it was stored apart.
pub async fn commit(
    store: &impl MessageStore,
    queue: &impl JobQueue,
    bodies: &impl BodyStore,
    order: Order,
) -> Result<DeliveryJob, CommitFailure> {
    let Order {
        job: whole,
        accepted_at_ms,
        lease,
    } = order;
    let placed = place(DeliveryJob {
        safety_net: lease.is_some(),
        ..whole.clone()
    });
    let job = placed.job;
    let mut done = Done {
        id: &job.id,
        body: None,
        row: false,
        lease: false,
    };

    if let Some(external) = &placed.external {
        if let Err(e) = bodies.put(external).await {
            return Err(done.fail(Step::Body, e, store, bodies).await);
        }
        done.body = Some(&external.key);
    }
    if let Err(e) = store.insert(&job, accepted_at_ms).await {
        return Err(done.fail(Step::Row, e, store, bodies).await);
    }
    done.row = true;
    if let Some(lease) = lease {
        if let Err(e) = store.take_lease(&job.id, lease.until_ms).await {
            return Err(done.fail(Step::Lease, e, store, bodies).await);
        }
        done.lease = true;
    }
    if !job.tags.is_empty() {
        // Tags are metadata: without them the message is still accepted.
        let _ = store.tag(&job.id, &job.tags).await;
    }
    let delay = lease.map(|l| l.safety_delay_seconds);
    if let Err(e) = queue.enqueue(&QueueBody::deliver(job.clone()), delay).await {
        return Err(done.fail(Step::Enqueue, e, store, bodies).await);
    }
    Ok(DeliveryJob {
        body_ref: job.body_ref,
        ..whole
    })
}

/// Commits the copies of one message (one per recipient, see
/// `accept::send`) in order, each by [`commit`]. All are accepted, or none:
/// when one fails, the copies committed before it are withdrawn (row and
/// stored body removed; their queue messages then find no row and are
/// refused), and what could not be withdrawn is added to the residue.
pub async fn commit_copies(
    store: &impl MessageStore,
    queue: &impl JobQueue,
    bodies: &impl BodyStore,
    orders: Vec<Order>,
) -> Result<Vec<DeliveryJob>, CommitFailure> {
    let mut committed: Vec<DeliveryJob> = Vec::with_capacity(orders.len());
    for order in orders {
        match commit(store, queue, bodies, order).await {
            Ok(job) => committed.push(job),
            Err(mut failure) => {
                for job in committed.iter().rev() {
                    let done = Done {
                        id: &job.id,
                        body: job.body_ref.as_deref(),
                        row: true,
                        lease: false,
                    };
                    failure.residue.extend(done.undo(store, bodies).await);
                }
                return Err(failure);
            }
        }
    }
    Ok(committed)
}

#[cfg(test)]
pub mod memory;
#[cfg(test)]
mod tests;
