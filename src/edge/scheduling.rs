//! Scheduled messages at the edge: the consumer's look at each job's row
//! before anything else is read (back on the queue until due, claimed at the
//! due time, dropped once canceled), and the cancel and reschedule that the
//! native API and Resend's door share.
//!
//! Must not: decide when a message is due or what a job does; it carries out
//! `accept::schedule`'s verdicts with `d1::schedule`'s conditional writes.

use worker::{Env, MessageExt};

use crate::accept::schedule::{self, Arrival, When};
use crate::accept::{ApiError, AuthenticatedKey};
use crate::events::log_line::LogValue;
use crate::events::{EmailEvent, EventType};
use crate::queue::{DeliveryJob, MessageStatus, QueueBody};

use super::d1::Db;
use super::http::internal;
use super::outage::{InHand, Outage};
use super::platform::now_ms;
use super::{bodies, email_events, log, queue_writer, random};
use crate::delivery::outage::Trouble;

/// Keeps the jobs whose messages are not scheduled, or are due and were
/// claimed by this consumer; puts back the ones not due yet (no attempt
/// spent) and acknowledges those canceled or claimed by another.
pub async fn screen(
    env: &Env,
    db: &Db,
    outage: &Outage<'_>,
    work: Vec<(InHand, DeliveryJob)>,
) -> Vec<(InHand, DeliveryJob)> {
    let ids: Vec<&str> = work.iter().map(|(_, j)| j.id.as_str()).collect();
    let states = match db.schedule_states(&ids).await {
        Ok(states) => states,
        Err(e) => {
            log::error_because("could_not_read_schedules", &e);
            for (message, _) in &work {
                outage.meet(env, message, Trouble::Records).await;
            }
            return Vec::new();
        }
    };
    let mut rest = Vec::with_capacity(work.len());
    for (message, job) in work {
        let (status, due) = states
            .iter()
            .find(|(id, _, _)| *id == job.id)
            .map_or((None, None), |(_, status, due)| (*status, *due));
        let now = now_ms();
        match schedule::arrival(status, due, now) {
            Arrival::Deliver => rest.push((message, job)),
            Arrival::Drop => message.raw.ack(),
            Arrival::Wait { delay_seconds } => {
                match queue_writer::resend(env, outage.queue, &message.text, delay_seconds).await {
                    Ok(()) => message.raw.ack(),
                    Err(e) => {
                        log::error_because("could_not_put_back_a_scheduled_job", &e);
                        outage.meet(env, &message, Trouble::Records).await;
                    }
                }
            }
            Arrival::Claim => match db.claim_scheduled(&job.id, now).await {
                Ok(true) => rest.push((message, job)),
                // Canceled, or claimed by another job of the same message,
                // which carries it from here.
                Ok(false) => message.raw.ack(),
                Err(e) => {
                    log::error_because("could_not_claim_a_scheduled_message", &e);
                    outage.meet(env, &message, Trouble::Records).await;
                }
            },
        }
    }
    rest
}

/// The row of a tenant's message that a cancel or reschedule acts on.
async fn scheduled(
    db: &Db,
    key: &AuthenticatedKey,
    id: &str,
    action: &str,
) -> Result<(Option<u64>, Option<String>), ApiError> {
    let row = db
        .scheduled_row(id, &key.tenant)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(format!("no message {id} for this key")))?;
    if row.status != MessageStatus::Scheduled {
        return Err(schedule::not_scheduled(row.status, action));
    }
    Ok((row.scheduled_at, row.job))
}

/// After a conditional write lost: the status that won, as the refusal.
async fn lost(db: &Db, key: &AuthenticatedKey, id: &str, action: &str) -> ApiError {
    match db.scheduled_row(id, &key.tenant).await {
        Ok(Some(row)) if row.status != MessageStatus::Scheduled => {
            schedule::not_scheduled(row.status, action)
        }
        Ok(_) => ApiError::conflict(
            "concurrent_change",
            "scheduled_at",
            "the message changed while this request ran; read it and try again",
        ),
        Err(e) => internal(e),
    }
}

/// Cancels a scheduled message: exactly one of this cancel and the
/// consumer's claim at the due time wins. Emits `email.canceled`.
pub async fn cancel(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<(), ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let (_, stored) = scheduled(&db, key, id, "canceled").await?;
    let now = now_ms();
    if !db
        .cancel_scheduled(id, &key.tenant, now)
        .await
        .map_err(internal)?
    {
        return Err(lost(&db, key, id, "canceled").await);
    }
    // The cancel stands; its event and the body's release are best effort.
    if let Some(job) = stored
        .as_deref()
        .and_then(|j| serde_json::from_str::<DeliveryJob>(j).ok())
    {
        let event = EmailEvent::for_job(&job, EventType::Canceled, None, now, &random::bytes());
        if let Err(e) = email_events::publish(env, &db, &[event]).await {
            log::warn_because("could_not_record_a_cancel_event", &e);
        }
        bodies::release(env, job.body_ref.as_deref()).await;
    }
    Ok(())
}

/// Gives a scheduled message a new due time (a time not in the future
/// means now). Returns the due time, Unix seconds. When it is earlier than
/// the old one, a new queue message waits for it; a later one is waited for
/// by the job already on the queue, which goes back when it finds the row
/// not due.
pub async fn reschedule(
    env: &Env,
    key: &AuthenticatedKey,
    id: &str,
    when: When<'_>,
) -> Result<u64, ApiError> {
    let now = now_ms();
    let at = schedule::due(Some(when), "scheduled_at", now / 1000)?.unwrap_or(now / 1000);
    let db = Db::open(env).map_err(internal)?;
    let (was, stored) = scheduled(&db, key, id, "rescheduled").await?;
    if !db
        .reschedule(id, &key.tenant, was, at, now)
        .await
        .map_err(internal)?
    {
        return Err(lost(&db, key, id, "rescheduled").await);
    }
    if was.is_none_or(|was| at < was) {
        let job = stored
            .as_deref()
            .and_then(|j| serde_json::from_str::<DeliveryJob>(j).ok());
        let sent = match job {
            Some(job) => {
                let delay = schedule::queue_delay(at, now);
                queue_writer::send_job(env, &QueueBody::deliver(job), Some(delay))
                    .await
                    .map_err(|e| e.to_string())
            }
            None => Err("it has no stored job".to_string()),
        };
        // The row says when; a lost job is brought back by the sweep.
        if let Err(e) = sent {
            log::warn(
                "could_not_enqueue_a_rescheduled_job",
                &[
                    ("message_id", LogValue::Id(id)),
                    ("error", LogValue::Text(&e)),
                ],
            );
        }
    }
    Ok(at)
}
