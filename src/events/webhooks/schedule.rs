//! When a webhook delivery is tried again, and what an attempt's answer means.
//!
//! The schedule is the Standard Webhooks one by default: after the first
//! attempt fails, again in 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, then
//! give up (eight attempts over about 27.5 hours). `WEBHOOK_RETRY_SCHEDULE`
//! replaces the list (tests compress it to seconds). A `2xx` delivers; a `410
//! Gone` disables the endpoint (the receiver says it no longer exists); any
//! other status, a timeout or a network failure is tried again. Redirects are
//! not followed: a `3xx` is a failure like any other. A URL the policy
//! refuses at delivery time is given up at once. A delivery whose queue
//! message never went out, or is long overdue, is sent again by the sweep.
//! Must not: perform I/O or read the clock; the attempt's result is an input.

use crate::config::{ConfigError, err, split_list};

/// The spec's delays, in seconds, after each failed attempt.
pub const DEFAULT_DELAYS_SECONDS: [u32; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// How old a delivery never sent to the queue must be before the sweep sends
/// it: younger ones may be on their way from the code that stored them.
pub const PENDING_GRACE_MS: u64 = 60 * 1000;

/// How late a queued delivery must be before the sweep takes its queue
/// message for lost and sends it again.
pub const REDISPATCH_GRACE_MS: u64 = 10 * 60 * 1000;

/// The most deliveries one sweep run sends.
pub const DISPATCH_LIMIT: u32 = 200;

/// The longest delay a queue message may carry (12 hours).
const MAX_DELAY_SECONDS: u32 = 43_200;

/// The most retries a schedule may list.
const MAX_RETRIES: usize = 50;

/// The delays between attempts: the n-th failure waits `delays[n-1]`; after
/// the last one the delivery is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<u32>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            delays: DEFAULT_DELAYS_SECONDS.to_vec(),
        }
    }
}

impl RetrySchedule {
    /// Reads a comma-separated list of delays in seconds, each at most 43200.
    pub fn parse(setting: &'static str, text: &str) -> Result<Self, ConfigError> {
        let mut delays = Vec::new();
        for item in split_list(text) {
            let delay: u32 = item.parse().map_err(|_| {
                err(
                    setting,
                    "lists something that is not a whole number of seconds",
                )
            })?;
            if delay > MAX_DELAY_SECONDS {
                return Err(err(setting, "lists a delay over 43200 seconds (12 hours)"));
            }
            delays.push(delay);
        }
        if delays.is_empty() {
            return Err(err(setting, "lists no delay"));
        }
        if delays.len() > MAX_RETRIES {
            return Err(err(setting, "lists more than 50 delays"));
        }
        Ok(RetrySchedule { delays })
    }

    /// The delays, in seconds.
    pub fn delays(&self) -> &[u32] {
        &self.delays
    }

    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The delay after `attempt` (1 for the first) failed; `None` once the
    /// schedule is spent.
    pub fn delay_after(&self, attempt: u32) -> Option<u32> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }
}

/// What one attempt came to, as the edge saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer within `WEBHOOK_TIMEOUT_SECONDS`.
    Timeout,
    /// The request could not be made (DNS, connection, TLS).
    Network(String),
    /// Not sent: the endpoint's URL breaks the URL policy as it stands now
    /// (`WEBHOOK_ALLOW_LOCAL_URLS` was turned off since it was created).
    Refused(String),
}

impl Answer {
    /// The receiver's status code, when it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Answer::Status(code) => Some(*code),
            _ => None,
        }
    }

    /// What went wrong, for the attempts list; `None` for a `2xx`.
    pub fn error(&self) -> Option<String> {
        match self {
            Answer::Status(code) if (200..300).contains(code) => None,
            other => Some(other.describe()),
        }
    }

    /// How the attempt is shown in the attempts list.
    pub fn describe(&self) -> String {
        match self {
            Answer::Status(code) => format!("HTTP {code}"),
            Answer::Timeout => "timed out".to_string(),
            Answer::Network(reason) => format!("request failed: {reason}"),
            Answer::Refused(reason) => format!("not sent: {reason}"),
        }
    }
}

/// Where one event's delivery to one endpoint stands (`webhook_deliveries.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Stored with its event; its queue message is not known to be sent.
    Pending,
    /// On the queue, due at its `next_attempt_at`.
    Queued,
    Delivered,
    /// The schedule is spent.
    Failed,
    /// The endpoint answered 410 Gone (to this or another delivery).
    EndpointDisabled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Queued => "queued",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::EndpointDisabled => "endpoint_disabled",
        }
    }
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The receiver took it: done.
    Delivered,
    /// `410 Gone`: the endpoint is disabled and nothing more is sent to it.
    Disable,
    /// Try again after this many seconds.
    Retry { delay_seconds: u32 },
    /// The schedule is spent: the delivery failed for good.
    GiveUp,
}

