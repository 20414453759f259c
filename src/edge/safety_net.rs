//! The consumer's side of immediate delivery: before bodies are fetched,
//! every safety job in a batch is checked against its message's record and
//! either delivered like any job, postponed, or acknowledged as done.
//!
//! Runs before the bodies are loaded on purpose: a message the request has
//! settled has had its stored body released, and a safety job must not read
//! that as a lost body. The rules are `delivery::immediate::check`; this only
//! reads the record and moves queue messages. Must not: deliver anything.

use worker::{Env, MessageExt};

use crate::delivery::immediate::{SafetyCheck, check, postpone};
use crate::queue::{DeliveryJob, EventKind};

use super::d1::Db;
use super::lifecycle;
use super::log;
use super::outage::InHand;
use super::platform::{Loaded, now_ms};

/// Returns the jobs to deliver now: every ordinary job, and the safety jobs
/// whose message still needs an attempt (with their flag cleared and the
/// attempt count taken from the record). The others are settled here, except
/// those whose record could not be read: they come back second, for the
/// caller to treat as storage trouble.
pub async fn screen(
    env: &Env,
    loaded: &Loaded,
    db: &Db,
    work: Vec<(InHand, DeliveryJob)>,
) -> (Vec<(InHand, DeliveryJob)>, Vec<InHand>) {
    let ids: Vec<&str> = work
        .iter()
        .filter(|(_, j)| j.safety_net)
        .map(|(_, j)| j.id.as_str())
        .collect();
    if ids.is_empty() {
        return (work, Vec::new());
    }
    let records = match db.safety_records(&ids).await {
        Ok(r) => r,
        Err(e) => {
            // Without the record the request may still be delivering: wait.
            log::error_because("could_not_read_immediate_delivery_records", &e);
            let (safety, ordinary): (Vec<_>, Vec<_>) =
                work.into_iter().partition(|(_, j)| j.safety_net);
            return (ordinary, safety.into_iter().map(|(m, _)| m).collect());
        }
    };

    let recheck = loaded.settings.delivery.smtp_timeout_seconds.max(1);
    let now = now_ms();
    let mut ready = Vec::with_capacity(work.len());
    for (message, mut job) in work {
        if !job.safety_net {
            ready.push((message, job));
            continue;
        }
        let record = records.iter().find(|(id, _)| *id == job.id).map(|(_, r)| r);
        match check(record, now, recheck) {
            SafetyCheck::Deliver { attempt } => {
                job.safety_net = false;
                job.attempt = attempt;
                ready.push((message, job));
            }
            SafetyCheck::Postpone { delay_seconds } => {
                // Nothing to record, so nothing that D1 could fail.
                let settlement = postpone(&job, delay_seconds);
                lifecycle::execute(env, db, Some(&message.raw), settlement).await;
            }
            SafetyCheck::Done(reason) => {
                if let Err(e) = db
                    .add_event(&job.id, EventKind::SafetyCheck, Some(&reason), now)
                    .await
                {
                    log::warn_because("could_not_record_a_safety_check", &e);
                }
                message.raw.ack();
            }
            SafetyCheck::Gone => message.raw.ack(),
        }
    }
    (ready, Vec::new())
}
