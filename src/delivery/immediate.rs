//! Immediate delivery: the rules that let a request try the upstream itself
//! without ever losing the message or sending it twice.
//!
//! Owns: the request's deadline and lease ([`plan`]), and what an arriving
//! safety job does ([`check`], [`postpone`]). Must not: perform I/O or read
//! the clock; the edge passes the time in.
//!
//! The request stores the message, takes a lease on it, enqueues a *safety
//! job* and only then opens the SMTP session. Whatever happens to the request
//! afterwards (the caller hangs up, the isolate dies, the upstream is slow),
//! the safety job is already on the queue, so the message is never lost.
//!
//! Why nothing is sent twice:
//! - The request records each recipient's result exactly like the consumer
//!   does, and a recipient recorded delivered, failed or unknown is never
//!   handed to an upstream again (`recipients::still_to_deliver`).
//! - While the request holds its lease, an arriving safety job does not
//!   deliver: it postpones itself ([`SafetyCheck::Postpone`]). So the
//!   request's session and a consumer session never run for one message at
//!   the same time.
//! - The lease outlasts the longest session the request can run: every SMTP
//!   step has its own timeout (`SMTP_TIMEOUT_SECONDS`, twice that for the
//!   final dot), and the deadline counts every step one attempt can wait on
//!   ([`plan`]: connect, greeting, EHLO and the HELO fallback, STARTTLS and
//!   its handshake, AUTH LOGIN's three round trips, every MAIL, RCPT, DATA,
//!   final dot and RSET of every transaction a 452 can add, QUIT, on every
//!   upstream in turn, and the D1 calls in between, each given one step, a
//!   record write also the waits before its retries).
//!   The request stops waiting at [`ImmediatePlan::deadline_ms`], and that
//!   is at most [`MAX_ATTEMPT_MS`]: a request is not a place for a session
//!   of many recipients through many slow upstreams, and the longest
//!   request bounds how long a dead request's `Idempotency-Key` stays in
//!   use. An attempt cut off there is dropped where it is: a transaction
//!   whose final dot was handed out has its recipients recorded `sending`
//!   (the in-flight marker, written before the dot) and they end `unknown`,
//!   never sent twice; one cut off before its dot never sent it, and the
//!   safety job delivers it once the lease runs out. The record of the outcome and the lease's release
//!   must be done by [`ImmediatePlan::record_by_ms`] (two more steps), and
//!   the lease lasts [`CLOCK_MARGIN_MS`] beyond that, for the clocks of the
//!   isolates that compare it.
//! - The attempt runs under the platform's `waitUntil`, so a caller that
//!   hangs up does not cut it short: the session and its record finish.
//! - A lease is released only once the outcome is recorded. When the record
//!   cannot be written, the lease is kept: the safety job waits for it to
//!   run out, then settles from the recipients recorded as each transaction
//!   completed (and delivers only to those not recorded).
//! - The request never enqueues a retry of its own. When its attempt leaves
//!   recipients deferred, it records `next_attempt_at`, and the safety job (the
//!   one queue message this message ever has at a time) waits until then and
//!   carries on with the normal retry policy.
//! - A safety job for a message that is already final (delivered, failed,
//!   partially delivered, unknown) does nothing but note that it checked.
//!
//! What remains is the window every delivery has: the upstream's 250 arrives
//! and the isolate dies before the D1 write (see `edge::lifecycle`).

use crate::queue::{DeliveryJob, MessageStatus, QUEUE_MAX_DELAY_SECONDS, QueueBody};

use super::outage::RECORD_RETRY_DELAYS_MS;
use super::settings::DeliverySettings;
use super::settle::{FollowUp, Settlement};

/// Steps one session can wait on whatever it carries: connect, greeting,
/// EHLO, HELO (when EHLO is refused), STARTTLS, the TLS handshake, EHLO
/// again, AUTH (three round trips for LOGIN), QUIT; and the D1 write of the
/// upstream's health after it.
const SESSION_STEPS: u64 = 12;

/// Steps of one transaction: MAIL, DATA, the final dot (two timeouts:
/// servers check content before answering), RSET after a refusal; and the
/// D1 write of its recipients' results. A 452 adds a transaction, and each
/// one delivers to somebody or ends the envelope, so there are at most as
/// many as recipients.
const TRANSACTION_STEPS: u64 = 6;

/// D1 calls before the sessions: the upstreams' health.
const STEPS_BEFORE: u64 = 1;

/// D1 calls after the sessions: the outcome's record, the lease's release.
const STEPS_AFTER: u64 = 2;

/// The longest an immediate attempt may take (10 minutes): longer plans are
/// cut off there, and the safety job carries on.
pub const MAX_ATTEMPT_MS: u64 = 10 * 60 * 1000;

