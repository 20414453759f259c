//! Settling a message: from what is recorded and what an attempt came to, to
//! a [`Settlement`] that lists exactly what the edge must write and send.
//!
//! Owns the rules after an attempt: merging each recipient's new state into
//! the recorded ones, the message status, the events (one `bounced` per
//! recipient refused for good, then one for the attempt), whether the attempt
//! counts, when the next one is due, who carries it (a new queue message, or
//! an immediate delivery's safety job), when to dead-letter, when a body
//! kept in the bucket can be released (only at an end state: a retry needs
//! it), and which refusals add the address to the tenant's suppression list
//! (hard bounces only, see `events::suppression::from_refusal`).
//! The queue consumer and immediate deliveries both settle here, so their
//! records are the same.
//! Must not: perform I/O or read the clock; the time and the jitter are inputs.

use crate::events::suppression::{Entry, Refusal, from_refusal};
use crate::queue::{DeadLetter, DeliveryJob, EventKind, MessageStatus, QueueBody};

use super::attempt::AttemptReport;
use super::policy::{Decision, RetryPolicy};
use super::recipients::{
    RecipientResult, RecipientState, all_deferred, message_status, settle as settle_recipients,
};

/// The detail of the event that settles a redelivered message from its records.
pub const REDELIVERY_DETAIL: &str = "settled from the recorded recipients after a redelivery";

/// Who carries a message with deferred recipients to its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// The queue consumer: a new queue message with the recipients left, or,
    /// when that cannot be sent, this queue message redelivered.
    Queue,
    /// An immediate delivery: its safety job is on the queue already and
    /// waits for the recorded `next_attempt_at` (see `delivery::immediate`),
    /// so no second queue message is ever made.
    SafetyJob,
}

/// One attempt for one job, as the edge ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub report: AttemptReport,
    /// Each recipient's result from the last transaction that completed for
    /// the job; `None` when none completed (no upstream was reached).
    pub results: Option<Vec<RecipientResult>>,
}

/// One event for a message's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub detail: String,
}

/// What to write on a message's record, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Recipient rows to write (a row already final stays so).
    pub recipients: Vec<RecipientResult>,
    /// The recipients' results were each written (and counted) the moment
    /// their transaction completed: write them again without counting. Only
    /// what settling changed (deferred recipients failed at the end of the
    /// lifetime) is new then.
    pub recipients_recorded: bool,
    /// Whether this attempt adds one to the message's and the recipients' attempt counts.
    pub counts_attempt: bool,
    /// Events to append, in this order.
    pub events: Vec<Event>,
    pub status: MessageStatus,
    /// The message's `last_error`; `None` leaves the one recorded.
    pub last_error: Option<String>,
    /// When the next attempt is due, Unix seconds; `None` clears it.
    pub next_attempt_at: Option<u64>,
    /// Entries to add to the tenant's suppression list (an entry already
    /// there for the address and scope is replaced).
    pub suppress: Vec<Entry>,
}

/// What becomes of the queue message (if any) that carried the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Acknowledge it: nothing more to send.
    Ack,
    /// Send `body` to the jobs queue with this delay, then acknowledge. If the
    /// send fails, ask the platform to redeliver the queue message after the
    /// same delay instead: the recipient records keep the redelivery from
    /// re-sending to recipients already delivered.
    Requeue { body: QueueBody, delay_seconds: u32 },
    /// Send this to the dead-letter queue, then acknowledge.
    DeadLetter(DeadLetter),
    /// Neither send nor acknowledge: the safety job already waits on the queue.
    Wait,
}

/// Everything the edge does to settle one message, in this order: the
/// follow-up's send, the body's release, the record, then the acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub message_id: String,
    /// `None` when the record is already right.
    pub record: Option<Record>,
    pub follow_up: FollowUp,
    /// The stored body to delete from the bucket: the message is at an end state.
    pub release_body: Option<String>,
}

