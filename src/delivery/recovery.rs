//! Recovery: what keeps two deliveries of one message from running at once,
//! and what brings back a message whose queue job was lost.
//!
//! Every accepted message keeps the job that delivers it on its row (its
//! queue body: the MIME itself when small, the body's key in the bucket when
//! large) until it reaches an end state. Queue messages can still be lost (a
//! local queue across a restart; in production an enqueue that failed after
//! the row was stored, a lost dead letter, a bug), so a reconciliation sweep
//! runs on a cron trigger: it finds messages that are not final and whose
//! next step is overdue by a grace period, and re-enqueues their stored job
//! ([`sweep`]). A job that arrives twice (the sweep's and a late original) is
//! harmless because of the *delivery lease*: before a job is delivered, the
//! consumer takes the message's lease in D1 with a conditional write only one
//! holder can win; a job that finds the lease held waits and looks again
//! ([`verdict`]). The accept path writes the row and sends the job at once,
//! so a job can arrive before its row is visible: a job whose row is missing
//! looks again after a short delay (no attempt counted) until
//! [`ROW_WAIT_SECONDS`] after its acceptance, and is then refused: its
//! message was never accepted (the request was answered `503`).
//!
//! Owns: the lease's length and what a job does after trying to take it, and
//! the sweep's rules (what is overdue, how many per run, what each overdue
//! message needs). Must not: perform I/O or read the clock; the edge runs the
//! statements and passes the time in.

use crate::queue::{DeliveryJob, MessageStatus, QueueBody};

use super::recipients::{RecipientState, message_status, still_to_deliver};
pub use super::settings::RecoverySettings;
use super::settle::{Settlement, settle_recorded};

/// What the store says about a job's message once the lease was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub status: MessageStatus,
    /// The lease as it stands after the attempt to take it, Unix ms.
    pub lease_until: Option<u64>,
    /// This consumer holds it now.
    pub won: bool,
}

/// What to do with a job after trying to take its message's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseVerdict {
    /// The lease is ours: deliver.
    Deliver,
    /// Another delivery holds it: enqueue the job again after this delay.
    Busy { delay_seconds: u32 },
    /// The message is final already: acknowledge, nothing to do.
    Settled,
    /// No row yet: the accept path may still be writing it. Enqueue the
    /// job again after this delay, counting no attempt.
    AwaitRow { delay_seconds: u32 },
    /// No row: the message was never accepted (its request was answered
    /// 503, or the row was withdrawn), so the job must not deliver anything.
    Refuse(String),
}

/// How long after its acceptance a job waits for its row to appear. The
/// accept path's row write is answered (or fails) well within this; a job
/// still without a row then was refused to its caller. Should a row ever be
/// written later than this, the message is not lost: its row keeps the job
/// and the sweep delivers it once it is overdue.
pub const ROW_WAIT_SECONDS: u64 = 30;

/// A job accepted further than this in the future is forged, not skewed.
const CLOCK_SKEW_SECONDS: u64 = 60;

/// The longest a job waits before looking for its row again.
const ROW_RECHECK_SECONDS: u64 = 15;

/// The longest a job waits before looking at a held lease again.
const BUSY_RECHECK_SECONDS: u64 = 60;

/// Decides for one job accepted at `accepted_at` (Unix seconds, from the
/// job). `row` is `None` when the message has no row.
pub fn verdict(row: Option<&LeaseRow>, accepted_at: u64, now_ms: u64) -> LeaseVerdict {
    let Some(row) = row else {
        return match missing_row(accepted_at, now_ms) {
            RowWait::Wait { delay_seconds } => LeaseVerdict::AwaitRow { delay_seconds },
            RowWait::Refuse(reason) => LeaseVerdict::Refuse(reason),
        };
    };
    if row.status.is_final() {
        return LeaseVerdict::Settled;
    }
    if row.won {
        return LeaseVerdict::Deliver;
    }
    let left = row
        .lease_until
        .map(|until| until.saturating_sub(now_ms).div_ceil(1000))
        .unwrap_or(1);
    LeaseVerdict::Busy {
        delay_seconds: left.clamp(1, BUSY_RECHECK_SECONDS) as u32,
    }
}

/// What a job whose message has no row does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowWait {
    /// Look again after this delay, counting no attempt.
    Wait { delay_seconds: u32 },
    /// Waited long enough (or dated in the future): never accepted.
    Refuse(String),
}

