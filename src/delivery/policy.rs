//! The retry policy: one classified attempt result in, one decision out.
//!
//! Backoff doubles from the base delay, carries ±20 % jitter so retries of a
//! failed batch spread out, and is clamped to `RETRY_MAX_DELAY_SECONDS` (at most
//! the queue's longest delay). A message is given up once the next attempt would
//! fall past its lifetime. When the upstream is misconfigured, the message is
//! retried without counting an attempt.
//! Must not: retry an `Unknown` result (the upstream may have the message, and a
//! retry could send it twice), or draw its own jitter: it is passed in.

/// Retry timing, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    pub base_delay_seconds: u32,
    pub max_delay_seconds: u32,
    pub lifetime_seconds: u64,
}

/// What one delivery attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// Every remaining recipient accepted the message.
    Delivered,
    /// Try again later (4xx, connection failure, timeout before the final dot).
    Transient(String),
    /// Never try again (5xx).
    Permanent(String),
    /// The upstream rejected our own credentials or TLS set-up. The message is
    /// fine; the configuration is not. Retried without counting an attempt.
    UpstreamMisconfigured(String),
    /// The connection died after the final dot: the upstream may have the
    /// message. Retrying could send it twice, so it is recorded, not retried.
    Unknown(String),
    /// Not sent now by the upstream's shaping: it throttled (421, 454, 4.7.x
    /// "slow down"), or its rate, sessions or daily limit left no room.
    /// Backpressure, not a failure: tried again after `delay_seconds`
    /// without counting an attempt, while the lifetime lasts.
    Waiting { reason: String, delay_seconds: u32 },
}

/// What to do with the message now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Done: acknowledge.
    Delivered,
    /// Enqueue again after this many seconds. `counts` says whether this
    /// counted as one of the message's attempts.
    Retry { delay_seconds: u32, counts: bool },
    /// Give up and dead-letter with this reason.
    Fail(String),
    /// Outcome unknown; record and stop.
    Unknown(String),
}

/// Backoff and lifetime, from settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    settings: RetrySettings,
}

impl RetryPolicy {
    pub fn new(settings: RetrySettings) -> Self {
        RetryPolicy { settings }
    }

    /// The delay before attempt `attempt + 1`, given `attempt` made so far (>= 1).
    /// `jitter` is a number in [0, 1).
    pub fn backoff_seconds(&self, attempt: u32, jitter: f64) -> u32 {
        let base = u64::from(self.settings.base_delay_seconds);
        let max = u64::from(self.settings.max_delay_seconds);
        let exp = attempt.saturating_sub(1).min(32);
        let raw = base.saturating_mul(1u64 << exp).min(max);
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        let jittered = (raw as f64 * factor).round() as u64;
        jittered.clamp(1, max) as u32
    }