/// Settles `job` after `attempt`. `recorded` holds the recipient states
/// recorded before the attempt; `now_ms` is the time (Unix milliseconds) and
/// `jitter` a number in [0, 1) for the retry delay.
pub fn settle(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    attempt: Attempt,
    policy: &RetryPolicy,
    now_ms: u64,
    jitter: f64,
    carrier: Carrier,
) -> Settlement {
    let Attempt { report, results } = attempt;
    let recipients_recorded = results.is_some();
    let results = results.unwrap_or_else(|| all_deferred(&job.rcpt_to, &report.detail));
    let made = job.attempt + 1;
    let age = (now_ms / 1000).saturating_sub(job.accepted_at);
    let decision = policy.decide(&report.result, made, age, jitter);
    let counts_attempt = !matches!(decision, Decision::Retry { counts: false, .. });
    let results = settle_recipients(results, &decision);
    let status = status_after(recorded, &results);

    let mut events: Vec<Event> = results
        .iter()
        .filter(|r| r.state == RecipientState::Failed)
        .map(bounce)
        .collect();
    let (last, next_attempt_at, follow_up) = match decision {
        Decision::Delivered => (
            event(EventKind::Delivered, report.detail),
            None,
            FollowUp::Ack,
        ),
        Decision::Retry { delay_seconds, .. } => {
            let follow_up = match carrier {
                Carrier::Queue => FollowUp::Requeue {
                    body: QueueBody::deliver(DeliveryJob {
                        rcpt_to: report.remaining,
                        attempt: if counts_attempt { made } else { job.attempt },
                        ..job.for_queue()
                    }),
                    delay_seconds,
                },
                Carrier::SafetyJob => FollowUp::Wait,
            };
            (
                event(
                    EventKind::Deferred,
                    format!("{}; next attempt in {delay_seconds} s", report.detail),
                ),
                Some(now_ms / 1000 + u64::from(delay_seconds)),
                follow_up,
            )
        }
        Decision::Fail(reason) => (
            event(EventKind::Failed, reason.clone()),
            None,
            FollowUp::DeadLetter(letter(reason, job)),
        ),
        Decision::Unknown(reason) => (event(EventKind::Unknown, reason), None, FollowUp::Ack),
    };
    // A stored body is kept while a retry may need it.
    let release_body = match next_attempt_at {
        Some(_) => None,
        None => job.body_ref.clone(),
    };
    let last_error = error_for(status, &last.detail);
    events.push(last);
    let suppress = hard_bounces(job, &results, now_ms);
    Settlement {
        message_id: job.id.clone(),
        record: Some(Record {
            recipients: results,
            recipients_recorded,
            counts_attempt,
            events,
            status,
            last_error,
            next_attempt_at,
            suppress,
        }),
        follow_up,
        release_body,
    }
}

/// A redelivered job none of whose recipients is left to deliver (the crash
/// came after their results were recorded, perhaps before the status was):
/// brings the status in line with the recorded recipients, unless `current`
/// already says so, and stops.
pub fn settle_recorded(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    current: Option<MessageStatus>,
) -> Settlement {
    let states: Vec<RecipientState> = recorded.iter().map(|(_, s)| *s).collect();
    let status = message_status(&states);
    let record = (current != Some(status)).then(|| Record {
        recipients: Vec::new(),
        recipients_recorded: false,
        counts_attempt: false,
        events: vec![event(
            EventKind::settled_as(status),
            REDELIVERY_DETAIL.into(),
        )],
        status,
        last_error: error_for(status, REDELIVERY_DETAIL),
        next_attempt_at: None,
        suppress: Vec::new(),
    });
    Settlement {
        message_id: job.id.clone(),
        record,
        follow_up: FollowUp::Ack,
        release_body: if status.is_final() {
            job.body_ref.clone()
        } else {
            None
        },
    }
}

/// A job whose stored body is gone: it can never be delivered. Recipients
/// recorded delivered (or unknown) stay so; the others fail, and the status
/// follows from all of them (a message half delivered before its body was
/// released is `partially_delivered`, not `failed`). The job is dead-lettered.
pub fn body_lost(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    current: Option<MessageStatus>,
    reason: &str,
) -> Settlement {
    let mut s = given_up(job, recorded, current, EventKind::Failed, reason);
    s.follow_up = FollowUp::DeadLetter(letter(reason.into(), job));
    // The body is gone already.
    s.release_body = None;
    s
}

/// A job that reached the dead-letter queue (given up by us, or moved there
/// by the platform after repeated crashes): settled from its recipients'
/// recorded states, never forced to `failed`. The ones recorded final keep
/// their state; the others fail with `reason`. Acknowledge once written.
pub fn dead_lettered(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    current: Option<MessageStatus>,
    reason: &str,
) -> Settlement {
    given_up(job, recorded, current, EventKind::DeadLettered, reason)
}

