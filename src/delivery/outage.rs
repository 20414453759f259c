//! Storage trouble in the queue consumer: what becomes of a queue message
//! that could not be handled because the settings, the records (D1) or the
//! bodies bucket (R2) could not be read or written just now.
//!
//! Why not the platform's retry: `retry()` spends the queue's `max_retries`
//! (three) in seconds, and then the platform dead-letters the message. A short
//! outage would turn every message in flight into a failure. Instead the edge
//! sends the message's original body text, unchanged, to the same queue again
//! with a delay ([`OutageStep::Requeue`]) and acknowledges the old one; only
//! when that send fails does it fall back to `retry` with the same delay. The
//! body is sent as it came, so no setting (nor any secret) is needed to do it.
//!
//! The delay starts short (storage outages are mostly brief) and grows with
//! the message's age, so a long outage costs few queue operations; jitter
//! spreads the messages of one batch. A job is given up
//! ([`OutageStep::GiveUp`]: dead-lettered with the reason) only once the
//! next try would fall past its lifetime (`MESSAGE_LIFETIME_SECONDS`). A dead
//! letter waiting to be recorded is never given up: that would lose the
//! record of how its message ended.
//!
//! Owns these rules. Must not: perform I/O or read the clock; the edge passes
//! the time and the jitter in.

use crate::queue::job::without_token;
use crate::queue::{DeadLetter, QUEUE_MAX_DELAY_SECONDS, QueueBody, QueueSecrets};

/// What could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// The settings could not be parsed: an operator must fix them.
    Settings,
    /// The records (D1) could not be read or written.
    Records,
    /// A stored body (R2) could not be read.
    Bodies,
}

impl Trouble {
    /// The first delay: an operator needs minutes, a storage hiccup seconds.
    fn first_delay_seconds(self) -> u32 {
        match self {
            Trouble::Settings => 60,
            Trouble::Records | Trouble::Bodies => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trouble::Settings => "the settings are unreadable",
            Trouble::Records => "the records are unavailable",
            Trouble::Bodies => "the stored body is unavailable",
        }
    }
}

/// Waits before each new try of a record write that D1 refused, once the
/// upstream has answered: a record lost there is the one window in which a
/// redelivery sends a message again, so a brief D1 blip is waited out
/// (3.5 s in all) before the write is given up as storage trouble.
pub const RECORD_RETRY_DELAYS_MS: [u64; 3] = [500, 1_000, 2_000];

/// Which queue the message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromQueue {
    Jobs,
    DeadLetters,
}

/// The longest delay between two tries during an outage.
pub const MAX_OUTAGE_DELAY_SECONDS: u32 = 600;

/// What to do with a message the consumer could not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutageStep {
    /// Send the body text, unchanged, to the same queue after this many
    /// seconds, then acknowledge. If that send fails, `retry` the message
    /// with the same delay instead.
    Requeue { delay_seconds: u32 },
    /// The message's lifetime is over: dead-letter it with this reason
    /// (its recorded recipients decide its status, see `settle::given_up`).
    GiveUp(String),
}

/// Decides for one message. `age_seconds` is the time since the message was
/// accepted, when its body says ([`age_seconds`]); `jitter` is in [0, 1).
pub fn after_trouble(
    trouble: Trouble,
    queue: FromQueue,
    age_seconds: Option<u64>,
    lifetime_seconds: u64,
    jitter: f64,
) -> OutageStep {
    let first = u64::from(trouble.first_delay_seconds());
    let age = age_seconds.unwrap_or(0);
    // A tenth of the age: a message an hour old waits six minutes more.
    let raw = (age / 10).max(first);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    let max = u64::from(MAX_OUTAGE_DELAY_SECONDS.min(QUEUE_MAX_DELAY_SECONDS));
    let delay = ((raw as f64 * factor).round() as u64).clamp(1, max);
    if queue == FromQueue::Jobs
        && let Some(age) = age_seconds
        && age.saturating_add(delay) > lifetime_seconds
    {
        return OutageStep::GiveUp(format!(
            "gave up after {age} s: {} past the message lifetime",
            trouble.as_str()
        ));
    }
    OutageStep::Requeue {
        delay_seconds: delay as u32,
    }
}