/// A job accepted at `accepted_at` (Unix seconds) without a row: wait while
/// its row may still be on its way, with delays that grow with the job's age
/// (1, 2, 4, ... seconds, at most [`ROW_RECHECK_SECONDS`]), so a job makes a
/// handful of checks at most; then refuse it.
pub fn missing_row(accepted_at: u64, now_ms: u64) -> RowWait {
    let now = now_ms / 1000;
    let refuse = |why: &str| {
        RowWait::Refuse(format!(
            "refused a job whose message has no record {why}: it was never accepted"
        ))
    };
    if accepted_at > now.saturating_add(CLOCK_SKEW_SECONDS) {
        return refuse("and an acceptance time in the future");
    }
    let age = now.saturating_sub(accepted_at);
    if age >= ROW_WAIT_SECONDS {
        return refuse(&format!("{ROW_WAIT_SECONDS} s after its acceptance"));
    }
    let delay = age
        .clamp(1, ROW_RECHECK_SECONDS)
        .min(ROW_WAIT_SECONDS - age);
    RowWait::Wait {
        delay_seconds: delay.max(1) as u32,
    }
}

/// Whether each job of a batch is the first copy of its message in it. A
/// later copy (the sweep's beside a late original) would find the lease won
/// by this very invocation, so only the first may deliver; the others are
/// acknowledged.
pub fn first_copies(ids: &[&str]) -> Vec<bool> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| !ids.get(..i).unwrap_or_default().contains(id))
        .collect()
}

/// The statuses a lease may be taken on: those of messages not final.
pub fn leasable() -> [MessageStatus; 3] {
    [
        MessageStatus::Queued,
        MessageStatus::Deferred,
        MessageStatus::Held,
    ]
}

/// A stored message the sweep looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRow {
    pub id: String,
    pub status: MessageStatus,
    pub attempts: u32,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; `None` before the first attempt settled.
    pub next_attempt_at: Option<u64>,
    /// The stored job, as JSON; `None` for a message stored before jobs were.
    pub job: Option<String>,
}

/// What one sweep run does for one overdue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepAction {
    /// Its job was lost: send its stored job to the queue again, now, and
    /// mark the message due now (`next_attempt_at`), so the following runs
    /// give the job a whole grace period to arrive before sending another.
    Requeue { id: String, body: QueueBody },
    /// Every recipient is recorded final but the status says otherwise:
    /// write the status its recipients add up to.
    Correct(Settlement),
    /// Nothing can be done from here (no stored job): the operator is told.
    Stuck { id: String, reason: String },
}

/// The latest `COALESCE(next_attempt_at, created_at)`, Unix seconds, of a
/// message the sweep treats as overdue at `now_ms`.
pub fn overdue_before(settings: &RecoverySettings, now_ms: u64) -> u64 {
    (now_ms / 1000).saturating_sub(u64::from(settings.sweep_grace_seconds))
}

/// Plans one sweep run over `rows` (messages not final and not leased, as
/// the store found them) and `recorded` (their recipients' states). Only
/// overdue messages are acted on, oldest due first, at most
/// `settings.sweep_limit` of them.
pub fn sweep(
    rows: &[SweepRow],
    recorded: &[(String, String, RecipientState)],
    settings: &RecoverySettings,
    now_ms: u64,
) -> Vec<SweepAction> {
    let cutoff = overdue_before(settings, now_ms);
    let mut due: Vec<&SweepRow> = rows
        .iter()
        .filter(|r| !r.status.is_final())
        .filter(|r| r.next_attempt_at.unwrap_or(r.created_at) <= cutoff)
        .collect();
    due.sort_by_key(|r| (r.next_attempt_at.unwrap_or(r.created_at), r.id.clone()));
    due.truncate(settings.sweep_limit as usize);
    due.into_iter()
        .map(|row| {
            let states: Vec<(String, RecipientState)> = recorded
                .iter()
                .filter(|(id, _, _)| *id == row.id)
                .map(|(_, address, state)| (address.clone(), *state))
                .collect();
            act(row, &states)
        })
        .collect()
}

