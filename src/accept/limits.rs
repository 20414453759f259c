//! Per-key limits: what a call of a limited key draws from its meter, the
//! 429 a refusal answers, and the rate-limit headers.
//!
//! A key's meter (one Durable Object per key, which serialises the key's
//! calls) holds two buckets (see [`crate::accept::quota`]):
//!
//! | limit | bucket | window | cost |
//! | --- | --- | --- | --- |
//! | `per_second` | requests | sliding second, ten 100 ms slots | 1 per authenticated request, any route |
//! | `per_day` | messages | the UTC day | 1 per message of a send, N for a batch of N |
//!
//! The daily count is of messages *accepted*: a send reserves its messages
//! before any work is done (a batch whole, or not at all), and what was not
//! accepted in the end (refused by validation, a failed store) is given back
//! ([`refund`]). A request that is counted and then refused still counts as a
//! request: requests cost the worker work whatever their fate. A dry run is a
//! request and no message. A duplicate answered from an `Idempotency-Key`'s
//! record counts as the send it repeats. A message sent as one copy per
//! recipient is one message.
//!
//! Owns: the mapping from [`KeyLimits`] to meter draws, the refusal and the
//! headers. Must not: count (the meter does), or read the clock.

use crate::accept::keys::KeyLimits;
use crate::accept::quota::{Call, Decision, Draw, Limit, Quota, Window};

use super::error::ApiError;

/// The name of the per-second limit, as in settings and in a refusal's `field`.
pub const PER_SECOND: &str = "per_second";
/// The name of the daily limit, as in settings and in a refusal's `field`.
pub const PER_DAY: &str = "per_day";

const SECOND_MS: u64 = 1000;
const DAY_MS: u64 = 86_400_000;

/// What one call costs a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Requests (1 for every request).
    pub requests: u32,
    /// Messages the call would accept.
    pub messages: u32,
}

impl Cost {
    /// A request that accepts no message (reads, dry runs, settings).
    pub const REQUEST: Cost = Cost {
        requests: 1,
        messages: 0,
    };

    /// A request that would accept `messages` messages.
    pub fn sending(messages: u32) -> Cost {
        Cost {
            requests: 1,
            messages,
        }
    }
}

/// The name of a key's meter: one object per key of a tenant.
pub fn meter_name(tenant: &str, key_id: &str) -> String {
    format!("key:{tenant}/{key_id}")
}

/// The name of a queue producer's meter.
pub fn producer_meter_name(producer_id: &str) -> String {
    format!("producer:{producer_id}")
}

fn draws(limits: &KeyLimits, cost: Cost) -> Vec<Draw> {
    let mut draws = Vec::new();
    if let Some(n) = limits.per_second {
        draws.push(Draw {
            limit: Limit {
                name: PER_SECOND.into(),
                limit: n,
                period_ms: SECOND_MS,
                window: Window::Sliding,
            },
            cost: cost.requests,
        });
    }
    if let Some(n) = limits.per_day {
        draws.push(Draw {
            limit: Limit {
                name: PER_DAY.into(),
                limit: n,
                period_ms: DAY_MS,
                window: Window::Calendar,
            },
            cost: cost.messages,
        });
    }
    draws
}

/// The meter call for a call of this cost, or `None` when the key has no
/// limit that the call touches (no remote call at all). A key with only a
/// daily limit is metered on sends only.
pub fn charge(limits: &KeyLimits, cost: Cost) -> Option<Call> {
    let draws = draws(limits, cost);
    let touches = draws.iter().any(|d| d.cost > 0);
    touches.then_some(Call::Charge { draws })
}

/// Gives back `messages` reserved by a charge at `charged_at_ms` that were
/// not accepted after all; `None` when there is nothing to give back.
pub fn refund(limits: &KeyLimits, messages: u32, charged_at_ms: u64) -> Option<Call> {
    let per_day = limits.per_day?;
    (messages > 0).then(|| Call::Refund {
        draws: vec![Draw {
            limit: Limit {
                name: PER_DAY.into(),
                limit: per_day,
                period_ms: DAY_MS,
                window: Window::Calendar,
            },
            cost: messages,
        }],
        charged_at_ms,
    })
}

/// The longest a queue message may be delayed (the platform's limit, 12 h).
pub const MAX_QUEUE_DELAY_SECONDS: u32 = 43_200;