/// How long ago the message a queue body carries was accepted, when the body
/// says (a delivery job, or a dead letter with its job) and is sealed under
/// `secrets` (without them, or unsealed, the age is unknown: a forged body
/// cannot hurry its own giving up); `now_s` is Unix seconds.
pub fn age_seconds(body_text: &str, secrets: Option<&QueueSecrets>, now_s: u64) -> Option<u64> {
    let accepted_at = match QueueBody::from_wire(body_text, secrets?).ok()? {
        QueueBody::Deliver { job, .. } => job.accepted_at,
        QueueBody::DeadLetter { letter, .. } => letter.job?.accepted_at,
        QueueBody::Send { .. } => return None,
    };
    Some(now_s.saturating_sub(accepted_at))
}

/// The queue a body came from, by its type, for when the settings (and so
/// the dead-letter queue's name) cannot be read: dead letters go back to the
/// dead-letter queue, everything else to the jobs queue.
/// Read without the secrets (which need the settings): it only routes the
/// unchanged text back, which the consumer checks when it arrives.
pub fn queue_of(body_text: &str) -> FromQueue {
    let body: Option<serde_json::Value> = serde_json::from_str(body_text).ok();
    match body
        .as_ref()
        .and_then(|b| b.get("type"))
        .and_then(|t| t.as_str())
    {
        Some("dead_letter") => FromQueue::DeadLetters,
        _ => FromQueue::Jobs,
    }
}

