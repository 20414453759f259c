//! In-memory ports for tests of the commit sequence (and of anything that
//! wraps its ports): one [`World`] holds the rows, leases, tags, queue and
//! bodies, and fails exactly the operations a test names. A world made
//! [`World::remote`] makes every call wait one poll, like a round trip to
//! the platform, and [`round_trips`] counts how many such waits a sequence
//! made one after another (calls issued together wait together).
//!
//! Must not: be compiled outside tests.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::message::Tag;
use crate::queue::{DeliveryJob, ExternalBody, QueueBody};

use super::{BodyStore, JobQueue, MessageStore, NewRow, PortError};

/// One operation on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    PutBody,
    ReleaseBody,
    Insert,
    Delete,
    ReleaseLease,
    Enqueue,
}

/// Everything the ports hold, as plain values to compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Message rows by id, with their accepted time.
    pub rows: BTreeMap<String, u64>,
    /// The job stored on each row.
    pub jobs: BTreeMap<String, DeliveryJob>,
    pub leases: BTreeMap<String, u64>,
    pub tags: BTreeMap<String, Vec<Tag>>,
    /// Warnings recorded with each row.
    pub warnings: BTreeMap<String, Vec<String>>,
    /// Queue messages with their delays.
    pub queue: Vec<(QueueBody, Option<u32>)>,
    /// Stored bodies by key.
    pub bodies: BTreeMap<String, String>,
}

/// The in-memory store, queue and body store, in one.
#[derive(Debug, Default)]
pub struct World {
    pub state: RefCell<State>,
    failing: BTreeSet<Op>,
    /// Operations that succeed this many times, then fail.
    failing_after: BTreeMap<Op, usize>,
    /// Every call, in order.
    pub calls: RefCell<Vec<Op>>,
    /// Every call waits one poll before it is answered.
    remote: bool,
}

impl World {
    /// A world where the named operations fail.
    pub fn failing(ops: &[Op]) -> Self {
        World {
            failing: ops.iter().copied().collect(),
            ..World::default()
        }
    }

    /// A world where `op` succeeds `successes` times, then fails.
    pub fn failing_after(op: Op, successes: usize) -> Self {
        World {
            failing_after: BTreeMap::from([(op, successes)]),
            ..World::default()
        }
    }

    /// This world, where `op` also always fails.
    pub fn and_failing(mut self, op: Op) -> Self {
        self.failing.insert(op);
        self
    }

    /// This world, where every call waits one poll (a round trip).
    pub fn remote(mut self) -> Self {
        self.remote = true;
        self
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    async fn call(&self, op: Op, effect: impl FnOnce(&mut State)) -> Result<(), PortError> {
        self.calls.borrow_mut().push(op);
        if self.remote {
            RoundTrip(false).await;
        }
        let earlier = self.calls.borrow().iter().filter(|c| **c == op).count() - 1;
        let exhausted = self.failing_after.get(&op).is_some_and(|n| earlier >= *n);
        if self.failing.contains(&op) || exhausted {
            return Err(PortError(format!("{op:?} failed")));
        }
        effect(&mut self.state.borrow_mut());
        Ok(())
    }
}

/// Waits one poll: pending the first time, ready the next.
struct RoundTrip(bool);

impl Future for RoundTrip {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl MessageStore for World {
    async fn insert(&self, row: &NewRow<'_>) -> Result<(), PortError> {
        let job = row.job;
        self.call(Op::Insert, |s| {
            s.rows.insert(job.id.clone(), row.accepted_at_ms);
            s.jobs.insert(job.id.clone(), job.clone());
            if !job.tags.is_empty() {
                s.tags.insert(job.id.clone(), job.tags.clone());
            }
            if let Some(until) = row.lease_until_ms {
                s.leases.insert(job.id.clone(), until);
            }
            if !row.warnings.is_empty() {
                s.warnings.insert(job.id.clone(), row.warnings.to_vec());
            }
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<(), PortError> {
        self.call(Op::Delete, |s| {
            s.rows.remove(id);
            s.jobs.remove(id);
            s.tags.remove(id);
            s.warnings.remove(id);
        })
        .await
    }

    async fn release_lease(&self, id: &str) -> Result<(), PortError> {
        self.call(Op::ReleaseLease, |s| {
            s.leases.remove(id);
        })
        .await
    }
}

impl JobQueue for World {
    async fn enqueue(&self, body: &QueueBody, delay_seconds: Option<u32>) -> Result<(), PortError> {
        self.call(Op::Enqueue, |s| s.queue.push((body.clone(), delay_seconds)))
            .await
    }
}

impl BodyStore for World {
    async fn put(&self, body: &ExternalBody) -> Result<(), PortError> {
        self.call(Op::PutBody, |s| {
            s.bodies.insert(body.key.clone(), body.mime.clone());
        })
        .await
    }

    async fn release(&self, key: &str) -> Result<(), PortError> {
        self.call(Op::ReleaseBody, |s| {
            s.bodies.remove(key);
        })
        .await
    }
}

/// Runs a future over in-memory ports to its end. They never wait, so one
/// poll finishes it; a future that does wait is a bug in the test.
pub fn finish<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a port over memory waited"),
    }
}

/// Runs a future over remote in-memory ports to its end, and counts the
/// polls it stayed pending: the round trips it waited for one after another.
pub fn round_trips<F: Future>(future: F) -> (F::Output, usize) {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut waits = 0;
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return (output, waits),
            Poll::Pending => waits += 1,
        }
        assert!(waits < 1000, "a sequence that never ends");
    }
}