fn act(row: &SweepRow, states: &[(String, RecipientState)]) -> SweepAction {
    let job = match row.job.as_deref().map(serde_json::from_str::<DeliveryJob>) {
        Some(Ok(job)) => job,
        Some(Err(e)) => {
            return SweepAction::Stuck {
                id: row.id.clone(),
                reason: format!("its stored job cannot be read: {e}"),
            };
        }
        None => {
            return SweepAction::Stuck {
                id: row.id.clone(),
                reason: "it has no stored job".into(),
            };
        }
    };
    // In flight (`sending`) counts as not settled: the consumer turns a
    // stale marker into `unknown` once it holds the lease.
    let any_in_flight = states.iter().any(|(_, s)| *s == RecipientState::Sending);
    let left = still_to_deliver(&job.rcpt_to, states);
    if left.is_empty() && !any_in_flight {
        let list: Vec<RecipientState> = states.iter().map(|(_, s)| *s).collect();
        if message_status(&list).is_final() {
            return SweepAction::Correct(settle_recorded(&job, states, Some(row.status)));
        }
    }
    SweepAction::Requeue {
        id: row.id.clone(),
        body: QueueBody::deliver(DeliveryJob {
            attempt: row.attempts,
            ..job
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecipientState::*;

    const NOW: u64 = 1_700_010_000_000;
    const NOW_S: u64 = NOW / 1000;

    fn settings(grace: u32, limit: u32) -> RecoverySettings {
        RecoverySettings {
            lease_seconds: 900,
            sweep_grace_seconds: grace,
            sweep_limit: limit,
        }
    }

    fn stored_job(id: &str, rcpts: &[&str]) -> String {
        let job = DeliveryJob {
            rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
            ..DeliveryJob::sample(id, "Subject: x\r\n\r\nx\r\n")
        };
        serde_json::to_string(&job).unwrap()
    }

    fn row(id: &str, status: MessageStatus, created_ago: u64, next_in: Option<i64>) -> SweepRow {
        SweepRow {
            id: id.into(),
            status,
            attempts: 2,
            created_at: NOW_S - created_ago,
            next_attempt_at: next_in.map(|d| (NOW_S as i64 + d) as u64),
            job: Some(stored_job(id, &["a@x.net", "b@x.net"])),
        }
    }

    fn summary(a: &SweepAction) -> String {
        match a {
            SweepAction::Requeue {
                id,
                body: QueueBody::Deliver { job, .. },
            } => format!("requeue {id} attempt {}", job.attempt),
            SweepAction::Requeue { id, .. } => format!("requeue {id} as a non-job"),
            SweepAction::Correct(s) => {
                let status = s.record.as_ref().map(|r| r.status.as_str()).unwrap_or("-");
                format!("correct {} to {status}", s.message_id)
            }
            SweepAction::Stuck { id, .. } => format!("stuck {id}"),
        }
    }

    #[test]
    fn lease_verdict_table() {
        let held = |until: u64, won: bool, status| LeaseRow {
            status,
            lease_until: Some(until),
            won,
        };
        let q = MessageStatus::Queued;
        let table: Vec<(Option<LeaseRow>, LeaseVerdict)> = vec![
            (Some(held(NOW + 900_000, true, q)), LeaseVerdict::Deliver),
            (
                Some(held(NOW + 900_000, true, MessageStatus::Deferred)),
                LeaseVerdict::Deliver,
            ),
            // Held by another delivery: look again when it runs out, at most a minute on.
            (
                Some(held(NOW + 2_500, false, q)),
                LeaseVerdict::Busy { delay_seconds: 3 },
            ),
            (
                Some(held(NOW + 900_000, false, q)),
                LeaseVerdict::Busy { delay_seconds: 60 },
            ),
            (
                Some(held(NOW, false, q)),
                LeaseVerdict::Busy { delay_seconds: 1 },
            ),
            (
                Some(LeaseRow {
                    status: q,
                    lease_until: None,
                    won: false,
                }),
                LeaseVerdict::Busy { delay_seconds: 1 },
            ),
            // Final (including a withdrawn message, recorded failed): nothing to do.
            (
                Some(held(NOW, false, MessageStatus::Failed)),
                LeaseVerdict::Settled,
            ),
            (
                Some(held(NOW, false, MessageStatus::Unknown)),
                LeaseVerdict::Settled,
            ),
            (
                Some(held(NOW, false, MessageStatus::Delivered)),
                LeaseVerdict::Settled,
            ),
        ];
        for (row, expected) in table {
            assert_eq!(verdict(row.as_ref(), NOW / 1000, NOW), expected, "{row:?}");
        }
        assert!(leasable().iter().all(|s| !s.is_final()));
    }

    /// A job that arrives before its row waits for it, without an attempt,
    /// for a bounded time; then it is refused and sends nothing.
    #[test]
    fn a_job_without_a_row_waits_a_bounded_time_then_is_refused() {
        let accepted = NOW / 1000;
        let at = |age: u64| verdict(None, accepted, (accepted + age) * 1000);
        let table = [
            (0, LeaseVerdict::AwaitRow { delay_seconds: 1 }),
            (1, LeaseVerdict::AwaitRow { delay_seconds: 1 }),
            (2, LeaseVerdict::AwaitRow { delay_seconds: 2 }),
            (4, LeaseVerdict::AwaitRow { delay_seconds: 4 }),
            (15, LeaseVerdict::AwaitRow { delay_seconds: 15 }),
            (20, LeaseVerdict::AwaitRow { delay_seconds: 10 }),
            (29, LeaseVerdict::AwaitRow { delay_seconds: 1 }),
        ];
        for (age, expected) in table {
            assert_eq!(at(age), expected, "age {age}");
        }
        assert!(matches!(at(ROW_WAIT_SECONDS), LeaseVerdict::Refuse(_)));
        assert!(matches!(at(86_400), LeaseVerdict::Refuse(_)));
        // A forged job dated in the future is refused at once, not kept.
        let forged = verdict(None, accepted + 3_600, accepted * 1000);
        assert!(matches!(forged, LeaseVerdict::Refuse(_)), "{forged:?}");
        // Follow the delays: a job makes a handful of checks, then is refused.
        let mut age = 0;
        let mut checks = 0;
        while let LeaseVerdict::AwaitRow { delay_seconds } = at(age) {
            age += u64::from(delay_seconds);
            checks += 1;
        }
        assert!(
            (ROW_WAIT_SECONDS..ROW_WAIT_SECONDS + 2).contains(&age),
            "{age}"
        );
        assert!(checks <= 10, "{checks} checks");
    }

    #[test]
    fn only_the_first_copy_of_a_job_in_a_batch_delivers() {
        assert_eq!(
            first_copies(&["a", "b", "a", "c", "b", "a"]),
            [true, true, false, true, false, false]
        );
        assert!(first_copies(&[]).is_empty());
    }

    #[test]
    fn sweep_table() {
        let s = settings(600, 10);
        let rows = vec![
            // Never attempted, its job lost: overdue once the grace has passed.
            row("old-queued", MessageStatus::Queued, 601, None),
            row("young-queued", MessageStatus::Queued, 599, None),
            row("edge-queued", MessageStatus::Queued, 600, None),
            // Deferred: overdue by its next attempt, not its age.
            row("late-retry", MessageStatus::Deferred, 90_000, Some(-700)),
            row(
                "retry-due-soon",
                MessageStatus::Deferred,
                90_000,
                Some(-100),
            ),
            row("retry-later", MessageStatus::Deferred, 90_000, Some(3_600)),
            // A final message is never touched.
            row("done", MessageStatus::Delivered, 90_000, None),
        ];
        let got: Vec<String> = sweep(&rows, &[], &s, NOW).iter().map(summary).collect();
        assert_eq!(
            got,
            [
                "requeue late-retry attempt 2",
                "requeue old-queued attempt 2",
                "requeue edge-queued attempt 2",
            ]
        );
    }

    #[test]
    fn a_run_is_bounded_and_takes_the_oldest_first() {
        let rows: Vec<SweepRow> = (0..50)
            .map(|i| row(&format!("m{i:02}"), MessageStatus::Queued, 1_000 + i, None))
            .collect();
        let got: Vec<String> = sweep(&rows, &[], &settings(60, 3), NOW)
            .iter()
            .map(summary)
            .collect();
        assert_eq!(
            got,
            [
                "requeue m49 attempt 2",
                "requeue m48 attempt 2",
                "requeue m47 attempt 2"
            ]
        );
    }

    #[test]
    fn statuses_that_disagree_with_their_recipients_are_corrected() {
        let s = settings(60, 10);
        let rows = vec![
            row("all-done", MessageStatus::Queued, 3_600, None),
            row("half-done", MessageStatus::Queued, 3_600, None),
            row("in-flight", MessageStatus::Queued, 3_600, None),
            row("bounced", MessageStatus::Deferred, 3_600, Some(-120)),
        ];
        let rec = |id: &str, a: &str, st| (id.to_string(), a.to_string(), st);
        let recorded = vec![
            rec("all-done", "a@x.net", Delivered),
            rec("all-done", "b@x.net", Unknown),
            rec("half-done", "a@x.net", Delivered),
            rec("in-flight", "a@x.net", Delivered),
            rec("in-flight", "b@x.net", Sending),
            rec("bounced", "A@x.net", Failed),
            rec("bounced", "b@x.net", Failed),
        ];
        let got: Vec<String> = sweep(&rows, &recorded, &s, NOW)
            .iter()
            .map(summary)
            .collect();
        assert_eq!(
            got,
            [
                "correct all-done to unknown",
                // One recipient left: its job goes back on the queue.
                "requeue half-done attempt 2",
                // A stale marker is the consumer's to settle, under the lease.
                "requeue in-flight attempt 2",
                // Due last (its retry was due two minutes ago).
                "correct bounced to failed",
            ]
        );
    }

    #[test]
    fn a_message_without_a_readable_job_is_reported_not_guessed() {
        let mut none = row("none", MessageStatus::Queued, 3_600, None);
        none.job = None;
        let mut bad = row("bad", MessageStatus::Queued, 3_601, None);
        bad.job = Some("{not json".into());
        let got: Vec<String> = sweep(&[none, bad], &[], &settings(60, 10), NOW)
            .iter()
            .map(summary)
            .collect();
        assert_eq!(got, ["stuck bad", "stuck none"]);
    }

    #[test]
    fn the_cutoff_is_now_less_the_grace() {
        assert_eq!(overdue_before(&settings(600, 1), NOW), NOW_S - 600);
        assert_eq!(overdue_before(&settings(600, 1), 1_000), 0);
    }
}