/// How far the clocks of two isolates comparing a lease may disagree.
pub const CLOCK_MARGIN_MS: u64 = 5_000;

/// RCPT commands one envelope can send. In lock-step a 452 leaves the
/// recipients after it unsent, so each transaction sends at most one RCPT
/// that is refused; pipelined, every remaining RCPT goes in each transaction.
fn rcpt_steps(recipients: u64, pipelined: bool) -> u64 {
    if pipelined {
        recipients.saturating_mul(recipients.saturating_add(1)) / 2
    } else {
        recipients.saturating_mul(2).saturating_sub(1)
    }
}

/// Timing of one immediate delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImmediatePlan {
    /// How long the request waits for its SMTP session(s), from the start.
    pub deadline_ms: u64,
    /// By when, from the start, the outcome is recorded and the lease
    /// released; a request that cannot keeps its lease.
    pub record_by_ms: u64,
    /// How long the request's lease lasts, from the start.
    pub lease_ms: u64,
    /// The safety job's delay: the earliest a first retry can be due (the
    /// base delay less the policy's 20 % jitter), so it never holds a
    /// deferred recipient back; it waits longer by itself when it must.
    pub safety_delay_seconds: u32,
}

/// The plan for a message with `recipients` recipients under `settings`.
pub fn plan(settings: &DeliverySettings, recipients: usize) -> ImmediatePlan {
    let step_ms = u64::from(settings.smtp_timeout_seconds) * 1000;
    let upstreams = settings.upstreams.len().max(1) as u64;
    let r = (recipients as u64).max(1);
    let per_upstream = SESSION_STEPS
        .saturating_add(r.saturating_mul(TRANSACTION_STEPS))
        .saturating_add(rcpt_steps(r, settings.smtp_pipelining));
    let steps = STEPS_BEFORE.saturating_add(per_upstream.saturating_mul(upstreams));
    // A record write D1 refuses is tried again after these waits (the
    // transactions' results, then the outcome's record).
    let record_retries: u64 = RECORD_RETRY_DELAYS_MS.iter().sum();
    let deadline_ms = step_ms
        .saturating_mul(steps)
        .saturating_add(record_retries.saturating_mul(r).saturating_mul(upstreams))
        .min(MAX_ATTEMPT_MS);
    let record_by_ms = deadline_ms
        .saturating_add(step_ms.saturating_mul(STEPS_AFTER))
        .saturating_add(record_retries);
    let earliest_retry = u64::from(settings.retry.base_delay_seconds) * 4 / 5;
    ImmediatePlan {
        deadline_ms,
        record_by_ms,
        lease_ms: record_by_ms.saturating_add(CLOCK_MARGIN_MS),
        safety_delay_seconds: earliest_retry.clamp(1, u64::from(QUEUE_MAX_DELAY_SECONDS)) as u32,
    }
}

/// What the store says about the message a safety job belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyRecord {
    pub status: String,
    /// Attempts made so far (the request's own counts as one).
    pub attempts: u32,
    /// Unix seconds.
    pub next_attempt_at: Option<u64>,
    /// The request's lease, Unix milliseconds, while it is held.
    pub lease_until: Option<u64>,
}

/// What to do with an arriving safety job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafetyCheck {
    /// Deliver like any job, continuing from this attempt count.
    Deliver { attempt: u32 },
    /// Not yet: enqueue again after this many seconds.
    Postpone { delay_seconds: u32 },
    /// Nothing to do: acknowledge, noting why on the message's record.
    Done(String),
    /// The message does not exist (the request removed it when its enqueue
    /// seemed to fail): it was never accepted, so it must not go out, and
    /// there is no record to note anything on. Acknowledge.
    Gone,
}

/// Decides for a safety job. `recheck_seconds` caps a postponement while a
/// lease is held, so the job looks again soon after the request lets go.
pub fn check(record: Option<&SafetyRecord>, now_ms: u64, recheck_seconds: u32) -> SafetyCheck {
    let Some(record) = record else {
        return SafetyCheck::Gone;
    };
    if MessageStatus::parse(&record.status).is_some_and(MessageStatus::is_final) {
        return SafetyCheck::Done(format!(
            "nothing left to deliver: the immediate delivery settled it as {}",
            record.status
        ));
    }
    if let Some(until) = record.lease_until.filter(|&u| u > now_ms) {
        let left = (until - now_ms).div_ceil(1000);
        let delay = left.min(u64::from(recheck_seconds)).max(1);
        return SafetyCheck::Postpone {
            delay_seconds: delay as u32,
        };
    }
    let now_s = now_ms / 1000;
    if let Some(due) = record.next_attempt_at.filter(|&d| d > now_s) {
        return SafetyCheck::Postpone {
            delay_seconds: (due - now_s).min(u64::from(QUEUE_MAX_DELAY_SECONDS)) as u32,
        };
    }
    SafetyCheck::Deliver {
        attempt: record.attempts,
    }
}

