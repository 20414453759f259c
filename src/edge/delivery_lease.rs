//! The queue consumer's delivery leases: one per message, taken for every
//! job of a batch before anything recorded is read, and let go once the
//! batch is settled.
//!
//! A job whose lease another delivery holds (a late original beside the
//! sweep's copy, or an immediate request still at work) is enqueued again
//! to look later; a job whose message is final is acknowledged; a job whose
//! message has no row yet looks again shortly (the row is written beside the
//! job), and is refused once it has waited long enough (never accepted); a second copy of a
//! job in the same batch is acknowledged, as the first delivers. The rules are
//! `delivery::recovery::verdict`; this only runs the statements and moves
//! queue messages. Must not: deliver anything.

use worker::{Env, MessageExt};

use crate::delivery::immediate::postpone;
use crate::delivery::recovery::{LeaseVerdict, first_copies, verdict};
use crate::events::log_line::LogValue;
use crate::queue::DeliveryJob;

use super::d1::Db;
use super::lifecycle;
use super::log;
use super::outage::InHand;
use super::platform::{Loaded, now_ms};
use super::random;

/// The leases this invocation holds.
pub struct Held {
    holder: String,
    ids: Vec<String>,
}

impl Held {
    /// Lets go of every lease taken. Best effort: one left behind runs out.
    pub async fn release(self, db: &Db) {
        let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
        if let Err(e) = db.release_delivery_leases(&ids, &self.holder).await {
            log::warn_because("could_not_release_delivery_leases", &e);
        }
    }
}

/// Returns the jobs this invocation may deliver, with the leases it took,
/// and the messages the store could not decide for (storage trouble: the
/// caller tries them again later); every other job is settled here.
pub async fn take(
    env: &Env,
    loaded: &Loaded,
    db: &Db,
    work: Vec<(InHand, DeliveryJob)>,
) -> (Vec<(InHand, DeliveryJob)>, Held, Vec<InHand>) {
    let holder: String = random::bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut held = Held {
        holder,
        ids: Vec::new(),
    };
    if work.is_empty() {
        return (work, held, Vec::new());
    }
    let now = now_ms();
    let lease_ms = u64::from(loaded.settings.delivery.recovery.lease_seconds) * 1000;
    let ids: Vec<&str> = work.iter().map(|(_, j)| j.id.as_str()).collect();
    let rows = match db
        .take_delivery_leases(&ids, &held.holder, now + lease_ms, now)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            // Without a lease nothing may be delivered: look again later.
            log::error_because("could_not_take_delivery_leases", &e);
            let unread = work.into_iter().map(|(message, _)| message).collect();
            return (Vec::new(), held, unread);
        }
    };
    let first = first_copies(&ids);
    let mut ready = Vec::with_capacity(work.len());
    for ((message, job), first) in work.into_iter().zip(first) {
        let raw = &message.raw;
        let row = rows.iter().find(|(id, _)| *id == job.id).map(|(_, r)| r);
        match verdict(row, job.accepted_at, now) {
            LeaseVerdict::Deliver if !first => raw.ack(),
            LeaseVerdict::Deliver => {
                held.ids.push(job.id.clone());
                ready.push((message, job));
            }
            LeaseVerdict::Busy { delay_seconds } => {
                let _ = lifecycle::execute(env, db, Some(raw), postpone(&job, delay_seconds)).await;
            }
            LeaseVerdict::AwaitRow { delay_seconds } => {
                // The accept path writes the row beside the job: look again
                // soon, counting no attempt.
                let _ = lifecycle::execute(env, db, Some(raw), postpone(&job, delay_seconds)).await;
            }
            LeaseVerdict::Settled => raw.ack(),
            LeaseVerdict::Refuse(reason) => {
                log::warn(
                    "delivery_lease_refused",
                    &[
                        ("message_id", LogValue::Id(&job.id)),
                        ("reason", LogValue::Text(&reason.to_string())),
                    ],
                );
                raw.ack();
            }
        }
    }
    (ready, held, Vec::new())
}
