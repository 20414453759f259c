//! The commit sequence: how a signed message becomes accepted, durably, or
//! leaves nothing behind.
//!
//! Nothing is answered `202` before the message is stored and its job is on
//! the queue. The request waits for one storage round trip, not two in a row:
//!
//! 1. a body too large for a queue message is put in the body store first
//!    (see [`crate::queue::place`]; the job names it, so it must exist before
//!    any consumer can read the job);
//! 2. then, issued together: the message row is inserted (status `queued`,
//!    or `scheduled` with its due time when it is to go out later,
//!    with its `accepted` event, its tags, its warnings, in immediate mode its
//!    lease, and the job that delivers it, in one atomic write), and the job
//!    is enqueued (in immediate mode, the safety job with its delay). The
//!    job stays on the row until the message is final, so a queue message
//!    that is lost later is re-enqueued from it by the reconciliation sweep
//!    (`delivery::recovery`).
//!
//! Because the two writes race, a consumer can receive a job before its row
//! is visible. It neither fails nor drops that job: it looks again after a
//! short delay, without counting an attempt, for at most
//! [`crate::delivery::recovery::ROW_WAIT_SECONDS`] after the job's
//! acceptance, and then refuses it as never accepted
//! (`delivery::recovery::verdict`). That is also what keeps the failure
//! rules: when the row write fails but the enqueue went through, the caller
//! is answered `503` and the job on the queue finds no row, so it is refused
//! after the bounded wait and sends nothing; the caller's retry is the only
//! copy that goes out. When the enqueue fails and the row was written, the
//! row is deleted (with its stored job), so the sweep has nothing to send.
//! The lease of immediate mode is written with the row, so its safety job
//! (which waits its delay anyway) can never find the message unleased.
//!
//! When a step fails, what was done is undone in reverse (release the lease,
//! delete the row with its stored job, release the body) and the caller gets
//! `503`: it retries with a fresh id, or with its `Idempotency-Key`. A failed
//! row write is also followed by a delete, best effort: a write reported
//! failed may have been applied, and a row left behind would be delivered by
//! the sweep. Undoing is best effort, and a [`CommitFailure`] lists what it
//! could not remove.
//!
//! The residue that matters is a row whose delete failed right after the
//! enqueue failed: it keeps its stored job, so the sweep delivers it
//! although the caller was told `503`, and the caller's retry sends a second
//! copy. It takes two failures in a row (the enqueue, then a D1 write). A
//! job without a row is refused by the consumer; a leftover body or lease is
//! harmless: nothing refers to it.
//!
//! Owns: the order of the steps and what undoing each takes, the ports they
//! run on ([`MessageStore`], [`JobQueue`], [`BodyStore`]), and the failure the
//! caller is answered. Must not: perform I/O itself; the edge implements the
//! ports over D1, Queues and R2, and tests implement them in memory.
//!
//! The ports are async so the edge can await the platform, but nothing here
//! depends on a runtime: the in-memory ports finish at once (or after a
//! counted number of polls, to count round trips) and the tests poll the
//! sequence to its end.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use crate::queue::{DeliveryJob, ExternalBody, QueueBody, place};

use super::error::ApiError;
use super::schedule::queue_delay;

/// A storage call that failed, in the words of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError(pub String);

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message row to write: everything the accept path records, in one
/// atomic write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRow<'a> {
    /// The queue body's job (the MIME, or the body's key when stored
    /// apart), stored on the row; its tags are the row's tags.
    pub job: &'a DeliveryJob,
    /// The row's time.
    pub accepted_at_ms: u64,
    /// Immediate mode: the delivery lease, taken with the row.
    pub lease_until_ms: Option<u64>,
    /// Warnings to record as events beside the `accepted` one.
    pub warnings: &'a [String],
    /// A scheduled message: when it is due (Unix seconds). The row is then
    /// `scheduled` rather than `queued`, and its job waits on the queue.
    pub send_at: Option<u64>,
}

/// Message records: the row with its lease, tags and events.
pub trait MessageStore {
    /// Inserts the row as `queued` with its `accepted` event, its warnings,
    /// its tags, its lease when given, and its job, atomically.
    fn insert(&self, row: &NewRow<'_>) -> impl Future<Output = Result<(), PortError>>;
    /// Deletes the row, its stored job and its events (nothing when there
    /// is no such row).
    fn delete(&self, id: &str) -> impl Future<Output = Result<(), PortError>>;
    /// Lets go of the lease.
    fn release_lease(&self, id: &str) -> impl Future<Output = Result<(), PortError>>;
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
    /// Warnings the message was accepted with (shown in its status).
    pub warnings: Vec<String>,
    /// When a scheduled message is due (Unix seconds): its job is enqueued
    /// with the rest of the wait, at most the queue's longest delay (see
    /// `accept::schedule`). Never set with a lease.
    pub send_at: Option<u64>,
}

/// The step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Putting a large body in the body store.
    Body,
    /// Inserting the message row (with its lease in immediate mode).
    Row,
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
    /// The job is on the queue but its row was not written: the consumer
    /// waits for the row a bounded time, then refuses the job unsent.
    JobWithoutRow(String),
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
            Step::Row => "could not store the message",
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

/// Runs two port calls at once and waits for both: their round trips
/// overlap, so the caller waits for the slower one only.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut got_a, mut got_b) = (None, None);
    poll_fn(|cx| {
        if got_a.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            got_a = Some(v);
        }
        if got_b.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            got_b = Some(v);
        }
        match (got_a.take(), got_b.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                got_a = x;
                got_b = y;
                Poll::Pending
            }
        }
    })
    .await
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
        warnings,
        send_at,
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
    let row = NewRow {
        job: &job,
        accepted_at_ms,
        lease_until_ms: lease.map(|l| l.until_ms),
        warnings: &warnings,
        send_at,
    };
    let delay = match send_at {
        Some(due) => Some(queue_delay(due, accepted_at_ms)),
        None => lease.map(|l| l.safety_delay_seconds),
    };
    let body = QueueBody::deliver(job.clone());
    // One round trip: the row and the job are written together.
    let (stored, enqueued) = join(store.insert(&row), queue.enqueue(&body, delay)).await;
    match (stored, enqueued) {
        (Ok(()), Ok(())) => {}
        (Ok(()), Err(e)) => {
            done.row = true;
            done.lease = lease.is_some();
            return Err(done.fail(Step::Enqueue, e, store, bodies).await);
        }
        (Err(e), enqueued) => {
            // A write reported failed may have gone through: withdraw it,
            // best effort, so the sweep cannot deliver a refused message.
            if lease.is_some() {
                let _ = store.release_lease(&job.id).await;
            }
            let _ = store.delete(&job.id).await;
            let mut failure = done.fail(Step::Row, e, store, bodies).await;
            if enqueued.is_ok() {
                failure.residue.push(Residue::JobWithoutRow(job.id.clone()));
            }
            return Err(failure);
        }
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