/// How long a queue producer's message over its limit waits before it is
/// taken again: the refusal's Retry-After, within the queue's longest delay
/// (a message refused by its day waits twice when the day is more than 12 h
/// from its end). It is sent again as a new queue message, so waiting never
/// spends the platform's retries and never dead-letters it.
pub fn producer_delay(refusal: &ApiError) -> u32 {
    refusal
        .retry_after
        .unwrap_or(1)
        .clamp(1, MAX_QUEUE_DELAY_SECONDS)
}

/// The 429 of a refusal: rule `rate_limit_exceeded`, the limit as `field`,
/// and `Retry-After`. `None` when the decision allowed the call.
pub fn refusal(decision: &Decision) -> Option<ApiError> {
    let Decision::Refused {
        quota,
        cost,
        retry_after_seconds,
    } = decision
    else {
        return None;
    };
    let retry = u32::try_from(*retry_after_seconds).unwrap_or(u32::MAX);
    let mut e = ApiError::rate_limited(retry);
    e.rule = "rate_limit_exceeded";
    e.field = Some(quota.name.clone());
    e.message = if quota.name == PER_DAY && *cost > quota.limit {
        format!(
            "{cost} messages are more than this key's daily limit of {}; send fewer at once",
            quota.limit
        )
    } else if quota.name == PER_DAY {
        format!(
            "this key may send {} messages per UTC day and has {} left; {cost} asked",
            quota.limit, quota.remaining
        )
    } else {
        format!(
            "this key may make {} requests per second; retry after {retry} s",
            quota.limit
        )
    };
    Some(e)
}

/// The quota the headers describe: the one with the fewest units left (the
/// refused one on a 429); on a tie, the first drawn (`per_second`).
pub fn reported(decision: &Decision) -> Option<&Quota> {
    match decision {
        Decision::Refused { quota, .. } => Some(quota),
        Decision::Allowed { quotas, .. } => quotas
            .iter()
            .reduce(|a, b| if b.remaining < a.remaining { b } else { a }),
    }
}

