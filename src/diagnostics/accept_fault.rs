//! `FAULT_ACCEPT`, for tests only: makes the accept path fail at one step, so
//! the end-to-end tests can prove that a failed store or enqueue leaves
//! nothing behind and that the caller's retry then succeeds.
//!
//! `store` or `enqueue` fails that step for every request; `store:N` or
//! `enqueue:N` only for the first N (counted per isolate). `sent` is an
//! ambiguous enqueue: the job is sent, then the send reports a failure (the
//! platform's error after the message went through), so the caller is
//! answered `503` while a job without a row is on the queue. The fault is a
//! wrapper around the commit sequence's ports ([`Faulty`]): the sequence
//! itself, and every port the edge implements, are the release build's.
//! Owns: the switch's format, the count of faults injected, the wrapper.
//! Must not: perform I/O; the edge keeps one [`AcceptFaults`] per isolate.

use std::cell::Cell;

use crate::accept::commit::{BodyStore, JobQueue, MessageStore, NewRow, PortError};
use crate::config::ConfigSource;
use crate::queue::{ExternalBody, QueueBody};

/// The accept step a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStep {
    /// Writing the message row to D1.
    Store,
    /// Sending the job to the queue.
    Enqueue,
    /// Sending the job, which goes through, but is reported failed.
    Sent,
}

/// A parsed `FAULT_ACCEPT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptFault {
    pub step: AcceptStep,
    /// How many requests fail; `None`: all of them.
    pub times: Option<u32>,
}

impl AcceptFault {
    /// Reads the variable; anything unreadable injects nothing.
    pub fn parse(value: &str) -> Option<AcceptFault> {
        let (step, times) = match value.trim().split_once(':') {
            Some((step, n)) => (step, Some(n.trim().parse().ok()?)),
            None => (value.trim(), None),
        };
        let step = match step {
            "store" => AcceptStep::Store,
            "enqueue" => AcceptStep::Enqueue,
            "sent" => AcceptStep::Sent,
            _ => return None,
        };
        Some(AcceptFault { step, times })
    }

    /// Whether the request reaching `step` after `injected` earlier faults fails.
    pub fn strikes(&self, step: AcceptStep, injected: u32) -> bool {
        self.step == step && self.times.is_none_or(|n| injected < n)
    }
}

/// The variable.
pub const VARIABLE: &str = "FAULT_ACCEPT";

/// `FAULT_ACCEPT` as read once per isolate, and how many faults it has
/// injected so far.
#[derive(Debug, Default)]
pub struct AcceptFaults {
    fault: Option<AcceptFault>,
    injected: Cell<u32>,
}

impl AcceptFaults {
    /// Reads the variable; anything unreadable injects nothing.
    pub fn from_source(src: &impl ConfigSource) -> Self {
        AcceptFaults {
            fault: src.get(VARIABLE).and_then(|v| AcceptFault::parse(&v)),
            injected: Cell::new(0),
        }
    }

    /// The error this call of `step` fails with, if the switch says so.
    fn strike(&self, step: AcceptStep) -> Result<(), PortError> {
        let injected = self.injected.get();
        match self.fault {
            Some(fault) if fault.strikes(step, injected) => {
                self.injected.set(injected + 1);
                Err(PortError(format!("{VARIABLE}: injected {step:?} failure")))
            }
            _ => Ok(()),
        }
    }

    /// `ports` with this switch's faults injected.
    pub fn wrap<'a, P>(&'a self, ports: &'a P) -> Faulty<'a, P> {
        Faulty {
            inner: ports,
            faults: self,
        }
    }
}

/// Ports that fail where `FAULT_ACCEPT` says and otherwise pass every call on.
pub struct Faulty<'a, P> {
    inner: &'a P,
    faults: &'a AcceptFaults,
}

impl<P: MessageStore> MessageStore for Faulty<'_, P> {
    async fn insert(&self, row: &NewRow<'_>) -> Result<(), PortError> {
        self.faults.strike(AcceptStep::Store)?;
        self.inner.insert(row).await
    }

    async fn delete(&self, id: &str) -> Result<(), PortError> {
        self.inner.delete(id).await
    }

    async fn release_lease(&self, id: &str) -> Result<(), PortError> {
        self.inner.release_lease(id).await
    }
}

impl<P: JobQueue> JobQueue for Faulty<'_, P> {
    async fn enqueue(&self, body: &QueueBody, delay_seconds: Option<u32>) -> Result<(), PortError> {
        self.faults.strike(AcceptStep::Enqueue)?;
        self.inner.enqueue(body, delay_seconds).await?;
        self.faults.strike(AcceptStep::Sent)
    }
}

