//! Cutting shares into parts and sessions, and putting the parts' outcomes
//! back together.

use super::*;
use crate::smtp::Reply;

/// A plan as `[[(job, start, end), ...], ...]`.
fn shape(plan: &[Vec<Part>]) -> Vec<Vec<(usize, usize, usize)>> {
    plan.iter()
        .map(|s| {
            s.iter()
                .map(|p| (p.job, p.recipients.start, p.recipients.end))
                .collect()
        })
        .collect()
}

#[test]
fn shares_are_cut_by_the_recipient_limits() {
    type Sessions = Vec<Vec<(usize, usize, usize)>>;
    type Case = (&'static str, Vec<usize>, Option<u32>, Option<u32>, Sessions);
    let cases: Vec<Case> = vec![
        (
            "no limits: one session, jobs whole",
            vec![3, 1, 120],
            None,
            None,
            vec![vec![(0, 0, 3), (1, 0, 1), (2, 0, 120)]],
        ),
        (
            "per message: a job in transactions of at most 2",
            vec![5, 1],
            Some(2),
            None,
            vec![vec![(0, 0, 2), (0, 2, 4), (0, 4, 5), (1, 0, 1)]],
        ),
        (
            "per session: sessions filled to 3 recipients, a job spanning two",
            vec![2, 2, 1, 1],
            None,
            Some(3),
            vec![
                vec![(0, 0, 2), (1, 0, 1)],
                vec![(1, 1, 2), (2, 0, 1), (3, 0, 1)],
            ],
        ),
        (
            "both: 2 per transaction, 3 per session",
            vec![5],
            Some(2),
            Some(3),
            vec![vec![(0, 0, 2), (0, 2, 3)], vec![(0, 3, 5)]],
        ),
        (
            "a per-session limit below the per-message one caps both",
            vec![4],
            Some(10),
            Some(2),
            vec![vec![(0, 0, 2)], vec![(0, 2, 4)]],
        ),
        (
            "limits no job reaches change nothing",
            vec![1, 1],
            Some(50),
            Some(100),
            vec![vec![(0, 0, 1), (1, 0, 1)]],
        ),
        ("no jobs: no session", vec![], Some(1), Some(1), vec![]),
        (
            "a job with no recipients still goes to the session",
            vec![0, 1],
            Some(1),
            Some(1),
            vec![vec![(0, 0, 0), (1, 0, 1)]],
        ),
        (
            "a zero limit counts as one",
            vec![2],
            Some(0),
            None,
            vec![vec![(0, 0, 1), (0, 1, 2)]],
        ),
    ];
    for (what, counts, per_message, per_session, expected) in cases {
        let plan = plan(&counts, per_message, per_session);
        assert_eq!(shape(&plan), expected, "{what}");
        // Every recipient of every job exactly once, in order.
        for (job, &count) in counts.iter().enumerate() {
            let covered: Vec<usize> = plan
                .iter()
                .flatten()
                .filter(|p| p.job == job)
                .flat_map(|p| p.recipients.clone())
                .collect();
            assert_eq!(covered, (0..count).collect::<Vec<_>>(), "{what}: job {job}");
        }
        for session in &plan {
            let total: usize = session.iter().map(|p| p.recipients.len()).sum();
            assert!(
                total <= per_session.map_or(usize::MAX, |v| v.max(1) as usize),
                "{what}"
            );
            for part in session {
                let cap = per_message.map_or(usize::MAX, |v| v.max(1) as usize);
                assert!(part.recipients.len() <= cap, "{what}");
            }
        }
        let whole = [
            "no limits: one session, jobs whole",
            "limits no job reaches change nothing",
            "no jobs: no session",
            "a job with no recipients still goes to the session",
        ]
        .contains(&what);
        assert_eq!(is_whole(&plan, &counts), whole, "{what}");
    }
}

fn outcome(kind: OutcomeKind, code: u16) -> Outcome {
    Outcome {
        kind,
        cause: Cause::Reply,
        reply: Some(Reply::new(code, "x")),
    }
}

fn part(id: u64, addresses: &[&str], kinds: &[(OutcomeKind, u16)]) -> TransactionOutcome {
    let recipients: Vec<RecipientOutcome> = addresses
        .iter()
        .zip(kinds)
        .map(|(a, (k, c))| RecipientOutcome {
            address: a.to_string(),
            outcome: outcome(*k, *c),
        })
        .collect();
    TransactionOutcome::summarise(id, recipients, outcome(OutcomeKind::Transient, 451))
}

#[test]
fn parts_come_back_together_as_the_jobs_outcome() {
    use OutcomeKind::*;
    let rcpt: Vec<String> = ["a@x", "b@x", "c@x", "d@x", "e@x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let first = part(7, &["a@x", "b@x"], &[(Delivered, 250), (Delivered, 250)]);
    let second = part(7, &["c@x", "d@x"], &[(Delivered, 250), (Permanent, 550)]);
    let third = part(7, &["e@x"], &[(Delivered, 250)]);

    // Every part answered: the recipients in order, the summary from all.
    let all = merge(
        3,
        &rcpt,
        &[
            (0..2, Some(&first)),
            (2..4, Some(&second)),
            (4..5, Some(&third)),
        ],
        None,
    )
    .unwrap();
    assert_eq!(all.id, 3);
    let kinds: Vec<OutcomeKind> = all.recipients.iter().map(|r| r.outcome.kind).collect();
    assert_eq!(
        kinds,
        [Delivered, Delivered, Delivered, Permanent, Delivered]
    );
    let addresses: Vec<&str> = all.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(addresses, ["a@x", "b@x", "c@x", "d@x", "e@x"]);
    assert_eq!(all.outcome.kind, Permanent);

    // The session ended before the last part: its recipient gets the
    // session's failure, and only it is left to try again.
    let lost = outcome(Transient, 421);
    let some = merge(
        3,
        &rcpt,
        &[(0..2, Some(&first)), (2..4, Some(&second)), (4..5, None)],
        Some(&lost),
    )
    .unwrap();
    assert_eq!(some.recipients[4].outcome, lost);
    assert_eq!(some.recipients[4].address, "e@x");
    assert_eq!(some.outcome.kind, Transient);
    assert_eq!(some.delivered().collect::<Vec<_>>(), ["a@x", "b@x", "c@x"]);

    // Without a failure to name, an unreached part is a transient one.
    let none = merge(3, &rcpt, &[(0..2, Some(&first)), (2..5, None)], None).unwrap();
    assert!(
        none.recipients[2..]
            .iter()
            .all(|r| r.outcome.kind == Transient)
    );

    // No part answered: no outcome, as for a job the session never reached.
    assert_eq!(
        merge(3, &rcpt, &[(0..2, None), (2..5, None)], Some(&lost)),
        None
    );

    // A part whose outcome names no recipient (refused as a whole) stands
    // for each of its recipients.
    let whole = TransactionOutcome::summarise(9, Vec::new(), outcome(Permanent, 554));
    let refused = merge(
        3,
        &rcpt,
        &[(0..2, Some(&first)), (2..5, Some(&whole))],
        None,
    )
    .unwrap();
    assert_eq!(refused.recipients.len(), 5);
    assert!(
        refused.recipients[2..]
            .iter()
            .all(|r| r.outcome.kind == Permanent)
    );
}

#[test]
fn the_kind_limit_caps_the_configured_one() {
    assert_eq!(per_message(None, None), None);
    assert_eq!(per_message(Some(10), None), Some(10));
    assert_eq!(per_message(None, Some(50)), Some(50));
    assert_eq!(per_message(Some(100), Some(50)), Some(50));
    assert_eq!(per_message(Some(20), Some(50)), Some(20));
}
