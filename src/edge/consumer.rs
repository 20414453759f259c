//! The queue consumer: deliver a batch, then settle each message on its own
//! (ack, retry later, or dead-letter), so one bad message never re-sends the
//! others. Messages of the dead-letter queue are noted on their records.
//!
//! The order of a batch: classify each body (`delivery::dispatch`); take in
//! producers' messages (`producer_intake`); check immediate deliveries'
//! safety jobs (`safety_net`); take each message's delivery lease
//! (`delivery_lease`: one delivery at a time, no job without a row); record
//! stale in-flight recipients `unknown`, drop recipients already recorded
//! final and settle the jobs none is left of; fetch bodies kept in the
//! bucket; deliver and record (`lifecycle`); settle (`delivery::settle`) and
//! carry out each settlement; let go of the leases. Retries are new queue
//! messages carrying the attempt count and only the recipients still
//! pending, so a recipient that already accepted the message is never sent
//! it again by our own retries.
//! Must not: decide anything; it runs the values the core returns.

use std::collections::HashMap;

use worker::{Env, MessageBatch, MessageExt, RawMessage};

use crate::delivery::dispatch::{DeadLetterItem, JobsItem, dead_letter_item, jobs_item};
use crate::delivery::recipients::{stale_in_flight, still_to_deliver};
use crate::delivery::settle::{body_lost, settle_recorded};
use crate::delivery::{Carrier, RecipientState, RetryPolicy, Settlement, settle};
use crate::queue::DeliveryJob;

use super::bodies::{self, Loaded as Body};
use super::d1::Db;
use super::platform::{Loaded, load, now_ms};
use super::{delivery_lease, lifecycle, producer_intake, queue_writer, random, safety_net};

/// A job to deliver, with its queue message and its recipients' recorded states.
type Pending = (RawMessage, DeliveryJob, Vec<(String, RecipientState)>);

/// The text of a queue body: producers may send a JSON string or an object.
fn body_text(raw: &RawMessage) -> String {
    let v = raw.body();
    match v.as_string() {
        Some(s) => s,
        None => js_sys::JSON::stringify(&v)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default(),
    }
}

pub async fn consume(batch: MessageBatch<serde_json::Value>, env: Env) -> worker::Result<()> {
    let loaded = match load(&env) {
        Ok(l) => l,
        Err(e) => {
            // Nothing can be delivered with broken settings; keep every message.
            worker::console_error!("edgerelay: {e}; retrying the batch later");
            batch.retry_all();
            return Ok(());
        }
    };
    let db = Db::open(&env)?;
    if batch.queue() == loaded.settings.dead_letter_queue_name {
        return record_dead_letters(&env, &db, &batch).await;
    }

    let mut work: Vec<(RawMessage, DeliveryJob)> = Vec::new();
    for raw in batch.raw_iter() {
        let text = body_text(&raw);
        match jobs_item(&text) {
            JobsItem::Deliver(job) => work.push((raw, job)),
            JobsItem::ProducerSend { producer, message } => {
                let id = raw.id();
                let taken =
                    producer_intake::intake(&env, &loaded, &db, &id, &producer, &message, &text)
                        .await;
                match taken {
                    Ok(Some(job)) => work.push((raw, job)),
                    Ok(None) => raw.ack(),
                    Err(()) => raw.retry(),
                }
            }
            JobsItem::Refuse(letter) => {
                queue_writer::dead_letter(&env, letter).await;
                raw.ack();
            }
        }
    }
    // Safety jobs of immediate deliveries are checked before any body is read.
    let work = safety_net::screen(&env, &loaded, &db, work).await;
    // One delivery per message at a time: nothing recorded is read before
    // the lease is held.
    let (work, held) = delivery_lease::take(&env, &loaded, &db, work).await;
    // So are the recorded recipients: a job with none left needs no body.
    let work = skip_recorded(&env, &db, work).await;
    let work = load_bodies(&env, &db, work).await;
    let delivered = if work.is_empty() {
        Ok(())
    } else {
        deliver(&env, &loaded, &db, work).await
    };
    held.release(&db).await;
    delivered
}

