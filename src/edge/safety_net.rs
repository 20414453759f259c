//! The consumer's side of immediate delivery: before bodies are fetched,
//! every safety job in a batch is checked against its message's record and
//! either delivered like any job, postponed, or acknowledged as done.
//!
//! Runs before the bodies are loaded on purpose: a message the request has
//! settled has had its stored body released, and a safety job must not read
//! that as a lost body. The rules are `delivery::immediate::check`; this only
//! reads the record and moves queue messages. Must not: deliver anything.

use worker::{Env, MessageBuilder, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use crate::delivery::immediate::{SafetyCheck, check};
use crate::queue::{DeliveryJob, EventKind, QueueBody};

use super::leases::Leases;
use super::platform::{DATABASE, JOBS_QUEUE, Loaded, now_ms};
use super::store::Store;

/// Returns the jobs to deliver now: every ordinary job, and the safety jobs
/// whose message still needs an attempt (with their flag cleared and the
/// attempt count taken from the record). The others are settled here.
pub async fn screen(
    env: &Env,
    loaded: &Loaded,
    store: &Store,
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
    let records = match env.d1(DATABASE) {
        Ok(db) => Leases::new(db).safety_records(&ids).await,
        Err(e) => Err(e),
    };
    let records = match records {
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

    let recheck = loaded.settings.smtp_timeout_seconds.max(1);
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
                postpone(env, &raw, &job, delay_seconds).await
            }
            SafetyCheck::Done(reason) => {
                if record.is_some()
                    && let Err(e) = store
                        .add_event(&job.id, EventKind::SafetyCheck, Some(&reason), now)
                        .await
                {
                    worker::console_warn!("edgerelay: could not record a safety check: {e}");
                }
                raw.ack();
            }
        }
    }
    ready
}

/// The same safety job again, later. Falls back to the platform's own retry
/// (which counts towards `max_retries`) only when the queue refuses the send.
async fn postpone(env: &Env, raw: &RawMessage, job: &DeliveryJob, delay_seconds: u32) {
    let body = QueueBody::deliver(job.for_queue()).to_json();
    let sent = match env.queue(JOBS_QUEUE) {
        Ok(q) => q
            .send(
                MessageBuilder::new(body)
                    .delay_seconds(delay_seconds)
                    .build(),
            )
            .await
            .is_ok(),
        Err(_) => false,
    };
    if sent {
        raw.ack();
    } else {
        raw.retry_with_options(
            &QueueRetryOptionsBuilder::new()
                .with_delay_seconds(delay_seconds)
                .build(),
        );
    }
}