/// A safety job that is not due yet ([`SafetyCheck::Postpone`]) as a
/// settlement: the same job again after `delay_seconds`, nothing recorded.
pub fn postpone(job: &DeliveryJob, delay_seconds: u32) -> Settlement {
    Settlement {
        message_id: job.id.clone(),
        record: None,
        follow_up: FollowUp::Requeue {
            body: QueueBody::deliver(job.for_queue()),
            delay_seconds,
        },
        release_body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(timeout: &str, upstreams: &str, base: &str) -> DeliverySettings {
        settings_with(timeout, upstreams, base, "on")
    }

    fn settings_with(
        timeout: &str,
        upstreams: &str,
        base: &str,
        pipelining: &str,
    ) -> DeliverySettings {
        let vars = [
            ("SMTP_UPSTREAMS", upstreams),
            ("SMTP_TIMEOUT_SECONDS", timeout),
            ("RETRY_BASE_DELAY_SECONDS", base),
            ("SMTP_PIPELINING", pipelining),
        ];
        DeliverySettings::from_source(&|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    }

    #[test]
    fn the_lease_outlasts_every_step_of_every_upstream() {
        let one = "smtp://u:p@a.example.net:587";
        let two = "smtp://u:p@a.example.net:587,smtps://u:p@b.example.net:465";
        // (timeout s, upstreams, pipelining, base delay s, recipients)
        //   -> (steps to the deadline, safety delay s)
        // Steps: 1 health read, then per upstream 12 session steps, 6 per
        // transaction (one per recipient at most) and the RCPTs: 2r - 1 in
        // lock-step, r(r + 1) / 2 pipelined.
        let table = [
            ("30", one, "on", "60", 1, 1 + (12 + 6 + 1), 48),
            ("30", two, "on", "60", 1, 1 + 2 * (12 + 6 + 1), 48),
            ("5", one, "on", "1", 3, 1 + (12 + 18 + 6), 1),
            ("5", one, "off", "1", 3, 1 + (12 + 18 + 5), 1),
            ("10", one, "off", "600", 50, 1 + (12 + 300 + 99), 480),
            ("10", one, "on", "600", 50, 1 + (12 + 300 + 1275), 480),
            // Capped: at most ten minutes, whatever the settings.
            ("600", two, "on", "60", 2, 1 + 2 * (12 + 12 + 3), 48),
        ];
        for (timeout, upstreams, pipelining, base, rcpts, steps, delay) in table {
            let s = settings_with(timeout, upstreams, base, pipelining);
            let p = plan(&s, rcpts);
            let step_ms = u64::from(s.smtp_timeout_seconds) * 1000;
            let row = format!("{timeout} {upstreams} {pipelining} {rcpts}");
            // Each transaction's record write may wait 3.5 s for D1 to answer.
            let n = if upstreams == two { 2 } else { 1 };
            let retries = 3_500 * rcpts as u64 * n;
            let full = steps * step_ms + retries;
            assert_eq!(p.deadline_ms, full.min(MAX_ATTEMPT_MS), "{row}");
            // The record and the lease's release get a step each, and the
            // record its retries.
            assert_eq!(p.record_by_ms, p.deadline_ms + 2 * step_ms + 3_500, "{row}");
            assert_eq!(p.lease_ms, p.record_by_ms + CLOCK_MARGIN_MS, "{row}");
            assert_eq!(p.safety_delay_seconds, delay, "{base}");
        }
    }

    /// The worst session an attempt can run, step by step, fits the deadline:
    /// every upstream refuses EHLO (HELO follows), uses STARTTLS and AUTH
    /// LOGIN, and answers each recipient's RCPT with 452 until the last
    /// transaction, whose final dot it answers with 4xx (RSET follows).
    #[test]
    fn the_worst_session_fits_the_deadline() {
        for pipelining in ["on", "off"] {
            for rcpts in 1..=20u64 {
                let s = settings_with(
                    "7",
                    "smtp://u:p@a.example.net:587,smtp://u:p@b.example.net:587",
                    "60",
                    pipelining,
                );
                let step = u64::from(s.smtp_timeout_seconds) * 1000;
                let mut waited = step; // the health read
                for _ in &s.upstreams {
                    // connect, greeting, EHLO, HELO, STARTTLS, handshake,
                    // EHLO, AUTH LOGIN x3
                    waited += 10 * step;
                    // One recipient delivered per transaction, the others 452.
                    for part in 0..rcpts {
                        let sent = if s.smtp_pipelining {
                            rcpts - part
                        } else {
                            2.min(rcpts - part)
                        };
                        // MAIL, RCPTs, DATA, final dot (2), RSET, D1 write
                        // and its retries
                        waited += step + sent * step + step + 2 * step + step + step + 3_500;
                    }
                    waited += step + step; // QUIT, health write
                }
                let p = plan(&s, rcpts as usize);
                // Or cut off at the cap, which the safety job finishes.
                assert!(
                    waited <= p.deadline_ms || p.deadline_ms == MAX_ATTEMPT_MS,
                    "{pipelining} {rcpts}: {waited} > {}",
                    p.deadline_ms
                );
            }
        }
    }

    #[test]
    fn the_safety_job_never_beats_the_first_retry() {
        use crate::delivery::RetryPolicy;
        use crate::delivery::RetrySettings;
        for base in [1u32, 2, 7, 60, 600] {
            let s = settings("30", "smtp://u:p@a.example.net:587", &base.to_string());
            let earliest = RetryPolicy::new(RetrySettings {
                base_delay_seconds: base,
                max_delay_seconds: 43_200,
                lifetime_seconds: 432_000,
            })
            .backoff_seconds(1, 0.0);
            assert!(
                plan(&s, 1).safety_delay_seconds <= earliest.max(1),
                "{base}"
            );
        }
    }

    #[test]
    fn a_postponed_safety_job_goes_back_whole() {
        let job = DeliveryJob {
            rcpt_to: vec!["b@x.net".into()],
            body_ref: Some("bodies/m1.eml".into()),
            safety_net: true,
            ..DeliveryJob::sample("m1", "")
        };
        let s = postpone(&job, 40);
        assert_eq!(s.record, None);
        assert_eq!(s.release_body, None);
        assert_eq!(
            s.follow_up,
            FollowUp::Requeue {
                body: QueueBody::deliver(job.clone()),
                delay_seconds: 40
            }
        );
        // A body put back for delivery does not travel again.
        let s = postpone(&job.with_body("Subject: x\r\n\r\nx".into()), 40);
        assert_eq!(
            s.follow_up,
            FollowUp::Requeue {
                body: QueueBody::deliver(job),
                delay_seconds: 40
            }
        );
    }

    fn record(status: &str, next: Option<u64>, lease: Option<u64>) -> SafetyRecord {
        SafetyRecord {
            status: status.into(),
            attempts: 1,
            next_attempt_at: next,
            lease_until: lease,
        }
    }

    #[test]
    fn safety_check_table() {
        let now = 1_000_000_000; // ms
        let now_s = now / 1000;
        let postpone = |s| SafetyCheck::Postpone { delay_seconds: s };
        let cases: Vec<(Option<SafetyRecord>, SafetyCheck)> = vec![
            // Settled by the request: whatever the lease says, nothing to do.
            (
                Some(record("delivered", None, None)),
                SafetyCheck::Done(String::new()),
            ),
            (
                Some(record("failed", None, Some(now + 5_000))),
                SafetyCheck::Done(String::new()),
            ),
            (
                Some(record("partially_delivered", None, None)),
                SafetyCheck::Done(String::new()),
            ),
            (
                Some(record("unknown", None, None)),
                SafetyCheck::Done(String::new()),
            ),
            (None, SafetyCheck::Gone),
            // The request is still delivering: wait, rechecking at most every 5 s.
            (Some(record("queued", None, Some(now + 2_500))), postpone(3)),
            (
                Some(record("queued", None, Some(now + 60_000))),
                postpone(5),
            ),
            (Some(record("queued", None, Some(now + 1))), postpone(1)),
            // Deferred by the request: wait for the retry it scheduled.
            (
                Some(record("deferred", Some(now_s + 40), None)),
                postpone(40),
            ),
            (
                Some(record("deferred", Some(now_s), None)),
                SafetyCheck::Deliver { attempt: 1 },
            ),
            // The request died (lease over, nothing recorded): take over.
            (
                Some(record("queued", None, Some(now))),
                SafetyCheck::Deliver { attempt: 1 },
            ),
            (
                Some(record("queued", None, None)),
                SafetyCheck::Deliver { attempt: 1 },
            ),
        ];
        for (rec, expected) in cases {
            let got = check(rec.as_ref(), now, 5);
            match (&got, &expected) {
                (SafetyCheck::Done(reason), SafetyCheck::Done(_)) => {
                    if let Some(r) = &rec {
                        assert!(reason.contains(&r.status), "{reason}");
                    }
                }
                _ => assert_eq!(got, expected, "{rec:?}"),
            }
        }
    }
}
