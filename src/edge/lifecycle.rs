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
//!    with the suppression entries its hard bounces add, while the session
//!    carries on with the next message.
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
//! settlements here, so their records, and the events of the stream they
//! emit, are the same.
//! Must not: decide anything; `delivery::{plan, failover, settle, recipients}` do.

use std::collections::HashMap;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use futures_util::future::{LocalBoxFuture, join, join_all};

use worker::{Delay, Env, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use crate::delivery::attempt::report;
use crate::delivery::email_events::of_settlement;
use crate::delivery::outage::RECORD_RETRY_DELAYS_MS;
use crate::delivery::plan::session_ranges;
use crate::delivery::recipients::{from_transaction, in_flight};
use crate::delivery::settle::hard_bounces;
use crate::delivery::{
    Attempt, AttemptResult, DeliverySettings, FollowUp, Outgoing, RecipientResult, Settlement,
};
use crate::events::log_line::LogValue;
use crate::queue::DeliveryJob;
use crate::smtp::TransactionOutcome;

use super::d1::Db;
use super::log;
use super::platform::now_ms;
use super::{bodies, email_events, queue_writer, smtp_driver};

/// Runs the sessions for `jobs` (at most five at once), recording each
/// transaction's recipients in flight before its final dot and their results
/// as it completes. One attempt per job, in order.
pub(crate) async fn deliver_recording(
    env: &Env,
    settings: &DeliverySettings,
    db: &Db,
    jobs: &[&Outgoing],
) -> Vec<Attempt> {
    let (tx, mut rx) = mpsc::unbounded::<(usize, Vec<RecipientResult>)>();
    let ranges = session_ranges(jobs.len());
    // One D1 batch for every data end about to go out together.
    let mark = |ends: Vec<(usize, Vec<String>)>| -> LocalBoxFuture<'_, bool> {
        Box::pin(async move {
            let markers: Vec<(&str, Vec<RecipientResult>)> = ends
                .iter()
                .filter_map(|(index, recipients)| {
                    jobs.get(*index)
                        .map(|out| (out.job.id.as_str(), in_flight(recipients)))
                })
                .collect();
            let Some(&(first, _)) = markers.first() else {
                return true;
            };
            match db.record_recipients_of(&markers, false, now_ms()).await {
                Ok(()) => true,
                Err(e) => {
                    log::error(
                        "could_not_record_in_flight",
                        &[
                            ("message_id", LogValue::Id(first)),
                            ("messages", LogValue::Num(markers.len() as u64)),
                            ("error", LogValue::Text(&e.to_string())),
                        ],
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
                let chunk: Vec<&Outgoing> = jobs.get(range).unwrap_or_default().to_vec();
                async move {
                    let on_done = |i: usize, o: &TransactionOutcome| {
                        // A transaction the upstream throttled is recorded
                        // when it settles, without counting an attempt.
                        if matches!(report(o).result, AttemptResult::Waiting { .. }) {
                            return;
                        }
                        if let Some(out) = jobs.get(start + i) {
                            let results = from_transaction(o, &out.job.rcpt_to);
                            let _ = tx.unbounded_send((start + i, results));
                        }
                    };
                    let before = |ends: Vec<(usize, Vec<String>)>| {
                        mark(ends.into_iter().map(|(i, r)| (start + i, r)).collect())
                    };
                    smtp_driver::deliver_with(env, settings, db, &chunk, &before, &on_done).await
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
            let Some(out) = jobs.get(index) else { continue };
            let id = &out.job.id;
            let suppress = hard_bounces(&out.job, &results, now_ms());
            let written =
                with_retries(|| db.record_results(id, &results, &suppress, now_ms())).await;
            if let Err(e) = written {
                log::error_because("could_not_record_a_transaction", &e);
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

/// Runs a record write, trying again after each of
/// [`RECORD_RETRY_DELAYS_MS`] while D1 refuses it.
async fn with_retries<F, Fut>(write: F) -> worker::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = worker::Result<()>>,
{
    let mut result = write().await;
    for delay_ms in RECORD_RETRY_DELAYS_MS {
        if result.is_ok() {
            break;
        }
        Delay::from(Duration::from_millis(delay_ms)).await;
        result = write().await;
    }
    result
}

/// Whether a settlement was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Executed {
    Done,
    /// The record could not be written: nothing was sent, released or
    /// acknowledged. The caller treats it as storage trouble (a queue
    /// message is sent again later, see `delivery::outage`; an immediate
    /// delivery keeps its lease).
    NotRecorded,
}

/// Carries out a settlement: the record first, then the follow-up's send,
/// the body's release, and the queue message's acknowledgement or retry
/// (`raw` is `None` for an immediate delivery, which has no queue message in
/// hand). The record comes first so that nothing is acknowledged, and no
/// body deleted, on the strength of an outcome that was never written.
pub(crate) async fn execute(
    env: &Env,
    db: &Db,
    raw: Option<&RawMessage>,
    settlement: Settlement,
) -> Executed {
    let Settlement {
        message_id,
        record,
        follow_up,
        release_body,
    } = settlement;
    if let Some(record) = &record
        && let Err(e) = with_retries(|| db.write_record(&message_id, record, now_ms())).await
    {
        log::error(
            "could_not_record_an_outcome",
            &[
                ("message_id", LogValue::Id(&message_id)),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
        return Executed::NotRecorded;
    }
    if let Some(record) = &record {
        // One line per settled attempt (the first ten recipients);
        // addresses and replies are masked by the line (`events::log_line`).
        let recipients: serde_json::Value = record
            .recipients
            .iter()
            .take(10)
            .map(|r| {
                serde_json::json!({
                    "recipient": r.address,
                    "state": r.state.as_str(),
                    "code": r.reply_code,
                    "reply": r.reply_text,
                })
            })
            .collect();
        let mut fields = vec![
            ("message_id", LogValue::Id(&message_id)),
            ("status", LogValue::Id(record.status.as_str())),
        ];
        if let Some(error) = &record.last_error {
            fields.push(("last_error", LogValue::Text(error)));
        }
        fields.push((
            "recipient_count",
            LogValue::Num(record.recipients.len() as u64),
        ));
        fields.push(("recipients", LogValue::Json(&recipients)));
        log::info("message_settled", &fields);
    }
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
                log::warn(
                    "could_not_requeue",
                    &[
                        ("message_id", LogValue::Id(&message_id)),
                        ("error", LogValue::Text(&e.to_string())),
                    ],
                );
                Then::RetryAfter(delay_seconds)
            }
        },
    };
    bodies::release(env, release_body.as_deref()).await;
    match (then, raw) {
        (Then::Ack, Some(raw)) => raw.ack(),
        (Then::RetryAfter(delay_seconds), Some(raw)) => raw.retry_with_options(
            &QueueRetryOptionsBuilder::new()
                .with_delay_seconds(delay_seconds)
                .build(),
        ),
        _ => {}
    }
    Executed::Done
}

/// [`execute`], then the events of the stream the settlement of `job`
/// emits (`delivery::email_events`), published once the record is written.
/// An event that cannot be stored is logged: the message's record, which
/// counts for delivery, is written already.
pub(crate) async fn execute_for(
    env: &Env,
    db: &Db,
    raw: Option<&RawMessage>,
    job: &DeliveryJob,
    settlement: Settlement,
) -> Executed {
    let events = of_settlement(job, &settlement, now_ms());
    let executed = execute(env, db, raw, settlement).await;
    if executed == Executed::Done
        && let Err(e) = email_events::publish(env, db, &events).await
    {
        log::error(
            "could_not_record_events",
            &[
                ("message_id", LogValue::Id(&job.id)),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
    }
    executed
}

/// What becomes of the queue message once the record is written.
enum Then {
    Ack,
    RetryAfter(u32),
    Nothing,
}
