//! The queue consumer: deliver a batch, then ack, retry or dead-letter each
//! message on its own, so one bad message never re-sends the others.
//!
//! Retries are new queue messages carrying the attempt count and only the
//! recipients still pending, so a recipient that already accepted the message
//! is never sent it again by our own retries. Delivery and settlement live in
//! `lifecycle`; messages from other Workers are taken in by `producer_intake`.

use worker::{Env, MessageBatch, MessageBuilder, MessageExt, RawMessage};

use crate::queue::{DeliveryJob, EventKind, MessageStatus, QueueBody};

use super::ledger::Ledger;
use super::platform::{DATABASE, DEAD_LETTER_QUEUE, load, now_ms};
use super::store::Store;
use super::{bodies, lifecycle, producer_intake, safety_net};

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
    let store = Store::new(env.d1(DATABASE)?);
    if batch.queue() == loaded.settings.dead_letter_queue_name {
        return record_dead_letters(&env, &batch, &store).await;
    }

    let ledger = Ledger::new(env.d1(DATABASE)?);
    let mut work: Vec<(RawMessage, DeliveryJob)> = Vec::new();
    for raw in batch.raw_iter() {
        let text = body_text(&raw);
        match QueueBody::from_json(&text) {
            // Recipients already recorded are skipped in `lifecycle`.
            Ok(QueueBody::Deliver { job, .. }) => work.push((raw, job)),
            Ok(QueueBody::Send {
                producer, message, ..
            }) => {
                let id = raw.id();
                let taken = producer_intake::intake(
                    &env, &loaded, &store, &ledger, &id, &producer, &message, &text,
                )
                .await;
                match taken {
                    Ok(Some(job)) => work.push((raw, job)),
                    Ok(None) => raw.ack(),
                    Err(()) => raw.retry(),
                }
            }
            Ok(QueueBody::DeadLetter { .. }) => {
                dead_letter(
                    &env,
                    "a dead-letter record was sent to the jobs queue",
                    None,
                    Some(text),
                )
                .await;
                raw.ack();
            }
            Err(reason) => {
                dead_letter(&env, &reason, None, Some(text)).await;
                raw.ack();
            }
        }
    }
    // Safety jobs of immediate deliveries are checked before any body is read.
    let work = safety_net::screen(&env, &loaded, &store, work).await;
    if work.is_empty() {
        return Ok(());
    }

    // Bodies kept in the bucket are fetched now. Retries and dead letters
    // carry only the reference (see `DeliveryJob::for_queue`).
    let (kept, ready, missing) = bodies::load_all(&env, work).await;
    for (raw, job, reason) in missing {
        let id = job.id.clone();
        dead_letter(&env, &reason, Some(job), None).await;
        if let Err(e) = store
            .record_attempt(
                &id,
                MessageStatus::Failed,
                false,
                EventKind::Failed,
                Some(&reason),
                now_ms(),
            )
            .await
        {
            worker::console_error!("edgerelay: could not record a lost body: {e}");
        }
        raw.ack();
    }
    let work: Vec<(RawMessage, DeliveryJob)> = kept
        .into_iter()
        .zip(ready)
        .map(|((raw, _), whole)| (raw, whole))
        .collect();
    if work.is_empty() {
        return Ok(());
    }
    lifecycle::deliver_batch(&env, &loaded, &store, work).await
}

pub(crate) async fn dead_letter(
    env: &Env,
    reason: &str,
    job: Option<DeliveryJob>,
    raw: Option<String>,
) {
    let body = QueueBody::dead_letter(reason, job.map(|j| j.for_queue()), raw).to_json();
    let sent = match env.queue(DEAD_LETTER_QUEUE) {
        Ok(q) => q
            .send(MessageBuilder::new(body).build())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        worker::console_error!("edgerelay: could not dead-letter a message ({reason}): {e}");
    }
}

/// Dead-letters a message recorded without a job (a producer's message that
/// failed validation), naming the message so the reason lands on its record.
pub(crate) async fn dead_letter_message(
    env: &Env,
    reason: &str,
    message_id: &str,
    raw: Option<String>,
) {
    let mut body = QueueBody::dead_letter(reason, None, raw);
    if let QueueBody::DeadLetter { letter, .. } = &mut body {
        letter.message_id = Some(message_id.to_string());
    }
    let sent = match env.queue(DEAD_LETTER_QUEUE) {
        Ok(q) => q
            .send(MessageBuilder::new(body.to_json()).build())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        worker::console_error!("edgerelay: could not dead-letter a message ({reason}): {e}");
    }
}

/// The dead-letter queue's consumer: whatever arrives is recorded, then acked.
async fn record_dead_letters(
    env: &Env,
    batch: &MessageBatch<serde_json::Value>,
    store: &Store,
) -> worker::Result<()> {
    for raw in batch.raw_iter() {
        let text = body_text(&raw);
        let now = now_ms();
        let result = match QueueBody::from_json(&text) {
            Ok(QueueBody::DeadLetter { letter, .. }) => match letter.job {
                Some(job) => {
                    bodies::release(env, job.body_ref.as_deref()).await;
                    store
                        .add_event(&job.id, EventKind::DeadLettered, Some(&letter.reason), now)
                        .await
                }
                None if letter.message_id.is_some() => {
                    let id = letter.message_id.as_deref().unwrap_or_default();
                    store
                        .add_event(id, EventKind::DeadLettered, Some(&letter.reason), now)
                        .await
                }
                None => {
                    worker::console_warn!(
                        "edgerelay: dead letter without a job: {}",
                        letter.reason
                    );
                    Ok(())
                }
            },
            Ok(QueueBody::Send { producer, .. }) => {
                worker::console_warn!(
                    "edgerelay: a message from producer `{producer}` was dead-lettered by the platform"
                );
                Ok(())
            }
            // Moved here by the platform after repeated crashes of the consumer.
            Ok(QueueBody::Deliver { job, .. }) => {
                bodies::release(env, job.body_ref.as_deref()).await;
                store
                    .record_attempt(
                        &job.id,
                        MessageStatus::Failed,
                        false,
                        EventKind::DeadLettered,
                        Some("delivery failed repeatedly without a recorded outcome"),
                        now,
                    )
                    .await
            }
            Err(reason) => {
                worker::console_warn!("edgerelay: unreadable dead letter: {reason}");
                Ok(())
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
