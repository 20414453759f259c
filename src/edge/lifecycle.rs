//! Delivering a consumer batch durably: skip what is already recorded, spread
//! the rest over at most five SMTP sessions, record each message's delivered
//! recipients the moment its transaction completes, then settle each message
//! on its own (ack, retry its deferred recipients later, or fail it).
//!
//! Why a redelivered batch never re-sends: the recipients table is the truth.
//! Before any session opens, every job's recipients are checked against it and
//! recorded final ones (delivered, failed, unknown) are dropped. A delivered
//! recipient is written to D1 as soon as the upstream's 250 for that
//! transaction arrives, while the session carries on with the next message.
//!
//! The window that remains: the upstream has answered 250 but the D1 write
//! has not completed (the isolate dies in those few milliseconds, or D1 is
//! unreachable). A redelivery then sends that message again. It is kept
//! small by writing each transaction's result on its own, concurrently with
//! the rest of the session, instead of once at the end of the batch; closing
//! it entirely would need the upstream to deduplicate (by Message-ID).
//!
//! Must not: decide delivery rules; `delivery::{policy, recipients, plan}` do.

use std::collections::HashMap;

use futures_channel::mpsc;
use futures_util::StreamExt;
use futures_util::future::{join, join_all};
use worker::{Env, MessageBuilder, MessageExt, RawMessage};

use crate::delivery::plan::session_ranges;
use crate::delivery::recipients::{
    from_transaction, message_status, settle as settle_recipients, still_to_deliver,
};
use crate::delivery::{AttemptReport, Decision, RecipientResult, RecipientState, RetryPolicy};
use crate::queue::{DeliveryJob, EventKind, MessageStatus, QueueBody};

use super::ledger::Ledger;
use super::platform::{DATABASE, JOBS_QUEUE, Loaded, now_ms};
use super::store::Store;
use super::{random, smtp_driver};

/// Test-only fault: the consumer throws after settling this many freshly
/// delivered messages of a batch, leaving the rest unacknowledged, as a
/// crash would. Never set in production.
const CRASH_AFTER_VAR: &str = "FAULT_CONSUMER_CRASH_AFTER";

/// Delivers `work` and settles every message. Errors only for the injected fault.
pub async fn deliver_batch(
    env: &Env,
    loaded: &Loaded,
    store: &Store,
    mut work: Vec<(RawMessage, DeliveryJob)>,
) -> worker::Result<()> {
    let ledger = Ledger::new(env.d1(DATABASE)?);
    let ids: Vec<&str> = work.iter().map(|(_, j)| j.id.as_str()).collect();
    let recorded = match ledger.recipient_states(&ids).await {
        Ok(r) => r,
        Err(e) => {
            // Without the record we cannot tell what was sent: deliver nothing.
            worker::console_error!("edgerelay: could not read recipient states: {e}");
            for (raw, _) in &work {
                raw.retry();
            }
            return Ok(());
        }
    };
    let mut by_message: HashMap<String, Vec<(String, RecipientState)>> = HashMap::new();
    for (id, address, state) in recorded {
        by_message.entry(id).or_default().push((address, state));
    }

    // Drop recipients already recorded final; a job with none left is done.
    let mut pending = Vec::with_capacity(work.len());
    for (raw, mut job) in work.drain(..) {
        let states = by_message.remove(&job.id).unwrap_or_default();
        job.rcpt_to = still_to_deliver(&job.rcpt_to, &states);
        if job.rcpt_to.is_empty() {
            finish_recorded(store, &ledger, &job.id, &states).await;
            raw.ack();
        } else {
            pending.push((raw, job, states));
        }
    }
    if pending.is_empty() {
        return Ok(());
    }

    let jobs: Vec<&DeliveryJob> = pending.iter().map(|(_, j, _)| j).collect();
    let reports = deliver_recording(env, loaded, &ledger, &jobs).await;

    let crash_after: Option<usize> = env
        .var(CRASH_AFTER_VAR)
        .ok()
        .and_then(|v| v.to_string().trim().parse().ok());
    let policy = RetryPolicy::new(loaded.settings.retry);
    let total = pending.len();
    for (settled, ((raw, job, states), report)) in pending.into_iter().zip(reports).enumerate() {
        if crash_after.is_some_and(|k| settled == k && k < total) {
            return Err(worker::Error::RustError(format!(
                "{CRASH_AFTER_VAR}: crashing after {settled} of {total} messages"
            )));
        }
        settle(
            env,
            store,
            &ledger,
            &policy,
            Carrier::Queue(&raw),
            job,
            &states,
            report,
        )
        .await;
    }
    Ok(())
}

