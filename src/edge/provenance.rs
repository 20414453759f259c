//! Jobs on the jobs queue that are not edgerelay's own: the stored-message
//! check of sealed jobs, and the refusal of forged ones.
//!
//! A sealed job is delivered only if it matches the message stored when it
//! was accepted (`delivery::dispatch::screen_against_record`). A job whose
//! row is not there yet looks again shortly, for a bounded time
//! (`delivery::recovery::missing_row`: the accept path writes the row and
//! the job at once), and is refused after that. A forged one
//! sends nothing: its refusal is noted on the message it names, if that
//! message exists (an event, the status untouched), logged, and the queue
//! message is dead-lettered with the reason and acknowledged.
//! Must not: decide what is forged; the core does.

use std::collections::HashMap;

use worker::{Env, MessageExt};

use crate::delivery::dispatch::{Forgery, StoredEnvelope, screen_against_record};
use crate::delivery::immediate::postpone;
use crate::delivery::recovery::{RowWait, missing_row};
use crate::events::log_line::LogValue;
use crate::queue::{DeliveryJob, EventKind};

use super::d1::Db;
use super::lifecycle;
use super::log;
use super::outage::InHand;
use super::platform::now_ms;
use super::queue_writer;

/// Keeps the sealed jobs that match their stored messages and refuses the
/// rest. Without the records nothing can be checked: every job is handed
/// back unread, for the caller to try again later (storage trouble).
pub async fn screen(
    env: &Env,
    db: &Db,
    sealed: Vec<(InHand, DeliveryJob)>,
) -> (Vec<(InHand, DeliveryJob)>, Vec<InHand>) {
    if sealed.is_empty() {
        return (sealed, Vec::new());
    }
    let ids: Vec<&str> = sealed.iter().map(|(_, j)| j.id.as_str()).collect();
    let stored: HashMap<String, StoredEnvelope> = match db.stored_envelopes(&ids).await {
        Ok(rows) => rows.into_iter().collect(),
        Err(e) => {
            log::error_because("could_not_read_stored_messages", &e);
            return (Vec::new(), sealed.into_iter().map(|(m, _)| m).collect());
        }
    };
    let mut kept = Vec::with_capacity(sealed.len());
    let now = now_ms();
    for (message, job) in sealed {
        let envelope = stored.get(&job.id);
        if envelope.is_none()
            && let RowWait::Wait { delay_seconds } = missing_row(job.accepted_at, now)
        {
            // Its row is written beside it and may not be visible yet:
            // look again shortly, counting no attempt.
            let _ = lifecycle::execute(env, db, Some(&message.raw), postpone(&job, delay_seconds))
                .await;
            continue;
        }
        match screen_against_record(job, envelope) {
            Ok(job) => kept.push((message, job)),
            Err(forgery) => {
                refuse_forged(env, db, *forgery).await;
                message.raw.ack();
            }
        }
    }
    (kept, Vec::new())
}

/// Refuses a forged job: nothing is sent. Best effort on the record: the
/// dead letter and the log keep the reason if D1 cannot be written.
pub async fn refuse_forged(env: &Env, db: &Db, forgery: Forgery) {
    let Forgery { claimed_id, letter } = forgery;
    log::warn(
        "foreign_job_refused",
        &[
            (
                "message_id",
                LogValue::Id(claimed_id.as_deref().unwrap_or("-")),
            ),
            ("reason", LogValue::Text(&letter.reason.to_string())),
        ],
    );
    if let Some(id) = claimed_id.as_deref()
        && let Err(e) = db
            .add_event_if_exists(id, EventKind::ForgedJobRefused, &letter.reason, now_ms())
            .await
    {
        log::error(
            "could_not_note_a_refused_job",
            &[
                ("message_id", LogValue::Id(id)),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
    }
    queue_writer::dead_letter(env, letter).await;
}
