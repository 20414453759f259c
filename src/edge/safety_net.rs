//! The consumer's side of immediate delivery: before bodies are fetched,
//! every safety job in a batch is checked against its message's record and
//! either delivered like any job, postponed, or acknowledged as done.
//!
//! Runs before the bodies are loaded on purpose: a message the request has
//! settled has had its stored body released, and a safety job must not read
//! that as a lost body. The rules are `delivery::immediate::check`; this only
//! reads the record and moves queue messages. Must not: deliver anything.

use worker::{Env, MessageExt, RawMessage};

use crate::delivery::immediate::{SafetyCheck, check, postpone};
use crate::queue::{DeliveryJob, EventKind};

use super::d1::Db;
use super::lifecycle;
use super::platform::{Loaded, now_ms};

/// Returns the jobs to deliver now: every ordinary job, and the safety jobs
/// whose message still needs an attempt (with their flag cleared and the
/// attempt count taken from the record). The others are settled here.
pub async fn screen(
    env: &Env,
    loaded: &Loaded,
    db: &Db,
    work: Vec<(RawMessage, DeliveryJob)>,
) -> Vec<(RawMessage, DeliveryJob)> {
    let ids: Vec<&str> = work
        .iter()
        .filter(|(_, j)| j.safety_net)
        .map(|(_, j)| j.id.as_str())
        .collect();
    if ids.is_empty() {
        return work;
    }
    let records = match db.safety_records(&ids).await {
        Ok(r) => r,
        Err(e) => {
            // Without the record the request may still be delivering: wait.
            worker::console_error!("edgerelay: could not read immediate-delivery records: {e}");
            let (safety, ordinary): (Vec<_>, Vec<_>) =
                work.into_iter().partition(|(_, j)| j.safety_net);
            for (raw, _) in safety {
                raw.retry();
            }
            return ordinary;
        }
    };

    let recheck = loaded.settings.delivery.smtp_timeout_seconds.max(1);
    let now = now_ms();
    let mut ready = Vec::with_capacity(work.len());
    for (raw, mut job) in work {
        if !job.safety_net {
            ready.push((raw, job));
            continue;
        }
        let record = records.iter().find(|(id, _)| *id == job.id).map(|(_, r)| r);
        match check(record, now, recheck) {
            SafetyCheck::Deliver { attempt } => {
                job.safety_net = false;
                job.attempt = attempt;
                ready.push((raw, job));
            }
            SafetyCheck::Postpone { delay_seconds } => {
                lifecycle::execute(env, db, Some(&raw), postpone(&job, delay_seconds)).await
            }
            SafetyCheck::Done(reason) => {
                if let Err(e) = db
                    .add_event(&job.id, EventKind::SafetyCheck, Some(&reason), now)
                    .await
                {
                    worker::console_warn!("edgerelay: could not record a safety check: {e}");
                }
                raw.ack();
            }
            SafetyCheck::Gone => raw.ack(),
        }
    }
    ready
}