/// The dead letter of a message given up ([`OutageStep::GiveUp`]): its job
/// when the body is one (a stored body stays in the bucket, only its
/// reference travels) when the body is sealed under `secrets`, the raw text
/// otherwise (a forged job never becomes a sealed dead letter).
pub fn give_up_letter(
    body_text: &str,
    secrets: Option<&QueueSecrets>,
    reason: String,
) -> DeadLetter {
    let body = secrets.map(|s| QueueBody::from_wire(body_text, s));
    match body {
        Some(Ok(QueueBody::Deliver { job, .. })) => DeadLetter {
            reason,
            job: Some(job.for_queue()),
            raw: None,
            message_id: None,
        },
        _ => DeadLetter {
            reason,
            job: None,
            raw: Some(without_token(body_text)),
            message_id: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::DeliveryJob;

    const DAY: u64 = 86_400;

    #[test]
    fn outage_table() {
        use FromQueue::*;
        use Trouble::*;
        let requeue = |s| OutageStep::Requeue { delay_seconds: s };
        // (trouble, queue, age, lifetime, jitter) -> step
        let table: Vec<(Trouble, FromQueue, Option<u64>, u64, f64, OutageStep)> = vec![
            // A fresh message retries storage soon, with jitter around 5 s.
            (Records, Jobs, Some(0), 5 * DAY, 0.5, requeue(5)),
            (Records, Jobs, Some(0), 5 * DAY, 0.0, requeue(4)),
            (Bodies, Jobs, Some(3), 5 * DAY, 0.99, requeue(6)),
            // Broken settings wait for an operator.
            (Settings, Jobs, Some(0), 5 * DAY, 0.5, requeue(60)),
            // Older messages wait longer, up to ten minutes.
            (Records, Jobs, Some(300), 5 * DAY, 0.5, requeue(30)),
            (Records, Jobs, Some(3600), 5 * DAY, 0.5, requeue(360)),
            (Records, Jobs, Some(DAY), 5 * DAY, 0.5, requeue(600)),
            (Records, Jobs, Some(DAY), 5 * DAY, 0.99, requeue(600)),
            // Without an age (a producer's message), retry at the first delay.
            (Records, Jobs, None, 5 * DAY, 0.5, requeue(5)),
            (Records, Jobs, None, 0, 0.5, requeue(5)),
            // Never given up before the lifetime; given up past it.
            (
                Records,
                Jobs,
                Some(5 * DAY - 600),
                5 * DAY,
                0.5,
                requeue(600),
            ),
            (
                Records,
                Jobs,
                Some(5 * DAY - 599),
                5 * DAY,
                0.5,
                OutageStep::GiveUp(String::new()),
            ),
            (
                Bodies,
                Jobs,
                Some(10),
                10,
                0.5,
                OutageStep::GiveUp(String::new()),
            ),
            // A dead letter's record is never given up.
            (
                Records,
                DeadLetters,
                Some(10 * DAY),
                5 * DAY,
                0.5,
                requeue(600),
            ),
        ];
        for (trouble, queue, age, lifetime, jitter, want) in table {
            let got = after_trouble(trouble, queue, age, lifetime, jitter);
            match (&got, &want) {
                (OutageStep::GiveUp(reason), OutageStep::GiveUp(_)) => {
                    assert!(reason.contains(trouble.as_str()), "{reason}");
                    assert!(reason.contains("lifetime"), "{reason}");
                }
                _ => assert_eq!(
                    got, want,
                    "{trouble:?} {queue:?} {age:?} {lifetime} {jitter}"
                ),
            }
        }
    }

    #[test]
    fn an_outage_never_gives_up_before_the_lifetime() {
        let lifetime = 5 * DAY;
        for age in (0..lifetime).step_by(997) {
            for jitter in [0.0, 0.5, 0.999] {
                let step = after_trouble(
                    Trouble::Records,
                    FromQueue::Jobs,
                    Some(age),
                    lifetime,
                    jitter,
                );
                match step {
                    OutageStep::Requeue { delay_seconds } => {
                        assert!((1..=MAX_OUTAGE_DELAY_SECONDS).contains(&delay_seconds));
                        assert!(age + u64::from(delay_seconds) <= lifetime);
                    }
                    OutageStep::GiveUp(_) => {
                        assert!(
                            age + u64::from(MAX_OUTAGE_DELAY_SECONDS) > lifetime,
                            "{age}"
                        )
                    }
                }
            }
        }
    }

    #[test]
    fn ages_come_from_the_body() {
        let job = DeliveryJob {
            accepted_at: 1_000,
            ..DeliveryJob::sample("m1", "")
        };
        let secrets = QueueSecrets::parse(&"s".repeat(40)).unwrap();
        let other = QueueSecrets::parse(&"o".repeat(40)).unwrap();
        let deliver = QueueBody::deliver(job.clone()).to_wire(&secrets);
        let dead = QueueBody::dead_letter("x", Some(job.clone()), None).to_wire(&secrets);
        let bare = QueueBody::dead_letter("x", None, Some("raw".into())).to_wire(&secrets);
        let forged = QueueBody::deliver(job).to_wire(&other);
        let send = r#"{"v":1,"type":"send","producer":"p","token":"t0ken","message":{}}"#;
        let table: [(&str, Option<u64>); 7] = [
            (&deliver, Some(500)),
            (&dead, Some(500)),
            (&bare, None),
            (send, None),
            ("not json", None),
            (r#"{"v":2,"type":"deliver"}"#, None),
            // Sealed by someone else: its claimed age is not believed.
            (&forged, None),
        ];
        for (text, want) in table {
            assert_eq!(age_seconds(text, Some(&secrets), 1_500), want, "{text}");
        }
        // Without the settings no age is known.
        assert_eq!(age_seconds(&deliver, None, 1_500), None);
        // A clock behind the acceptance time reads as age 0.
        assert_eq!(age_seconds(&deliver, Some(&secrets), 10), Some(0));
        // Given up, a sealed job travels as it came; anything else as raw
        // text, a producer's token removed, and a forged job never as a job.
        let letter = give_up_letter(&deliver, Some(&secrets), "late".into());
        assert_eq!(letter.job.map(|j| j.id), Some("m1".into()));
        assert_eq!(letter.reason, "late");
        let raw = give_up_letter(send, Some(&secrets), "late".into())
            .raw
            .unwrap();
        assert!(!raw.contains("t0ken"), "{raw}");
        let letter = give_up_letter(&forged, Some(&secrets), "late".into());
        assert!(letter.job.is_none() && letter.raw.as_deref() == Some(forged.as_str()));
        assert!(give_up_letter(&deliver, None, "late".into()).job.is_none());
        assert_eq!(queue_of(&dead), FromQueue::DeadLetters);
        assert_eq!(queue_of(&bare), FromQueue::DeadLetters);
        assert_eq!(queue_of(&deliver), FromQueue::Jobs);
        assert_eq!(queue_of(send), FromQueue::Jobs);
        assert_eq!(queue_of("not json"), FromQueue::Jobs);
    }
}
