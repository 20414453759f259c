//! Shaping what goes to one upstream: throttling replies read as
//! backpressure, a sending rate that adapts to them, and a token bucket that
//! says how many messages may go now and when the next may.
//!
//! Real smarthosts have limits (Amazon SES answers `454 Throttling failure:
//! Maximum sending rate exceeded`, Microsoft 365 allows 30 messages a minute
//! per mailbox). A throttling reply is not a failure of the message: it
//! waits without using up an attempt or cooling the upstream down, and the
//! rate halves; each window without throttling adds back a step, up to the
//! configured limit (additive increase, multiplicative decrease).
//! Owns: those rules, on a virtual clock. Must not: read the clock, store
//! state, or decide retries of real failures (`policy` does).

/// Whether a reply says "slow down" rather than "this message failed".
///
/// `421` and `454` with a rate or load text, any `4.7.x` with one, and the
/// quota texts some providers send with a 5xx (Microsoft 365's
/// `SubmissionQuotaExceeded`) are throttling. A plain `421` closing the
/// connection is not, on its own.
pub fn is_throttling(code: u16, enhanced: Option<&str>, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let says_rate = RATE_TEXTS.iter().any(|t| text.contains(t));
    if QUOTA_TEXTS.iter().any(|t| text.contains(t)) {
        return true;
    }
    let policy_class = enhanced.is_some_and(|e| e.starts_with("4.7."));
    // "Too many recipients" (452 4.5.3) is a limit per message, handled by
    // sending the rest in another transaction, not a rate.
    if enhanced == Some("4.5.3") || text.contains("too many recipients") {
        return false;
    }
    match code {
        421 | 450 | 451 | 454 => says_rate || policy_class,
        452 => policy_class,
        _ => false,
    }
}

/// Lower case.
const RATE_TEXTS: &[&str] = &[
    "throttl",
    "rate limit",
    "rate exceeded",
    "sending rate",
    "too many",
    "slow down",
    "try again later, closing connection",
    "temporarily deferred due to",
    "exceeded the configured limit",
];

/// Lower case; throttling whatever the code says.
const QUOTA_TEXTS: &[&str] = &[
    "submissionquotaexceeded",
    "daily sending quota exceeded",
    "maximum sending rate exceeded",
];

/// The configured ceiling and the adapted rate of one upstream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveRate {
    /// The configured limit, messages per second.
    pub ceiling: f64,
    /// The rate in force now, messages per second.
    pub current: f64,
    /// Since when the upstream has been throttling (Unix ms), if it is.
    pub throttled_since_ms: Option<u64>,
    /// When the rate last changed (Unix ms).
    pub changed_at_ms: u64,
}

/// The lowest rate a throttled upstream is slowed to (one message every
/// ten seconds): it still makes progress, so the rate can recover.
pub const MIN_RATE: f64 = 0.1;

/// How long without throttling before the rate steps up again.
pub const RECOVERY_WINDOW_MS: u64 = 10_000;

impl AdaptiveRate {
    pub fn new(ceiling: f64, now_ms: u64) -> AdaptiveRate {
        let ceiling = ceiling.max(MIN_RATE);
        AdaptiveRate {
            ceiling,
            current: ceiling,
            throttled_since_ms: None,
            changed_at_ms: now_ms,
        }
    }

    /// A throttling reply: halve the rate, no lower than [`MIN_RATE`].
    /// Replies within one window count once, so a pipelined burst of 454s
    /// does not collapse the rate.
    pub fn throttled(&mut self, now_ms: u64) {
        let recently = self.throttled_since_ms.is_some()
            && now_ms.saturating_sub(self.changed_at_ms) < RECOVERY_WINDOW_MS / 10;
        if !recently {
            self.current = (self.current / 2.0).max(MIN_RATE);
            self.changed_at_ms = now_ms;
        }
        self.throttled_since_ms.get_or_insert(now_ms);
    }

    /// A message accepted: after a quiet window, add a tenth of the
    /// ceiling back, up to it.
    pub fn accepted(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.changed_at_ms) < RECOVERY_WINDOW_MS {
            return;
        }
        if self.current < self.ceiling {
            self.current = (self.current + self.ceiling / 10.0).min(self.ceiling);
            self.changed_at_ms = now_ms;
        }
        if self.current >= self.ceiling {
            self.throttled_since_ms = None;
        }
    }
}

/// A token bucket at `rate` per second holding at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    pub tokens: f64,
    pub updated_at_ms: u64,
}