/// Drops the recipients already recorded final. A job with none left is a
/// redelivery: it is settled from its records and acknowledged here.
async fn skip_recorded(env: &Env, db: &Db, work: Vec<(RawMessage, DeliveryJob)>) -> Vec<Pending> {
    let ids: Vec<&str> = work.iter().map(|(_, j)| j.id.as_str()).collect();
    let recorded = match db.recipient_states(&ids).await {
        Ok(r) => r,
        Err(e) => {
            // Without the record we cannot tell what was sent: deliver nothing.
            worker::console_error!("edgerelay: could not read recipient states: {e}");
            for (raw, _) in &work {
                raw.retry();
            }
            return Vec::new();
        }
    };
    let mut by_message: HashMap<String, Vec<(String, RecipientState)>> = HashMap::new();
    for (id, address, state) in recorded {
        by_message.entry(id).or_default().push((address, state));
    }
    let mut pending = Vec::with_capacity(work.len());
    for (raw, job) in work {
        let mut states = by_message.get(&job.id).cloned().unwrap_or_default();
        // In flight when an earlier attempt died: the upstream may have it.
        let stale = stale_in_flight(&states);
        if !stale.is_empty() {
            if let Err(e) = db.record_recipients(&job.id, &stale, true, now_ms()).await {
                worker::console_error!("edgerelay: could not settle in-flight recipients: {e}");
            }
            for result in stale {
                states.retain(|(a, _)| !a.eq_ignore_ascii_case(&result.address));
                states.push((result.address, result.state));
            }
        }
        let rcpt_to = still_to_deliver(&job.rcpt_to, &states);
        if rcpt_to.is_empty() {
            let current = db.status_of(&job.id).await.ok().flatten();
            let settlement = settle_recorded(&job, &states, current);
            lifecycle::execute(env, db, Some(&raw), settlement).await;
        } else {
            pending.push((raw, DeliveryJob { rcpt_to, ..job }, states));
        }
    }
    pending
}

/// Puts back the bodies kept in the bucket. Retries and dead letters carry
/// only the reference (see `DeliveryJob::for_queue`). A body that is gone
/// fails its message; one that cannot be read now is tried again later.
async fn load_bodies(env: &Env, db: &Db, work: Vec<Pending>) -> Vec<Pending> {
    let mut ready = Vec::with_capacity(work.len());
    for (raw, job, states) in work {
        match bodies::load(env, &job).await {
            Body::Ready(whole) => ready.push((raw, whole, states)),
            Body::Missing(reason) => {
                lifecycle::execute(env, db, Some(&raw), body_lost(&job, &reason)).await
            }
            Body::Unavailable(reason) => {
                worker::console_warn!("edgerelay: {reason}; retrying the message");
                raw.retry();
            }
        }
    }
    ready
}

/// Delivers every job, then carries out each one's settlement.
async fn deliver(env: &Env, loaded: &Loaded, db: &Db, work: Vec<Pending>) -> worker::Result<()> {
    let settings = &loaded.settings.delivery;
    let jobs: Vec<&DeliveryJob> = work.iter().map(|(_, job, _)| job).collect();
    let attempts = lifecycle::deliver_recording(settings, db, &jobs).await;
    let policy = RetryPolicy::new(settings.retry);
    let mut settled: Vec<(RawMessage, Settlement)> = work
        .into_iter()
        .zip(attempts)
        .map(|((raw, job, states), attempt)| {
            let jitter = random::unit();
            let s = settle(
                &job,
                &states,
                attempt,
                &policy,
                now_ms(),
                jitter,
                Carrier::Queue,
            );
            (raw, s)
        })
        .collect();

    // Diagnostics builds only (`FAULT_CONSUMER_CRASH_AFTER`): settle part of
    // the batch, then throw as a dying isolate would, leaving the rest unacknowledged.
    #[cfg(feature = "diagnostics")]
    let crash = {
        use crate::diagnostics::consumer_crash::{ConsumerCrash, VAR};
        let value = env.var(VAR).ok().map(|v| v.to_string());
        ConsumerCrash::parse(value.as_deref()).and_then(|c| c.strikes(settled.len()))
    };
    #[cfg(not(feature = "diagnostics"))]
    let crash: Option<(usize, String)> = None;

    if let Some((after, _)) = &crash {
        settled.truncate(*after);
    }
    for (raw, settlement) in settled {
        lifecycle::execute(env, db, Some(&raw), settlement).await;
    }
    match crash {
        Some((_, message)) => Err(worker::Error::RustError(message)),
        None => Ok(()),
    }
}

/// The dead-letter queue's consumer: whatever arrives is noted, then acked.
async fn record_dead_letters(
    env: &Env,
    db: &Db,
    batch: &MessageBatch<serde_json::Value>,
) -> worker::Result<()> {
    for raw in batch.raw_iter() {
        let result = match dead_letter_item(&body_text(&raw)) {
            DeadLetterItem::Note(text) => {
                worker::console_warn!("edgerelay: {text}");
                Ok(())
            }
            DeadLetterItem::Record {
                message_id,
                kind,
                detail,
                status,
                release_body,
            } => {
                bodies::release(env, release_body.as_deref()).await;
                let now = now_ms();
                match status {
                    Some(status) => {
                        db.record_attempt(&message_id, status, false, kind, Some(&detail), now)
                            .await
                    }
                    None => db.add_event(&message_id, kind, Some(&detail), now).await,
                }
            }
        };
        match result {
            Ok(()) => raw.ack(),
            Err(e) => {
                worker::console_error!("edgerelay: could not record a dead letter: {e}");
                raw.retry();
            }
        }
    }
    Ok(())
}
