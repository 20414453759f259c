//! The meter's rule as tables: each row a call at a time and what it must answer.

use super::*;

fn limit(name: &str, limit: u32, period_ms: u64, window: Window) -> Limit {
    Limit {
        name: name.into(),
        limit,
        period_ms,
        window,
    }
}

fn second(n: u32) -> Limit {
    limit("per_second", n, 1000, Window::Sliding)
}

fn day(n: u32) -> Limit {
    limit("per_day", n, 86_400_000, Window::Calendar)
}

fn charge(draws: &[(&Limit, u32)]) -> Call {
    Call::Charge {
        draws: draws
            .iter()
            .map(|(l, cost)| Draw {
                limit: (*l).clone(),
                cost: *cost,
            })
            .collect(),
    }
}

/// What a row expects: allowed with these remaining counts (in draw order),
/// or refused by this bucket with this Retry-After.
#[derive(Debug, PartialEq)]
enum Expect {
    Allowed(Vec<u32>),
    Refused(&'static str, u64),
}

fn outcome(d: &Decision) -> Expect {
    match d {
        Decision::Allowed { quotas, .. } => {
            Expect::Allowed(quotas.iter().map(|q| q.remaining).collect())
        }
        Decision::Refused {
            quota,
            retry_after_seconds,
            ..
        } => Expect::Refused(
            if quota.name == "per_second" {
                "per_second"
            } else {
                "per_day"
            },
            *retry_after_seconds,
        ),
    }
}

/// Runs `(now_ms, call, expected)` rows in order on one meter.
fn run(rows: &[(u64, Call, Expect)]) -> Counts {
    let mut counts = Counts::default();
    for (i, (now, call, expected)) in rows.iter().enumerate() {
        let (next, decision) = apply(&counts, call, *now);
        assert_eq!(&outcome(&decision), expected, "row {i} at {now} ms");
        counts = next;
    }
    counts
}

#[test]
fn a_sliding_second_admits_its_limit_then_refuses_until_the_oldest_slot_leaves() {
    let s = second(3);
    let one = || charge(&[(&s, 1)]);
    run(&[
        (10_000, one(), Expect::Allowed(vec![2])),
        (10_050, one(), Expect::Allowed(vec![1])),
        (10_250, one(), Expect::Allowed(vec![0])),
        // Full: the slot of 10 000 ms is counted until 11 100 ms.
        (10_260, one(), Expect::Refused("per_second", 1)),
        (11_000, one(), Expect::Refused("per_second", 1)),
        (11_099, one(), Expect::Refused("per_second", 1)),
        // Its slot (10 000..10 100, two calls) has left.
        (11_100, one(), Expect::Allowed(vec![1])),
        (11_101, one(), Expect::Allowed(vec![0])),
        (11_102, one(), Expect::Refused("per_second", 1)),
    ]);
}

#[test]
fn no_second_long_window_ever_holds_more_than_the_limit() {
    // A call every 7 ms for 5 s against 10 per second: count what was
    // admitted in every window [t, t + 1000) that starts at an admitted call.
    let s = second(10);
    let mut counts = Counts::default();
    let mut admitted = Vec::new();
    for k in 0..700u64 {
        let now = 50_003 + k * 7;
        let (next, d) = apply(&counts, &charge(&[(&s, 1)]), now);
        if matches!(d, Decision::Allowed { .. }) {
            admitted.push(now);
        }
        counts = next;
    }
    for &start in &admitted {
        let within = admitted
            .iter()
            .filter(|&&t| t >= start && t < start + 1000)
            .count();
        assert!(within <= 10, "{within} admitted in [{start}, {start}+1000)");
    }
    // And it does not starve: about the limit per second gets through
    // (at least 10 per 1.1 s over 4.9 s).
    assert!(admitted.len() >= 44, "{} admitted", admitted.len());
}

#[test]
fn a_calendar_day_counts_until_utc_midnight() {
    let d = day(5);
    const DAY: u64 = 86_400_000;
    let noon = 20_000 * DAY + DAY / 2;
    run(&[
        (noon, charge(&[(&d, 2)]), Expect::Allowed(vec![3])),
        (noon + 1, charge(&[(&d, 3)]), Expect::Allowed(vec![0])),
        // Half a day to midnight: 43 200 s.
        (
            noon + 2,
            charge(&[(&d, 1)]),
            Expect::Refused("per_day", 43_200),
        ),
        // A cost of nothing always passes.
        (noon + 3, charge(&[(&d, 0)]), Expect::Allowed(vec![0])),
        // The next UTC day starts empty.
        (21_000 * DAY, charge(&[(&d, 5)]), Expect::Allowed(vec![0])),
    ]);
}

#[test]
fn a_batch_over_the_remaining_count_is_refused_whole() {
    let d = day(10);
    let counts = run(&[
        (1_000, charge(&[(&d, 7)]), Expect::Allowed(vec![3])),
        (
            1_001,
            charge(&[(&d, 4)]),
            Expect::Refused("per_day", 86_399),
        ),
        (1_002, charge(&[(&d, 3)]), Expect::Allowed(vec![0])),
    ]);
    // The refused batch took nothing.
    let (_, d2) = apply(&counts, &charge(&[(&d, 0)]), 1_003);
    assert_eq!(outcome(&d2), Expect::Allowed(vec![0]));
}

#[test]
fn a_cost_over_the_limit_never_fits_and_says_when_the_limit_is_whole_again() {
    let d = day(10);
    let (_, decision) = apply(&Counts::default(), &charge(&[(&d, 11)]), 5_000);
    match decision {
        Decision::Refused {
            quota,
            cost,
            retry_after_seconds,
        } => {
            assert_eq!((quota.remaining, cost), (10, 11));
            // Nothing counted yet: the earliest sensible retry.
            assert_eq!(retry_after_seconds, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_bucket_must_have_room_or_none_is_charged() {
    let s = second(2);
    let d = day(3);
    run(&[
        (
            1_000,
            charge(&[(&s, 1), (&d, 2)]),
            Expect::Allowed(vec![1, 1]),
        ),
        // The day refuses: the second is not charged either.
        (
            1_010,
            charge(&[(&s, 1), (&d, 2)]),
            Expect::Refused("per_day", 86_399),
        ),
        (
            1_020,
            charge(&[(&s, 1), (&d, 1)]),
            Expect::Allowed(vec![0, 0]),
        ),
        // Both full: the longer wait is named.
        (
            1_030,
            charge(&[(&s, 1), (&d, 1)]),
            Expect::Refused("per_day", 86_399),
        ),
        // The second refuses; the day is not charged.
        (
            1_040,
            charge(&[(&s, 1), (&d, 0)]),
            Expect::Refused("per_second", 2),
        ),
    ]);
}

#[test]
fn a_refund_gives_back_what_its_charge_took_while_the_window_lasts() {
    let d = day(2);
    let counts = run(&[
        (1_000, charge(&[(&d, 2)]), Expect::Allowed(vec![0])),
        (
            1_500,
            Call::Refund {
                draws: vec![Draw {
                    limit: d.clone(),
                    cost: 1,
                }],
                charged_at_ms: 1_000,
            },
            Expect::Allowed(vec![1]),
        ),
        (1_600, charge(&[(&d, 1)]), Expect::Allowed(vec![0])),
    ]);
    // A refund for a window already forgotten changes nothing.
    let stale = Call::Refund {
        draws: vec![Draw {
            limit: d.clone(),
            cost: 5,
        }],
        charged_at_ms: 0,
    };
    let (after, decision) = apply(&counts, &stale, 90_000_000);
    assert_eq!(outcome(&decision), Expect::Allowed(vec![2]));
    let (_, decision) = apply(&after, &charge(&[(&d, 0)]), 90_000_001);
    assert_eq!(outcome(&decision), Expect::Allowed(vec![2]));
}

#[test]
fn quotas_report_the_time_until_the_whole_limit_is_back() {
    let s = second(5);
    let (counts, decision) = apply(&Counts::default(), &charge(&[(&s, 1)]), 7_000);
    let Decision::Allowed { quotas, at_ms } = decision else {
        panic!("refused");
    };
    assert_eq!(at_ms, 7_000);
    assert_eq!(
        quotas,
        vec![Quota {
            name: "per_second".into(),
            limit: 5,
            remaining: 4,
            // The slot 7 000..7 100 is counted until 8 100 ms.
            reset_seconds: 2,
        }]
    );
    let (_, decision) = apply(&counts, &charge(&[(&s, 0)]), 9_000);
    let Decision::Allowed { quotas, .. } = decision else {
        panic!("refused");
    };
    assert_eq!((quotas[0].remaining, quotas[0].reset_seconds), (5, 0));
}

#[test]
fn a_changed_period_starts_the_bucket_afresh_and_undrawn_buckets_are_forgotten() {
    let s = second(1);
    let counts = run(&[
        (1_000, charge(&[(&s, 1)]), Expect::Allowed(vec![0])),
        // Counted until 2 100 ms: 1 099 ms, rounded up.
        (1_001, charge(&[(&s, 1)]), Expect::Refused("per_second", 2)),
    ]);
    let wider = limit("per_second", 1, 2000, Window::Sliding);
    let (_, d) = apply(&counts, &charge(&[(&wider, 1)]), 1_002);
    assert_eq!(outcome(&d), Expect::Allowed(vec![0]));
    // Long after, a call drawing another bucket leaves nothing of the first.
    let other = limit("other", 1, 1000, Window::Sliding);
    let (later, _) = apply(&counts, &charge(&[(&other, 1)]), 60_000);
    assert_eq!(later.buckets.len(), 1);
    assert!(later.buckets.contains_key("other"));
}

#[test]
fn the_call_and_answer_read_and_write_as_json() {
    let call: Call = serde_json::from_str(
        r#"{"op":"charge","draws":[{"name":"per_second","limit":5,"period_ms":1000,"window":"sliding","cost":1}]}"#,
    )
    .unwrap();
    assert_eq!(call, charge(&[(&second(5), 1)]));
    let (_, decision) = apply(&Counts::default(), &call, 0);
    let text = serde_json::to_string(&decision).unwrap();
    assert!(text.starts_with(r#"{"decision":"allowed""#), "{text}");
    assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), decision);
}