/// The rate-limit headers of a response of a limited key, in the style of
/// Resend and the IETF draft: `ratelimit-limit`, `ratelimit-remaining`,
/// `ratelimit-reset` (seconds until the whole limit is back) and
/// `ratelimit-policy` (each limit as `<limit>;w=<window seconds>`).
pub fn headers(limits: &KeyLimits, decision: &Decision) -> Vec<(&'static str, String)> {
    let Some(quota) = reported(decision) else {
        return Vec::new();
    };
    let mut policy = Vec::new();
    if let Some(n) = limits.per_second {
        policy.push(format!("{n};w=1"));
    }
    if let Some(n) = limits.per_day {
        policy.push(format!("{n};w=86400"));
    }
    vec![
        ("ratelimit-limit", quota.limit.to_string()),
        ("ratelimit-remaining", quota.remaining.to_string()),
        ("ratelimit-reset", quota.reset_seconds.to_string()),
        ("ratelimit-policy", policy.join(", ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accept::quota::{Counts, apply};

    fn limits(per_second: Option<u32>, per_day: Option<u32>) -> KeyLimits {
        KeyLimits {
            per_second,
            per_day,
        }
    }

    /// The buckets a call draws, with their costs; None: no remote call.
    type Drawn = Option<Vec<(&'static str, u32)>>;

    #[test]
    fn which_calls_reach_the_meter() {
        let table: &[(KeyLimits, Cost, Drawn)] = &[
            (limits(None, None), Cost::REQUEST, None),
            (limits(None, None), Cost::sending(5), None),
            (
                limits(Some(3), None),
                Cost::REQUEST,
                Some(vec![(PER_SECOND, 1)]),
            ),
            (
                limits(Some(3), None),
                Cost::sending(5),
                Some(vec![(PER_SECOND, 1)]),
            ),
            // A daily limit alone: reads are not metered, sends are.
            (limits(None, Some(9)), Cost::REQUEST, None),
            (limits(None, Some(9)), Cost::sending(0), None),
            (
                limits(None, Some(9)),
                Cost::sending(4),
                Some(vec![(PER_DAY, 4)]),
            ),
            (
                limits(Some(3), Some(9)),
                Cost::REQUEST,
                Some(vec![(PER_SECOND, 1), (PER_DAY, 0)]),
            ),
            (
                limits(Some(3), Some(9)),
                Cost::sending(2),
                Some(vec![(PER_SECOND, 1), (PER_DAY, 2)]),
            ),
        ];
        for (i, (l, cost, expected)) in table.iter().enumerate() {
            let got = charge(l, *cost).map(|c| match c {
                Call::Charge { draws } => draws
                    .iter()
                    .map(|d| (d.limit.name.clone(), d.cost))
                    .collect::<Vec<_>>(),
                other => panic!("row {i}: {other:?}"),
            });
            let expected = expected.as_ref().map(|v| {
                v.iter()
                    .map(|(n, c)| (n.to_string(), *c))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, expected, "row {i}");
        }
    }

    #[test]
    fn refunds_only_touch_the_daily_count() {
        assert_eq!(refund(&limits(Some(3), None), 2, 0), None);
        assert_eq!(refund(&limits(None, Some(9)), 0, 0), None);
        let Some(Call::Refund {
            draws,
            charged_at_ms,
        }) = refund(&limits(Some(3), Some(9)), 2, 77)
        else {
            panic!("no refund");
        };
        assert_eq!(charged_at_ms, 77);
        assert_eq!(draws.len(), 1);
        assert_eq!((draws[0].limit.name.as_str(), draws[0].cost), (PER_DAY, 2));
    }

    #[test]
    fn a_refusal_is_a_429_naming_the_limit_with_retry_after_and_headers() {
        let l = limits(Some(2), Some(100));
        let mut counts = Counts::default();
        for _ in 0..2 {
            let call = charge(&l, Cost::REQUEST).unwrap();
            let (next, d) = apply(&counts, &call, 1_000);
            assert!(refusal(&d).is_none());
            counts = next;
        }
        let (_, d) = apply(&counts, &charge(&l, Cost::sending(1)).unwrap(), 1_500);
        let e = refusal(&d).unwrap();
        assert_eq!(e.status, 429);
        assert_eq!(e.rule, "rate_limit_exceeded");
        assert_eq!(e.field.as_deref(), Some(PER_SECOND));
        assert_eq!(e.retry_after, Some(1));
        let h = headers(&l, &d);
        assert_eq!(
            h,
            vec![
                ("ratelimit-limit", "2".to_string()),
                ("ratelimit-remaining", "0".to_string()),
                ("ratelimit-reset", "1".to_string()),
                ("ratelimit-policy", "2;w=1, 100;w=86400".to_string()),
            ]
        );
    }

    #[test]
    fn a_batch_larger_than_the_day_says_so() {
        let l = limits(None, Some(3));
        let (_, d) = apply(
            &Counts::default(),
            &charge(&l, Cost::sending(4)).unwrap(),
            0,
        );
        let e = refusal(&d).unwrap();
        assert_eq!(e.field.as_deref(), Some(PER_DAY));
        assert!(
            e.message.contains("more than this key's daily limit of 3"),
            "{}",
            e.message
        );
    }

    #[test]
    fn headers_report_the_tightest_limit() {
        let l = limits(Some(10), Some(2));
        let (_, d) = apply(
            &Counts::default(),
            &charge(&l, Cost::sending(1)).unwrap(),
            0,
        );
        let h = headers(&l, &d);
        // The day has 1 left, the second 9: the day is reported.
        assert_eq!(h[0], ("ratelimit-limit", "2".to_string()));
        assert_eq!(h[1], ("ratelimit-remaining", "1".to_string()));
        assert_eq!(h[2], ("ratelimit-reset", "86400".to_string()));
    }

    #[test]
    fn a_producer_over_its_limit_waits_on_the_queue_at_most_twelve_hours() {
        // (limits, charges at 0 ms then 10 ms, the second one's delay)
        let table = [
            // Over the second: a second's wait (1 090 ms, rounded up).
            (limits(Some(1), Some(10)), 2),
            // Over the day, with most of it to go: the queue's longest delay.
            (limits(Some(1), Some(1)), MAX_QUEUE_DELAY_SECONDS),
            (limits(None, Some(1)), MAX_QUEUE_DELAY_SECONDS),
        ];
        for (i, (l, delay)) in table.into_iter().enumerate() {
            let call = charge(&l, Cost::sending(1)).unwrap();
            let (counts, d) = apply(&Counts::default(), &call, 0);
            assert!(refusal(&d).is_none(), "row {i}");
            let (_, d) = apply(&counts, &call, 10);
            assert_eq!(producer_delay(&refusal(&d).unwrap()), delay, "row {i}");
        }
    }

    #[test]
    fn meters_are_named_per_key_of_a_tenant_and_per_producer() {
        assert_eq!(meter_name("acme", "k1"), "key:acme/k1");
        assert_ne!(meter_name("acme", "k1"), meter_name("beta", "k1"));
        assert_eq!(producer_meter_name("billing"), "producer:billing");
    }
}