/// The end of a message no attempt will follow: its job's recipients not yet
/// final fail with `reason`, one event of `kind` says why, and the status is
/// what all recorded recipients add up to. `current` is the status on the
/// record: unchanged, it is written again as it is.
fn given_up(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    current: Option<MessageStatus>,
    kind: EventKind,
    reason: &str,
) -> Settlement {
    // Every recipient the job or the record names, once.
    let mut addresses: Vec<&str> = Vec::new();
    for a in job.rcpt_to.iter().chain(recorded.iter().map(|(a, _)| a)) {
        if !addresses.iter().any(|b| b.eq_ignore_ascii_case(a)) {
            addresses.push(a);
        }
    }
    let final_state = |address: &str| {
        recorded
            .iter()
            .find(|(a, s)| a.eq_ignore_ascii_case(address) && s.is_final())
            .map(|(_, s)| *s)
    };
    let failed: Vec<RecipientResult> = addresses
        .iter()
        .filter(|a| final_state(a).is_none())
        .map(|address| RecipientResult {
            address: address.to_string(),
            state: RecipientState::Failed,
            reply_code: None,
            enhanced_code: None,
            reply_text: reason.to_string(),
        })
        .collect();
    let states: Vec<RecipientState> = addresses
        .iter()
        .map(|a| final_state(a).unwrap_or(RecipientState::Failed))
        .collect();
    let status = match (states.is_empty(), current) {
        // Nothing to go by: the record keeps what it says.
        (true, Some(current)) => current,
        (true, None) => MessageStatus::Failed,
        (false, _) => message_status(&states),
    };
    let mut events: Vec<Event> = failed.iter().map(bounce).collect();
    events.push(event(kind, reason.into()));
    Settlement {
        message_id: job.id.clone(),
        record: Some(Record {
            recipients: failed,
            recipients_recorded: false,
            counts_attempt: false,
            events,
            status,
            last_error: error_for(status, reason),
            next_attempt_at: None,
            suppress: Vec::new(),
        }),
        follow_up: FollowUp::Ack,
        release_body: job.body_ref.clone(),
    }
}

/// The recipients' states after an attempt: the recorded ones, each replaced
/// by its new result (addresses compare without regard to case), then the
/// status they add up to.
fn status_after(
    recorded: &[(String, RecipientState)],
    results: &[RecipientResult],
) -> MessageStatus {
    let mut states: Vec<(&str, RecipientState)> =
        recorded.iter().map(|(a, s)| (a.as_str(), *s)).collect();
    for r in results {
        states.retain(|(a, _)| !a.eq_ignore_ascii_case(&r.address));
        states.push((&r.address, r.state));
    }
    let list: Vec<RecipientState> = states.iter().map(|(_, s)| *s).collect();
    message_status(&list)
}

/// The suppression entries of the recipients an upstream refused for good
/// with a reply that says the address is bad. A recipient failed without a
/// reply (given up at the end of its lifetime) or for policy or content is
/// never suppressed. The edge also writes them with each transaction's
/// results, so an attempt that dies before it settles loses none.
pub fn hard_bounces(job: &DeliveryJob, results: &[RecipientResult], now_ms: u64) -> Vec<Entry> {
    results
        .iter()
        .filter(|r| r.state == RecipientState::Failed)
        .filter_map(|r| {
            let refusal = Refusal {
                address: &r.address,
                code: r.reply_code?,
                enhanced: r.enhanced_code.as_deref(),
                text: &r.reply_text,
            };
            from_refusal(job.tenant(), &job.id, refusal, now_ms)
        })
        .collect()
}

/// The `bounced` event of a recipient refused for good: its address and the reply.
fn bounce(r: &RecipientResult) -> Event {
    event(
        EventKind::Bounced,
        format!(
            "{}: {} {} {}",
            r.address,
            r.reply_code.map(|c| c.to_string()).unwrap_or_default(),
            r.enhanced_code.as_deref().unwrap_or(""),
            r.reply_text
        ),
    )
}

fn event(kind: EventKind, detail: String) -> Event {
    Event { kind, detail }
}

/// A delivered message keeps no error; any other status records why.
fn error_for(status: MessageStatus, detail: &str) -> Option<String> {
    (status != MessageStatus::Delivered).then(|| detail.to_string())
}

fn letter(reason: String, job: &DeliveryJob) -> DeadLetter {
    DeadLetter {
        reason,
        job: Some(job.for_queue()),
        raw: None,
        message_id: None,
    }
}

#[cfg(test)]
mod tests;
