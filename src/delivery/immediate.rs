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
//!   step has its own timeout, and the request stops waiting at
//!   [`ImmediatePlan::deadline_ms`], before the lease ends. Steps with
//!   timeouts cannot exceed the deadline, so one that does is a write the
//!   upstream stopped reading: the final dot was not sent and the upstream
//!   cannot have the message. The lease adds [`LEASE_MARGIN_MS`] on top for
//!   the request's own D1 writes.
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

use super::settings::DeliverySettings;
use super::settle::{FollowUp, Settlement};

/// SMTP steps a session can wait on besides one RCPT per recipient: connect,
/// greeting, EHLO, STARTTLS, TLS handshake, EHLO again, AUTH (two round trips
/// for LOGIN), MAIL, DATA, the final dot (two timeouts: servers check content
/// before answering) and QUIT.
const SESSION_STEPS: u64 = 13;

/// Time the lease adds after the deadline, for the request's D1 writes.
pub const LEASE_MARGIN_MS: u64 = 30_000;

/// Timing of one immediate delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImmediatePlan {
    /// How long the request waits for its SMTP session(s), from the start.
    pub deadline_ms: u64,
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
    let steps = SESSION_STEPS.saturating_add(recipients as u64);
    let deadline_ms = step_ms.saturating_mul(steps).saturating_mul(upstreams);
    let earliest_retry = u64::from(settings.retry.base_delay_seconds) * 4 / 5;
    ImmediatePlan {
        deadline_ms,
        lease_ms: deadline_ms.saturating_add(LEASE_MARGIN_MS),
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
        let vars = [
            ("SMTP_UPSTREAMS", upstreams),
            ("SMTP_TIMEOUT_SECONDS", timeout),
            ("RETRY_BASE_DELAY_SECONDS", base),
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
        // (timeout s, upstreams, base delay s, recipients) -> (deadline s, safety delay s)
        let table = [
            ("30", one, "60", 1, 14 * 30, 48),
            ("30", two, "60", 1, 2 * 14 * 30, 48),
            ("5", one, "1", 3, 16 * 5, 1),
            ("10", one, "600", 50, 63 * 10, 480),
        ];
        for (timeout, upstreams, base, rcpts, deadline_s, delay) in table {
            let p = plan(&settings(timeout, upstreams, base), rcpts);
            assert_eq!(
                p.deadline_ms,
                deadline_s * 1000,
                "{timeout} {upstreams} {rcpts}"
            );
            assert_eq!(p.lease_ms, p.deadline_ms + LEASE_MARGIN_MS);
            assert_eq!(p.safety_delay_seconds, delay, "{base}");
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
            id: "m1".into(),
            key_id: "backend".into(),
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["b@x.net".into()],
            mime: String::new(),
            smtputf8: false,
            accepted_at: 1_700_000_000,
            attempt: 0,
            body_ref: Some("bodies/m1.eml".into()),
            tags: Vec::new(),
            metadata: None,
            safety_net: true,
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
