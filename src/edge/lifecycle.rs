//! Running an attempt durably and carrying out its settlement.
//!
//! Why a redelivered batch never re-sends: the recipients table is the truth.
//! Before any session opens, every job's recipients are checked against it and
//! recorded final ones (delivered, failed, unknown, in flight) are dropped
//! (see `consumer`). Each transaction is recorded twice, each write awaited
//! or ordered before the next step:
//!
//! 1. before its final dot is written, its accepted recipients are recorded
//!    in flight (`sending`): the driver awaits this write, and without it the
//!    dot does not go out;
//! 2. as soon as the upstream's reply to the dot arrives, each recipient's
//!    result (delivered, failed, deferred, unknown) replaces the marker,
//!    while the session carries on with the next message.
//!
//! An attempt that dies between the two leaves the marker; the next attempt
//! (under the message's delivery lease, so never a live one's) records it
//! `unknown` and does not send again. So a message is sent twice only if the
//! upstream took it and then the D1 write of its in-flight marker is lost
//! while looking successful; a death between the dot and the result ends
//! `unknown`, never duplicated. Closing it entirely would need the upstream
//! to deduplicate (by Message-ID).
//!
//! The queue consumer and immediate deliveries both run their attempts and
//! settlements here, so their records are the same.
//! Must not: decide anything; `delivery::{plan, failover, settle, recipients}` do.

use std::collections::HashMap;

use futures_channel::mpsc;
use futures_util::StreamExt;
use futures_util::future::{LocalBoxFuture, join, join_all};
use worker::{Env, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use crate::delivery::plan::session_ranges;
use crate::delivery::recipients::{from_transaction, in_flight};
use crate::delivery::{Attempt, DeliverySettings, FollowUp, RecipientResult, Settlement};
use crate::queue::DeliveryJob;
use crate::smtp::TransactionOutcome;

use super::d1::Db;
use super::platform::now_ms;
use super::{bodies, queue_writer, smtp_driver};

/// Runs the sessions for `jobs` (at most five at once), recording each
/// transaction's recipients in flight before its final dot and their results
/// as it completes. One attempt per job, in order.
pub(crate) async fn deliver_recording(
    settings: &DeliverySettings,
    db: &Db,
    jobs: &[&DeliveryJob],
) -> Vec<Attempt> {
    let (tx, mut rx) = mpsc::unbounded::<(usize, Vec<RecipientResult>)>();
    let ranges = session_ranges(jobs.len());
    let mark = |index: usize, recipients: Vec<String>| -> LocalBoxFuture<'_, bool> {
        Box::pin(async move {
            let Some(job) = jobs.get(index) else {
                return true;
            };
            match db
                .record_recipients(&job.id, &in_flight(&recipients), false, now_ms())
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    worker::console_error!(
                        "edgerelay: could not record {} in flight, not sending it: {e}",
                        job.id
                    );
                    false
                }
            }
        })
    };
    let mark = &mark;
    let sessions = async move {
        let reports: Vec<_> = {
            let tx = &tx;
            let runs = ranges.into_iter().map(|range| {
                let start = range.start;
                let chunk: Vec<&DeliveryJob> = jobs.get(range).unwrap_or_default().to_vec();
                async move {
                    let on_done = |i: usize, o: &TransactionOutcome| {
                        if let Some(job) = jobs.get(start + i) {
                            let _ =
                                tx.unbounded_send((start + i, from_transaction(o, &job.rcpt_to)));
                        }
                    };
                    let before = |i: usize, recipients: Vec<String>| mark(start + i, recipients);
                    smtp_driver::deliver_with(settings, db, &chunk, &before, &on_done).await
                }
            });
            join_all(runs).await.into_iter().flatten().collect()
        };
        // Closing the channel ends the recorder once it has caught up.
        drop(tx);
        reports
    };
    let recorder = async {
        let mut latest: HashMap<usize, Vec<RecipientResult>> = HashMap::new();
        while let Some((index, results)) = rx.next().await {
            let Some(job) = jobs.get(index) else { continue };
            if let Err(e) = db
                .record_recipients(&job.id, &results, true, now_ms())
                .await
            {
                worker::console_error!("edgerelay: could not record a transaction: {e}");
            }
            latest.insert(index, results);
        }
        latest
    };
    let (reports, mut latest) = join(sessions, recorder).await;
    reports
        .into_iter()
        .enumerate()
        .map(|(index, report)| Attempt {
            report,
            results: latest.remove(&index),
        })
        .collect()
}

/// Carries out a settlement: the follow-up's send, the body's release, the
/// record, then the queue message's acknowledgement or retry (`raw` is
/// `None` for an immediate delivery, which has no queue message in hand).
pub(crate) async fn execute(env: &Env, db: &Db, raw: Option<&RawMessage>, settlement: Settlement) {
    let Settlement {
        message_id,
        record,
        follow_up,
        release_body,
    } = settlement;
    let then = match follow_up {
        FollowUp::Ack => Then::Ack,
        FollowUp::Wait => Then::Nothing,
        FollowUp::DeadLetter(letter) => {
            queue_writer::dead_letter(env, letter).await;
            Then::Ack
        }
        FollowUp::Requeue {
            body,
            delay_seconds,
        } => match queue_writer::send_job(env, &body, Some(delay_seconds)).await {
            Ok(()) => Then::Ack,
            Err(e) => {
                // The platform redelivers this very message instead; the
                // recipient records keep it from re-sending the delivered ones.
                worker::console_warn!("edgerelay: could not requeue {message_id}: {e}");
                Then::RetryAfter(delay_seconds)
            }
        },
    };
    bodies::release(env, release_body.as_deref()).await;
    if let Some(record) = &record
        && let Err(e) = db.write_record(&message_id, record, now_ms()).await
    {
        worker::console_error!("edgerelay: could not record the outcome of {message_id}: {e}");
    }
    match (then, raw) {
        (Then::Ack, Some(raw)) => raw.ack(),
        (Then::RetryAfter(delay_seconds), Some(raw)) => raw.retry_with_options(
            &QueueRetryOptionsBuilder::new()
                .with_delay_seconds(delay_seconds)
                .build(),
        ),
        _ => {}
    }
}

/// What becomes of the queue message once the record is written.
enum Then {
    Ack,
    RetryAfter(u32),
    Nothing,
}