impl<P: BodyStore> BodyStore for Faulty<'_, P> {
    async fn put(&self, body: &ExternalBody) -> Result<(), PortError> {
        self.inner.put(body).await
    }

    async fn release(&self, key: &str) -> Result<(), PortError> {
        self.inner.release(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accept::commit::memory::{World, finish};
    use crate::accept::commit::{Order, Residue, Step, commit};
    use crate::queue::DeliveryJob;

    #[test]
    fn parse_table() {
        use AcceptStep::*;
        let table = [
            ("store", Some((Store, None))),
            ("enqueue", Some((Enqueue, None))),
            (" enqueue:2 ", Some((Enqueue, Some(2)))),
            ("store:0", Some((Store, Some(0)))),
            ("sent:1", Some((Sent, Some(1)))),
            ("", None),
            ("queue", None),
            ("store:x", None),
            ("store:-1", None),
        ];
        for (input, expected) in table {
            let got = AcceptFault::parse(input).map(|f| (f.step, f.times));
            assert_eq!(got, expected, "{input:?}");
        }
    }

    #[test]
    fn a_counted_fault_stops_after_its_count() {
        let f = AcceptFault::parse("enqueue:2").unwrap();
        let hits: Vec<bool> = (0..4).map(|n| f.strikes(AcceptStep::Enqueue, n)).collect();
        assert_eq!(hits, [true, true, false, false]);
        assert!(!f.strikes(AcceptStep::Store, 0));
        let always = AcceptFault::parse("store").unwrap();
        assert!((0..100).all(|n| always.strikes(AcceptStep::Store, n)));
    }

    fn order(id: &str) -> Order {
        Order {
            job: DeliveryJob {
                id: id.to_string(),
                key_id: "e2e".to_string(),
                mail_from: "hello@example.com".to_string(),
                rcpt_to: vec!["rcpt@example.net".to_string()],
                mime: "Subject: hi\r\n\r\nbody\r\n".to_string(),
                smtputf8: false,
                accepted_at: 1,
                attempt: 0,
                body_ref: None,
                tags: Vec::new(),
                metadata: None,
                safety_net: false,
                tenant: String::new(),
                stream: None,
                topic: None,
                subject: None,
                from: None,
                envid: None,
                notify_delivery: false,
                marketing: false,
            },
            accepted_at_ms: 1000,
            lease: None,
            warnings: Vec::new(),
            send_at: None,
        }
    }

    fn faults(value: &str) -> AcceptFaults {
        AcceptFaults::from_source(&|name: &str| (name == VARIABLE).then(|| value.to_string()))
    }

    /// What the end-to-end test shows, natively: with `step:1` the first
    /// request fails at that step and leaves no row; the retry goes through.
    /// The row and the job are written together, so a failed row write
    /// leaves its job on the queue: a job without a row, which the consumer
    /// refuses after its bounded wait.
    #[test]
    fn a_counted_fault_fails_the_first_commit_and_leaves_no_row() {
        for (value, step) in [("store:1", Step::Row), ("enqueue:1", Step::Enqueue)] {
            let world = World::default();
            let switch = faults(value);
            let ports = switch.wrap(&world);
            let failure = finish(commit(&ports, &ports, &ports, order("first"))).unwrap_err();
            assert_eq!(failure.step, step, "{value}");
            assert!(
                failure.error.0.starts_with("FAULT_ACCEPT: injected"),
                "{value}"
            );
            let orphan = step == Step::Row;
            let expected_residue = if orphan {
                vec![Residue::JobWithoutRow("first".to_string())]
            } else {
                Vec::new()
            };
            assert_eq!(failure.residue, expected_residue, "{value}");
            let state = world.state();
            assert!(state.rows.is_empty() && state.jobs.is_empty(), "{value}");
            assert_eq!(state.queue.len(), usize::from(orphan), "{value}");

            let retried = finish(commit(&ports, &ports, &ports, order("retry"))).unwrap();
            let state = world.state();
            assert_eq!(
                state.rows.keys().collect::<Vec<_>>(),
                [&retried.id],
                "{value}"
            );
            assert_eq!(state.queue.len(), 1 + usize::from(orphan), "{value}");
        }
    }

    /// An ambiguous enqueue: the job is on the queue, the caller is told
    /// 503, and its row (with the stored job) is gone, so the consumer
    /// refuses that job and only the retry is delivered.
    #[test]
    fn a_sent_but_failed_enqueue_leaves_a_job_without_a_row() {
        let world = World::default();
        let switch = faults("sent:1");
        let ports = switch.wrap(&world);
        let failure = finish(commit(&ports, &ports, &ports, order("first"))).unwrap_err();
        assert_eq!(failure.step, Step::Enqueue);
        assert!(failure.residue.is_empty());
        let state = world.state();
        assert!(state.rows.is_empty() && state.jobs.is_empty());
        assert_eq!(state.queue.len(), 1, "the job went through");
        finish(commit(&ports, &ports, &ports, order("retry"))).unwrap();
        assert_eq!(world.state().rows.keys().collect::<Vec<_>>(), ["retry"]);
    }

    #[test]
    fn without_the_switch_the_ports_are_untouched() {
        let world = World::default();
        let switch = AcceptFaults::from_source(&|_: &str| None);
        let ports = switch.wrap(&world);
        for id in ["a", "b", "c"] {
            finish(commit(&ports, &ports, &ports, order(id))).unwrap();
        }
        assert_eq!(world.state().queue.len(), 3);
    }
}