impl Verdict {
    /// The attempt's outcome as stored and listed.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Disable => "endpoint_disabled",
            Verdict::Retry { .. } => "retrying",
            Verdict::GiveUp => "failed",
        }
    }

    /// The delivery's state after the attempt: queued while a retry waits
    /// on the queue.
    pub fn delivery_state(self) -> DeliveryState {
        match self {
            Verdict::Delivered => DeliveryState::Delivered,
            Verdict::Disable => DeliveryState::EndpointDisabled,
            Verdict::Retry { .. } => DeliveryState::Queued,
            Verdict::GiveUp => DeliveryState::Failed,
        }
    }

    /// When the next attempt is due, if one follows an attempt that ended at `at_ms`.
    pub fn next_attempt_at_ms(self, at_ms: u64) -> Option<u64> {
        match self {
            Verdict::Retry { delay_seconds } => Some(at_ms + u64::from(delay_seconds) * 1000),
            _ => None,
        }
    }
}

/// The verdict on `attempt` (1 for the first) that got `answer`.
pub fn verdict(answer: &Answer, attempt: u32, schedule: &RetrySchedule) -> Verdict {
    match answer {
        Answer::Status(code) if (200..300).contains(code) => Verdict::Delivered,
        Answer::Status(410) => Verdict::Disable,
        // Trying again cannot change the policy's answer.
        Answer::Refused(_) => Verdict::GiveUp,
        _ => match schedule.delay_after(attempt) {
            Some(delay_seconds) => Verdict::Retry { delay_seconds },
            None => Verdict::GiveUp,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_specification_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        let after: Vec<Option<u32>> = (0..=9).map(|n| s.delay_after(n)).collect();
        assert_eq!(
            after,
            [
                None,
                Some(5),
                Some(300),
                Some(1800),
                Some(7200),
                Some(18000),
                Some(36000),
                Some(36000),
                None,
                None
            ]
        );
    }

    #[test]
    fn verdicts() {
        let s = RetrySchedule::parse("S", "1,2").unwrap();
        let net = Answer::Network("refused".into());
        let table: &[(Answer, u32, Verdict)] = &[
            (Answer::Status(200), 1, Verdict::Delivered),
            (Answer::Status(204), 3, Verdict::Delivered),
            (Answer::Status(299), 1, Verdict::Delivered),
            (Answer::Status(410), 1, Verdict::Disable),
            (Answer::Status(410), 3, Verdict::Disable),
            (Answer::Status(500), 1, Verdict::Retry { delay_seconds: 1 }),
            (Answer::Status(500), 2, Verdict::Retry { delay_seconds: 2 }),
            (Answer::Status(500), 3, Verdict::GiveUp),
            (Answer::Status(301), 1, Verdict::Retry { delay_seconds: 1 }),
            (Answer::Status(404), 1, Verdict::Retry { delay_seconds: 1 }),
            (Answer::Status(199), 1, Verdict::Retry { delay_seconds: 1 }),
            (Answer::Timeout, 2, Verdict::Retry { delay_seconds: 2 }),
            (net.clone(), 1, Verdict::Retry { delay_seconds: 1 }),
            (net, 3, Verdict::GiveUp),
            (Answer::Refused("private".into()), 1, Verdict::GiveUp),
        ];
        for (answer, attempt, want) in table {
            assert_eq!(
                verdict(answer, *attempt, &s),
                *want,
                "{answer:?} on attempt {attempt}"
            );
        }
    }

    #[test]
    fn what_an_attempt_records() {
        let retry = Verdict::Retry { delay_seconds: 5 };
        assert_eq!(retry.delivery_state(), DeliveryState::Queued);
        assert_eq!(retry.next_attempt_at_ms(1_000), Some(6_000));
        assert_eq!(
            Verdict::Delivered.delivery_state(),
            DeliveryState::Delivered
        );
        assert_eq!(
            Verdict::Disable.delivery_state(),
            DeliveryState::EndpointDisabled
        );
        assert_eq!(Verdict::GiveUp.delivery_state(), DeliveryState::Failed);
        assert_eq!(Verdict::GiveUp.next_attempt_at_ms(1_000), None);
        assert_eq!(Answer::Status(204).error(), None);
        assert_eq!(Answer::Status(204).status_code(), Some(204));
        assert_eq!(Answer::Status(500).error().as_deref(), Some("HTTP 500"));
        assert_eq!(Answer::Timeout.status_code(), None);
        assert_eq!(Answer::Timeout.error().as_deref(), Some("timed out"));
    }

    #[test]
    fn schedules_parse_or_name_the_setting() {
        assert_eq!(
            RetrySchedule::parse("S", " 1, 2 ,3").unwrap().delays(),
            [1, 2, 3]
        );
        assert_eq!(RetrySchedule::parse("S", "0").unwrap().delays(), [0]);
        assert_eq!(
            RetrySchedule::parse("S", "43200").unwrap().delays(),
            [43200]
        );
        let fifty = vec!["1"; 50].join(",");
        assert_eq!(RetrySchedule::parse("S", &fifty).unwrap().attempts(), 51);
        let fifty_one = vec!["1"; 51].join(",");
        for bad in ["", " , ", "5s", "-1", "43201", "1.5", fifty_one.as_str()] {
            let e = RetrySchedule::parse("S", bad).unwrap_err();
            assert_eq!(e.setting, "S", "{bad:?}");
        }
    }
}
