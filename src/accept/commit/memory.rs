//! In-memory ports for tests of the commit sequence (and of anything that
//! wraps its ports): one [`World`] holds the rows, leases, tags, queue and
//! bodies, and fails exactly the operations a test names.
//!
//! Must not: be compiled outside tests.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::message::Tag;
use crate::queue::{DeliveryJob, ExternalBody, QueueBody};

use super::{BodyStore, JobQueue, MessageStore, PortError};

/// One operation on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    PutBody,
    ReleaseBody,
    Insert,
    Delete,
    TakeLease,
    ReleaseLease,
    Tag,
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

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    fn call(&self, op: Op, effect: impl FnOnce(&mut State)) -> Result<(), PortError> {
        self.calls.borrow_mut().push(op);
        let earlier = self.calls.borrow().iter().filter(|c| **c == op).count() - 1;
        let exhausted = self.failing_after.get(&op).is_some_and(|n| earlier >= *n);
        if self.failing.contains(&op) || exhausted {
            return Err(PortError(format!("{op:?} failed")));
        }
        effect(&mut self.state.borrow_mut());
        Ok(())
    }
}

impl MessageStore for World {
    async fn insert(&self, job: &DeliveryJob, accepted_at_ms: u64) -> Result<(), PortError> {
        self.call(Op::Insert, |s| {
            s.rows.insert(job.id.clone(), accepted_at_ms);
            s.jobs.insert(job.id.clone(), job.clone());
        })
    }

    async fn delete(&self, id: &str) -> Result<(), PortError> {
        self.call(Op::Delete, |s| {
            s.rows.remove(id);
            s.jobs.remove(id);
            s.tags.remove(id);
        })
    }

    async fn take_lease(&self, id: &str, until_ms: u64) -> Result<(), PortError> {
        self.call(Op::TakeLease, |s| {
            s.leases.insert(id.to_string(), until_ms);
        })
    }

    async fn release_lease(&self, id: &str) -> Result<(), PortError> {
        self.call(Op::ReleaseLease, |s| {
            s.leases.remove(id);
        })
    }

    async fn tag(&self, id: &str, tags: &[Tag]) -> Result<(), PortError> {
        self.call(Op::Tag, |s| {
            s.tags.insert(id.to_string(), tags.to_vec());
        })
    }
}

impl JobQueue for World {
    async fn enqueue(&self, body: &QueueBody, delay_seconds: Option<u32>) -> Result<(), PortError> {
        self.call(Op::Enqueue, |s| s.queue.push((body.clone(), delay_seconds)))
    }
}

impl BodyStore for World {
    async fn put(&self, body: &ExternalBody) -> Result<(), PortError> {
        self.call(Op::PutBody, |s| {
            s.bodies.insert(body.key.clone(), body.mime.clone());
        })
    }

    async fn release(&self, key: &str) -> Result<(), PortError> {
        self.call(Op::ReleaseBody, |s| {
            s.bodies.remove(key);
        })
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