/// What the bucket allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Messages that may go now.
    pub now: u32,
    /// When the next one may go (ms from now), if any are left waiting.
    pub next_in_ms: Option<u64>,
}

impl TokenBucket {
    pub fn full(burst: f64, now_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            updated_at_ms: now_ms,
        }
    }

    /// Takes up to `wanted` tokens at `rate` per second (refilled since
    /// the last call, up to `burst`).
    pub fn admit(&mut self, wanted: u32, rate: f64, burst: f64, now_ms: u64) -> Admission {
        let rate = rate.max(MIN_RATE);
        let elapsed = now_ms.saturating_sub(self.updated_at_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(burst.max(1.0));
        self.updated_at_ms = now_ms;
        let now = (self.tokens.floor() as u32).min(wanted);
        self.tokens -= f64::from(now);
        let next_in_ms = (now < wanted).then(|| {
            let missing = 1.0 - self.tokens;
            ((missing / rate) * 1000.0).ceil().max(1.0) as u64
        });
        Admission { now, next_in_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_replies_table() {
        let table: &[(u16, Option<&str>, &str, bool)] = &[
            (
                454,
                Some("4.7.0"),
                "Throttling failure: Maximum sending rate exceeded.",
                true,
            ),
            (
                554,
                Some("5.2.0"),
                "STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
                true,
            ),
            (421, Some("4.7.0"), "Too many connections, slow down", true),
            (451, Some("4.7.1"), "Please try again later", true),
            (450, None, "Rate limit exceeded for this sender", true),
            (
                452,
                Some("4.7.0"),
                "Message submission rate for this client has exceeded the configured limit",
                true,
            ),
            (
                421,
                None,
                "Service not available, closing transmission channel",
                false,
            ),
            (451, Some("4.3.0"), "Temporary local problem", false),
            (452, Some("4.5.3"), "Too many recipients", false),
            (452, None, "4.5.3 Error: too many recipients", false),
            (452, Some("4.2.2"), "Mailbox full", false),
            (550, Some("5.7.1"), "rate of spam too high", false),
            (250, None, "OK", false),
        ];
        for (code, enhanced, text, want) in table {
            assert_eq!(
                is_throttling(*code, *enhanced, text),
                *want,
                "{code} {enhanced:?} {text}"
            );
        }
    }

    #[test]
    fn the_rate_halves_on_throttling_and_recovers_in_steps() {
        let mut r = AdaptiveRate::new(20.0, 0);
        r.throttled(1_000);
        assert_eq!(r.current, 10.0);
        assert_eq!(r.throttled_since_ms, Some(1_000));
        // The rest of a pipelined burst of 454s counts once.
        r.throttled(1_100);
        assert_eq!(r.current, 10.0);
        r.throttled(3_000);
        assert_eq!(r.current, 5.0);
        // Not before a quiet window.
        r.accepted(5_000);
        assert_eq!(r.current, 5.0);
        r.accepted(13_000);
        assert_eq!(r.current, 7.0);
        let mut t = 13_000;
        while r.current < 20.0 {
            t += RECOVERY_WINDOW_MS;
            r.accepted(t);
        }
        assert_eq!(r.current, 20.0);
        assert_eq!(r.throttled_since_ms, None);
        for i in 0..100 {
            r.throttled(100_000 + i * 2_000);
        }
        assert_eq!(r.current, MIN_RATE);
    }

    #[test]
    fn the_bucket_never_lets_more_than_the_rate_through() {
        // Simulated: a sender asking for 1000 messages every 10 ms at
        // 20/s with a burst of 5 sends at most 5 + 20 * seconds.
        let mut b = TokenBucket::full(5.0, 0);
        let mut sent = 0u32;
        for step in 0..=1_000u64 {
            let now = step * 10;
            let a = b.admit(1_000, 20.0, 5.0, now);
            sent += a.now;
            assert!(a.next_in_ms.is_some_and(|ms| ms <= 50));
            let bound = 5.0 + 20.0 * (now as f64 / 1000.0);
            assert!(f64::from(sent) <= bound + 1e-9, "{sent} by {now} ms");
        }
        assert!(sent >= 200, "{sent}: it does send at the rate");
        let mut idle = TokenBucket::full(5.0, 0);
        assert_eq!(
            idle.admit(3, 20.0, 5.0, 0),
            Admission {
                now: 3,
                next_in_ms: None
            }
        );
    }
}
