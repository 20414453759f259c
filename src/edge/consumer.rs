//! The queue consumer: deliver a batch, then ack, retry or dead-letter each
//! message on its own, so one bad message never re-sends the others.
//!
//! Retries are new queue messages carrying the attempt count and only the
//! recipients still pending, so a recipient that already accepted the message
//! is never sent it again by our own retries.

use worker::{Env, MessageBatch, MessageBuilder, MessageExt, RawMessage};

use crate::delivery::{AttemptReport, Decision, DeliveryJob, QueueBody, RetryPolicy};

use super::store::Store;
use super::{DATABASE, DEAD_LETTER_QUEUE, JOBS_QUEUE, load, now_ms, random, smtp_driver};

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
        return record_dead_letters(&batch, &store).await;
    }

    let mut work: Vec<(RawMessage, DeliveryJob)> = Vec::new();
    for raw in batch.raw_iter() {
        let text = body_text(&raw);
        match QueueBody::from_json(&text) {
            Ok(QueueBody::Deliver { job, .. }) => {
                // A redelivered message that already reached an end state is done.
                match store.status_of(&job.id).await {
                    Ok(Some(s)) if s == "delivered" || s == "failed" || s == "unknown" => raw.ack(),
                    _ => work.push((raw, job)),
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
    if work.is_empty() {
        return Ok(());
    }

    let jobs: Vec<&DeliveryJob> = work.iter().map(|(_, j)| j).collect();
    let reports = smtp_driver::deliver(&loaded.settings, &env, &jobs).await;
    let policy = RetryPolicy::new(loaded.settings.retry);
    for ((raw, job), report) in work.into_iter().zip(reports) {
        settle(&env, &store, &policy, &raw, job, report).await;
    }
    Ok(())
}

async fn settle(
    env: &Env,
    store: &Store,
    policy: &RetryPolicy,
    raw: &RawMessage,
    job: DeliveryJob,
    report: AttemptReport,
) {
    let now = now_ms();
    let attempt = job.attempt + 1;
    let age = (now / 1000).saturating_sub(job.accepted_at);
    let decision = policy.decide(&report.result, attempt, age, random::unit());
    let detail = report.detail.as_str();
    let recorded = match decision {
        Decision::Delivered => {
            store
                .record_attempt(&job.id, "delivered", true, "delivered", Some(detail), now)
                .await
        }
        Decision::Retry {
            delay_seconds,
            counts,
        } => {
            let next = DeliveryJob {
                rcpt_to: report.remaining.clone(),
                attempt: if counts { attempt } else { job.attempt },
                ..job.clone()
            };
            let queued = match env.queue(JOBS_QUEUE) {
                Ok(q) => q
                    .send(
                        MessageBuilder::new(QueueBody::deliver(next).to_json())
                            .delay_seconds(delay_seconds)
                            .build(),
                    )
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if !queued {
                // Let the platform redeliver this very message instead.
                raw.retry_with_options(
                    &worker::QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(delay_seconds)
                        .build(),
                );
                return;
            }
            let detail = format!("{detail}; next attempt in {delay_seconds} s");
            store
                .record_attempt(&job.id, "deferred", counts, "deferred", Some(&detail), now)
                .await
        }
        Decision::Fail(reason) => {
            let id = job.id.clone();
            dead_letter(env, &reason, Some(job), None).await;
            store
                .record_attempt(&id, "failed", true, "failed", Some(&reason), now)
                .await
        }
        Decision::Unknown(reason) => {
            store
                .record_attempt(&job.id, "unknown", true, "unknown", Some(&reason), now)
                .await
        }
    };
    if let Err(e) = recorded {
        worker::console_error!("edgerelay: could not record the outcome of a delivery: {e}");
    }
    raw.ack();
}

async fn dead_letter(env: &Env, reason: &str, job: Option<DeliveryJob>, raw: Option<String>) {
    let body = QueueBody::dead_letter(reason, job, raw).to_json();
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

/// The dead-letter queue's consumer: whatever arrives is recorded, then acked.
async fn record_dead_letters(
    batch: &MessageBatch<serde_json::Value>,
    store: &Store,
) -> worker::Result<()> {
    for raw in batch.raw_iter() {
        let text = body_text(&raw);
        let now = now_ms();
        let result = match QueueBody::from_json(&text) {
            Ok(QueueBody::DeadLetter { letter, .. }) => match letter.job {
                Some(job) => {
                    store
                        .add_event(&job.id, "dead_lettered", Some(&letter.reason), now)
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
            // Moved here by the platform after repeated crashes of the consumer.
            Ok(QueueBody::Deliver { job, .. }) => {
                store
                    .record_attempt(
                        &job.id,
                        "failed",
                        false,
                        "dead_lettered",
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