    /// Decides after an attempt. `attempt` counts the attempt just made (>= 1);
    /// `age_seconds` is the time since acceptance.
    pub fn decide(
        &self,
        result: &AttemptResult,
        attempt: u32,
        age_seconds: u64,
        jitter: f64,
    ) -> Decision {
        match result {
            AttemptResult::Delivered => Decision::Delivered,
            AttemptResult::Permanent(reason) => Decision::Fail(reason.clone()),
            AttemptResult::Unknown(reason) => Decision::Unknown(reason.clone()),
            AttemptResult::Transient(reason) => {
                let delay = self.backoff_seconds(attempt, jitter);
                if age_seconds.saturating_add(u64::from(delay)) > self.settings.lifetime_seconds {
                    Decision::Fail(format!(
                        "gave up after {attempt} attempts over {age_seconds} s; last error: {reason}"
                    ))
                } else {
                    Decision::Retry {
                        delay_seconds: delay,
                        counts: true,
                    }
                }
            }
            AttemptResult::Waiting {
                reason,
                delay_seconds,
            } => {
                let delay = (*delay_seconds).clamp(1, self.settings.max_delay_seconds.max(1));
                if age_seconds.saturating_add(u64::from(delay)) > self.settings.lifetime_seconds {
                    Decision::Fail(format!(
                        "gave up waiting for the upstream's limits over {age_seconds} s: {reason}"
                    ))
                } else {
                    Decision::Retry {
                        delay_seconds: delay,
                        counts: false,
                    }
                }
            }
            AttemptResult::UpstreamMisconfigured(reason) => {
                let delay = self
                    .settings
                    .max_delay_seconds
                    .min(self.settings.base_delay_seconds.saturating_mul(5));
                if age_seconds.saturating_add(u64::from(delay)) > self.settings.lifetime_seconds {
                    Decision::Fail(format!(
                        "upstream misconfigured for the whole lifetime: {reason}"
                    ))
                } else {
                    Decision::Retry {
                        delay_seconds: delay,
                        counts: false,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(RetrySettings {
            base_delay_seconds: 60,
            max_delay_seconds: 43_200,
            lifetime_seconds: 432_000,
        })
    }

    #[test]
    fn decision_table() {
        let p = policy();
        let t = |s: &str| AttemptResult::Transient(s.into());
        let table: Vec<(AttemptResult, u32, u64, Decision)> = vec![
            (AttemptResult::Delivered, 1, 0, Decision::Delivered),
            (
                AttemptResult::Permanent("550 5.1.1".into()),
                1,
                0,
                Decision::Fail("550 5.1.1".into()),
            ),
            (
                AttemptResult::Unknown("timeout after dot".into()),
                1,
                0,
                Decision::Unknown("timeout after dot".into()),
            ),
            (
                t("451"),
                1,
                0,
                Decision::Retry {
                    delay_seconds: 60,
                    counts: true,
                },
            ),
            (
                t("451"),
                2,
                60,
                Decision::Retry {
                    delay_seconds: 120,
                    counts: true,
                },
            ),
            (
                t("451"),
                5,
                1_000,
                Decision::Retry {
                    delay_seconds: 960,
                    counts: true,
                },
            ),
            (
                t("451"),
                10,
                50_000,
                Decision::Retry {
                    delay_seconds: 30_720,
                    counts: true,
                },
            ),
            (
                t("451"),
                11,
                80_000,
                Decision::Retry {
                    delay_seconds: 43_200,
                    counts: true,
                },
            ),
            (
                t("451"),
                40,
                100_000,
                Decision::Retry {
                    delay_seconds: 43_200,
                    counts: true,
                },
            ),
            (
                AttemptResult::UpstreamMisconfigured("535".into()),
                3,
                0,
                Decision::Retry {
                    delay_seconds: 300,
                    counts: false,
                },
            ),
        ];
        for (result, attempt, age, expected) in table {
            assert_eq!(
                p.decide(&result, attempt, age, 0.5),
                expected,
                "{result:?} attempt {attempt}"
            );
        }
    }

    /// Reply classes per recipient × attempt number → the decision, its
    /// delay, and which recipients travel on to the next attempt.
    #[test]
    fn reply_class_by_attempt_table() {
        use crate::delivery::attempt::report;
        use crate::smtp::{
            Cause, Outcome, OutcomeKind, RecipientOutcome, ReplyParser, TransactionOutcome,
        };

        fn outcome(replies: &[(&str, &str)]) -> TransactionOutcome {
            let recipients: Vec<RecipientOutcome> = replies
                .iter()
                .map(|(address, line)| {
                    let text = format!("{line}\r\n");
                    let mut input = text.as_bytes();
                    let reply = ReplyParser::new().parse(&mut input).unwrap().unwrap();
                    let kind = match reply.code / 100 {
                        2 => OutcomeKind::Delivered,
                        4 => OutcomeKind::Transient,
                        _ => OutcomeKind::Permanent,
                    };
                    RecipientOutcome {
                        address: address.to_string(),
                        outcome: Outcome {
                            kind,
                            cause: Cause::Reply,
                            reply: Some(reply),
                        },
                    }
                })
                .collect();
            let summary = Outcome {
                kind: OutcomeKind::Delivered,
                cause: Cause::Reply,
                reply: None,
            };
            TransactionOutcome::summarise(0, recipients, summary)
        }
        let ok = ("ok@x.net", "250 2.1.5 OK");
        let busy = ("busy@x.net", "450 4.2.1 Mailbox busy");
        let gone = ("gone@x.net", "550 5.1.1 No such user");
        let full = ("full@x.net", "452 4.2.2 Mailbox full");
        let retry = |delay_seconds| Decision::Retry {
            delay_seconds,
            counts: true,
        };
        // (recipient replies, attempt just made, age in s, decision, remaining)
        type Row<'a> = (Vec<(&'a str, &'a str)>, u32, u64, Decision, Vec<&'a str>);
        let table: Vec<Row> = vec![
            (vec![ok], 1, 0, Decision::Delivered, vec![]),
            (vec![busy], 1, 0, retry(60), vec!["busy@x.net"]),
            (vec![busy], 2, 60, retry(120), vec!["busy@x.net"]),
            (vec![busy], 3, 180, retry(240), vec!["busy@x.net"]),
            (vec![busy], 8, 8_000, retry(7_680), vec!["busy@x.net"]),
            (vec![busy], 12, 200_000, retry(43_200), vec!["busy@x.net"]),
            (vec![ok, busy, gone], 1, 0, retry(60), vec!["busy@x.net"]),
            (
                vec![ok, busy, full],
                2,
                60,
                retry(120),
                vec!["busy@x.net", "full@x.net"],
            ),
            (vec![ok, gone], 1, 0, Decision::Fail(String::new()), vec![]),
            (vec![gone], 4, 500, Decision::Fail(String::new()), vec![]),
            // Out of lifetime: the deferred recipient is given up.
            (
                vec![ok, busy],
                20,
                431_000,
                Decision::Fail(String::new()),
                vec!["busy@x.net"],
            ),
        ];
        let p = policy();
        for (replies, attempt, age, expected, remaining) in table {
            let r = report(&outcome(&replies));
            assert_eq!(r.remaining, remaining, "{replies:?} attempt {attempt}");
            let got = p.decide(&r.result, attempt, age, 0.5);
            match (&got, &expected) {
                (Decision::Fail(reason), Decision::Fail(_)) => {
                    // The reason names the reply that decided it.
                    let code = replies.iter().find(|(_, l)| !l.starts_with('2')).unwrap().1;
                    assert!(reason.contains(&code[..3]), "{reason}");
                }
                _ => assert_eq!(got, expected, "{replies:?} attempt {attempt}"),
            }
        }
    }

    #[test]
    fn gives_up_past_the_lifetime() {
        let p = policy();
        match p.decide(&AttemptResult::Transient("421".into()), 20, 431_000, 0.5) {
            Decision::Fail(reason) => {
                assert!(reason.contains("gave up after 20 attempts"), "{reason}");
                assert!(reason.contains("421"), "{reason}");
            }
            other => panic!("expected Fail, got {other:?}"),
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_the_cap() {
        let p = policy();
        for attempt in 1..30 {
            let low = p.backoff_seconds(attempt, 0.0);
            let high = p.backoff_seconds(attempt, 0.999);
            let mid = p.backoff_seconds(attempt, 0.5);
            assert!(low <= mid && mid <= high);
            assert!(high <= 43_200);
            assert!(f64::from(low) >= f64::from(mid) * 0.79, "attempt {attempt}");
        }
    }
}