/// Runs the sessions (at most five at once) and records delivered recipients
/// as each transaction completes.
pub(crate) async fn deliver_recording(
    env: &Env,
    loaded: &Loaded,
    ledger: &Ledger,
    jobs: &[&DeliveryJob],
) -> Vec<(AttemptReport, Vec<RecipientResult>)> {
    let (tx, mut rx) = mpsc::unbounded::<(usize, Vec<RecipientResult>)>();
    let ranges = session_ranges(jobs.len());
    let sessions = async move {
        let reports: Vec<AttemptReport> = {
            let tx = &tx;
            let runs = ranges.into_iter().map(|range| {
                let start = range.start;
                let chunk: Vec<&DeliveryJob> = jobs[range].to_vec();
                async move {
                    let on_done = |i: usize, o: &crate::smtp::TransactionOutcome| {
                        if let Some(job) = jobs.get(start + i) {
                            let _ =
                                tx.unbounded_send((start + i, from_transaction(o, &job.rcpt_to)));
                        }
                    };
                    smtp_driver::deliver_with(&loaded.settings, env, &chunk, &on_done).await
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
            if let Err(e) = ledger.record_delivered(&job.id, &results, now_ms()).await {
                worker::console_error!("edgerelay: could not record a delivery: {e}");
            }
            latest.insert(index, results);
        }
        latest
    };
    let (reports, mut latest) = join(sessions, recorder).await;
    reports
        .into_iter()
        .enumerate()
        .map(|(index, report)| {
            let results = latest.remove(&index).unwrap_or_else(|| {
                // No transaction completed (no upstream reachable).
                crate::delivery::recipients::all_deferred(&jobs[index].rcpt_to, &report.detail)
            });
            (report, results)
        })
        .collect()
}

/// A redelivered job whose recipients are all recorded: bring its status in
/// line (the crash may have come before the status update) and stop.
async fn finish_recorded(
    store: &Store,
    ledger: &Ledger,
    id: &str,
    states: &[(String, RecipientState)],
) {
    let list: Vec<RecipientState> = states.iter().map(|(_, s)| *s).collect();
    let status = message_status(&list);
    match store.status_of(id).await {
        Ok(Some(current)) if current == status => {}
        _ => {
            let now = now_ms();
            let detail = "settled from the recorded recipients after a redelivery";
            let recorded = store
                .record_attempt(
                    id,
                    status,
                    false,
                    EventKind::settled_as(status),
                    Some(detail),
                    now,
                )
                .await;
            let scheduled = match ledger.schedule_statement(id, None) {
                Ok(s) => ledger.run(vec![s]).await,
                Err(e) => Err(e),
            };
            if let Err(e) = recorded.and(scheduled) {
                worker::console_error!("edgerelay: could not settle a redelivered message: {e}");
            }
        }
    }
}

/// Who carries a message with deferred recipients to its next attempt.
pub(crate) enum Carrier<'a> {
    /// The consumer: a new queue message, or this one redelivered.
    Queue(&'a RawMessage),
    /// An immediate delivery: its safety job is on the queue already and
    /// waits for the recorded `next_attempt_at` (see `delivery::immediate`),
    /// so no second queue message is ever made.
    SafetyJob,
}

/// What an attempt came to, as recorded.
pub(crate) struct Settled {
    pub status: MessageStatus,
    pub results: Vec<RecipientResult>,
    /// Unix seconds, while a recipient awaits a retry.
    pub next_attempt_at: Option<u64>,
}

/// Records an attempt's outcome (recipients, events, status, schedule) and
/// hands deferred recipients to the `carrier`. The consumer and immediate
/// deliveries both settle here, so their records are the same.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle(
    env: &Env,
    store: &Store,
    ledger: &Ledger,
    policy: &RetryPolicy,
    carrier: Carrier<'_>,
    job: DeliveryJob,
    recorded: &[(String, RecipientState)],
    (report, results): (AttemptReport, Vec<RecipientResult>),
) -> Settled {
    let now = now_ms();
    let attempt = job.attempt + 1;
    let age = (now / 1000).saturating_sub(job.accepted_at);
    let decision = policy.decide(&report.result, attempt, age, random::unit());
    let counts = !matches!(decision, Decision::Retry { counts: false, .. });
    let results = settle_recipients(results, &decision);

    // All recipients' states after this attempt, for the message status.
    let mut states: Vec<(String, RecipientState)> = recorded.to_vec();
    for r in &results {
        states.retain(|(a, _)| !a.eq_ignore_ascii_case(&r.address));
        states.push((r.address.clone(), r.state));
    }
    let list: Vec<RecipientState> = states.iter().map(|(_, s)| *s).collect();
    let status = message_status(&list);

    let mut statements = match ledger.recipient_statements(&job.id, &results, counts, now) {
        Ok(s) => s,
        Err(e) => {
            worker::console_error!("edgerelay: could not prepare recipient records: {e}");
            Vec::new()
        }
    };
    for r in results.iter().filter(|r| r.state == RecipientState::Failed) {
        let detail = format!(
            "{}: {} {} {}",
            r.address,
            r.reply_code.map(|c| c.to_string()).unwrap_or_default(),
            r.enhanced_code.as_deref().unwrap_or(""),
            r.reply_text
        );
        if let Ok(s) = ledger.event_statement(&job.id, EventKind::Bounced, Some(&detail), now) {
            statements.push(s);
        }
    }

    let mut acked = true;
    let (kind, detail, next_at) = match &decision {
        Decision::Delivered => (EventKind::Delivered, report.detail.clone(), None),
        Decision::Retry { delay_seconds, .. } => {
            let next = DeliveryJob {
                rcpt_to: report.remaining.clone(),
                attempt: if counts { attempt } else { job.attempt },
                ..job.for_queue()
            };
            let queued = match (&carrier, env.queue(JOBS_QUEUE)) {
                (Carrier::SafetyJob, _) => true,
                (Carrier::Queue(_), Ok(q)) => q
                    .send(
                        MessageBuilder::new(QueueBody::deliver(next).to_json())
                            .delay_seconds(*delay_seconds)
                            .build(),
                    )
                    .await
                    .is_ok(),
                (Carrier::Queue(_), Err(_)) => false,
            };
            if let (false, Carrier::Queue(raw)) = (queued, &carrier) {
                acked = false;
                // The platform redelivers this very message instead; the
                // recipient records keep it from re-sending the delivered ones.
                raw.retry_with_options(
                    &worker::QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(*delay_seconds)
                        .build(),
                );
            }
            (
                EventKind::Deferred,
                format!("{}; next attempt in {delay_seconds} s", report.detail),
                Some(now / 1000 + u64::from(*delay_seconds)),
            )
        }
        Decision::Fail(reason) => {
            super::consumer::dead_letter(env, reason, Some(job.clone()), None).await;
            (EventKind::Failed, reason.clone(), None)
        }
        Decision::Unknown(reason) => (EventKind::Unknown, reason.clone(), None),
    };
    // A stored body is kept while a retry may need it, and released at an end state.
    if !matches!(decision, Decision::Retry { .. }) {
        super::bodies::release(env, job.body_ref.as_deref()).await;
    }
    if let Ok(s) = ledger.schedule_statement(&job.id, next_at) {
        statements.push(s);
    }
    if let Err(e) = ledger.run(statements).await {
        worker::console_error!("edgerelay: could not record recipient results: {e}");
    }
    if let Err(e) = store
        .record_attempt(&job.id, status, counts, kind, Some(&detail), now)
        .await
    {
        worker::console_error!("edgerelay: could not record the outcome of a delivery: {e}");
    }
    if let (true, Carrier::Queue(raw)) = (acked, &carrier) {
        raw.ack();
    }
    Settled {
        status,
        results,
        next_attempt_at: next_at,
    }
}
