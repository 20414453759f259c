//! Settlement tables: each row is a recorded state, an attempt the SMTP
//! client could really report, and the settlement it must come to.

use super::*;
use crate::delivery::RetrySettings;
use crate::delivery::attempt::report;
use crate::delivery::recipients::from_transaction;
use crate::smtp::TransactionOutcome;
use crate::smtp::{Cause, Outcome, OutcomeKind, RecipientOutcome, Reply, ReplyParser};

use EventKind as E;
use RecipientState::{Deferred, Delivered, Failed, Unknown};

const ACCEPTED_AT: u64 = 1_700_000_000;
/// Ten seconds after acceptance, in milliseconds.
const NOW: u64 = (ACCEPTED_AT + 10) * 1000;

fn policy() -> RetryPolicy {
    RetryPolicy::new(RetrySettings {
        base_delay_seconds: 60,
        max_delay_seconds: 43_200,
        lifetime_seconds: 432_000,
    })
}

fn job(rcpts: &[&str]) -> DeliveryJob {
    DeliveryJob {
        id: "m1".into(),
        key_id: "backend".into(),
        mail_from: "a@example.com".into(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
        mime: "Subject: hi\r\n\r\nbody\r\n".into(),
        smtputf8: false,
        accepted_at: ACCEPTED_AT,
        attempt: 0,
        body_ref: None,
        tags: Vec::new(),
        metadata: None,
        safety_net: false,
        tenant: String::new(),
        stream: None,
        topic: None,
        subject: None,
        from: None,
        envid: None,
        notify_delivery: false,
        marketing: false,
    }
}

/// A job whose body waits in the bucket (here with the body put back, as delivered).
fn stored(rcpts: &[&str]) -> DeliveryJob {
    DeliveryJob {
        body_ref: Some("bodies/m1.eml".into()),
        ..job(rcpts)
    }
}

fn parsed(line: &str) -> Reply {
    let text = format!("{line}\r\n");
    let mut input = text.as_bytes();
    ReplyParser::new().parse(&mut input).unwrap().unwrap()
}

/// A recipient's outcome from its reply line: 2xx delivered, 4xx transient,
/// 5xx permanent; `"timeout"` the connection lost after the final dot.
fn rcpt(address: &str, line: &str) -> RecipientOutcome {
    let outcome = if line == "timeout" {
        Outcome::new(OutcomeKind::Unknown, Cause::Timeout)
    } else {
        let reply = parsed(line);
        let kind = match reply.class() {
            2 => OutcomeKind::Delivered,
            4 => OutcomeKind::Transient,
            _ => OutcomeKind::Permanent,
        };
        Outcome {
            kind,
            cause: Cause::Reply,
            reply: Some(reply),
        }
    };
    RecipientOutcome {
        address: address.into(),
        outcome,
    }
}

/// An attempt as the edge reports it: the report and the recipients' results
/// both read from one transaction.
fn attempt(job: &DeliveryJob, replies: &[(&str, &str)]) -> Attempt {
    let recipients = replies.iter().map(|(a, l)| rcpt(a, l)).collect();
    let fallback = Outcome::new(OutcomeKind::Delivered, Cause::Reply);
    let outcome = TransactionOutcome::summarise(0, recipients, fallback);
    Attempt {
        report: report(&outcome),
        results: Some(from_transaction(&outcome, &job.rcpt_to)),
    }
}

/// The upstream refused our credentials: the session fails every recipient
/// with that outcome, as the SMTP client reports an envelope never attempted.
fn refused_credentials(job: &DeliveryJob) -> Attempt {
    let refused = Outcome {
        kind: OutcomeKind::Configuration,
        cause: Cause::Reply,
        reply: Some(parsed("535 5.7.8 Authentication failed")),
    };
    let recipients = job
        .rcpt_to
        .iter()
        .map(|address| RecipientOutcome {
            address: address.clone(),
            outcome: refused.clone(),
        })
        .collect();
    let outcome = TransactionOutcome::summarise(0, recipients, refused);
    Attempt {
        report: report(&outcome),
        results: Some(from_transaction(&outcome, &job.rcpt_to)),
    }
}

/// No upstream was reached: no transaction completed.
fn unreached(job: &DeliveryJob) -> Attempt {
    Attempt {
        report: AttemptReport {
            result: crate::delivery::AttemptResult::Transient("up:465: no outcome recorded".into()),
            remaining: job.rcpt_to.clone(),
            detail: "up:465: no outcome recorded".into(),
            try_next_upstream: true,
        },
        results: None,
    }
}

/// The follow-up in a few words, for comparing in a table.
fn follow_up(f: &FollowUp) -> String {
    match f {
        FollowUp::Ack => "ack".into(),
        FollowUp::Wait => "wait".into(),
        FollowUp::DeadLetter(l) => {
            let job = l.job.as_ref().map(|j| j.id.as_str()).unwrap_or("none");
            format!("dead-letter {job}")
        }
        FollowUp::Requeue {
            body: QueueBody::Deliver { job, .. },
            delay_seconds,
        } => format!(
            "requeue in {delay_seconds} s: {} attempt {}",
            job.rcpt_to.join(","),
            job.attempt
        ),
        FollowUp::Requeue { body, .. } => format!("requeue of a non-job {body:?}"),
    }
}

struct Row {
    name: &'static str,
    job: DeliveryJob,
    recorded: Vec<(&'static str, RecipientState)>,
    attempt: Attempt,
    carrier: Carrier,
    /// Age of the message at settlement, seconds (default 10).
    age: Option<u64>,
    status: MessageStatus,
    events: Vec<EventKind>,
    counts: bool,
    /// Seconds from now to the next attempt.
    next_in: Option<u64>,
    follow_up: &'static str,
    release: bool,
    states: Vec<(&'static str, RecipientState)>,
}

#[test]
fn settlement_table() {
    let ab = ["a@x.net", "b@x.net"];
    let ok = "250 2.0.0 Queued";
    let busy = "451 4.3.0 Try later";
    let gone = "550 5.1.1 No such user";
    let rows = vec![
        Row {
            name: "delivered to every recipient",
            job: stored(&ab),
            recorded: vec![],
            attempt: attempt(&stored(&ab), &[("a@x.net", ok), ("b@x.net", ok)]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Delivered,
            events: vec![E::Delivered],
            counts: true,
            next_in: None,
            follow_up: "ack",
            release: true,
            states: vec![("a@x.net", Delivered), ("b@x.net", Delivered)],
        },
        Row {
            name: "partially delivered: one bounces, the message fails and is dead-lettered",
            job: stored(&ab),
            recorded: vec![],
            attempt: attempt(&stored(&ab), &[("a@x.net", ok), ("b@x.net", gone)]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::PartiallyDelivered,
            events: vec![E::Bounced, E::Failed],
            counts: true,
            next_in: None,
            follow_up: "dead-letter m1",
            release: true,
            states: vec![("a@x.net", Delivered), ("b@x.net", Failed)],
        },
        Row {
            name: "every recipient refused for good",
            job: job(&ab),
            recorded: vec![],
            attempt: attempt(&job(&ab), &[("a@x.net", gone), ("b@x.net", gone)]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Failed,
            events: vec![E::Bounced, E::Bounced, E::Failed],
            counts: true,
            next_in: None,
            follow_up: "dead-letter m1",
            release: false,
            states: vec![("a@x.net", Failed), ("b@x.net", Failed)],
        },
        Row {
            name: "a deferred recipient is retried, counting the attempt",
            job: stored(&ab),
            recorded: vec![],
            attempt: attempt(&stored(&ab), &[("a@x.net", ok), ("b@x.net", busy)]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Deferred,
            events: vec![E::Deferred],
            counts: true,
            next_in: Some(60),
            follow_up: "requeue in 60 s: b@x.net attempt 1",
            release: false,
            states: vec![("a@x.net", Delivered), ("b@x.net", Deferred)],
        },
        Row {
            name: "refused credentials retry later without counting",
            job: job(&ab),
            recorded: vec![],
            attempt: refused_credentials(&job(&ab)),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Deferred,
            events: vec![E::Deferred],
            counts: false,
            next_in: Some(300),
            follow_up: "requeue in 300 s: a@x.net,b@x.net attempt 0",
            release: false,
            states: vec![("a@x.net", Deferred), ("b@x.net", Deferred)],
        },
        Row {
            name: "no upstream reached: every recipient deferred",
            job: job(&ab),
            recorded: vec![],
            attempt: unreached(&job(&ab)),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Deferred,
            events: vec![E::Deferred],
            counts: true,
            next_in: Some(60),
            follow_up: "requeue in 60 s: a@x.net,b@x.net attempt 1",
            release: false,
            states: vec![("a@x.net", Deferred), ("b@x.net", Deferred)],
        },
        Row {
            name: "out of lifetime: the deferred recipient fails and bounces",
            job: stored(&ab),
            recorded: vec![],
            attempt: attempt(&stored(&ab), &[("a@x.net", ok), ("b@x.net", busy)]),
            carrier: Carrier::Queue,
            age: Some(431_990),
            status: MessageStatus::PartiallyDelivered,
            events: vec![E::Bounced, E::Failed],
            counts: true,
            next_in: None,
            follow_up: "dead-letter m1",
            release: true,
            states: vec![("a@x.net", Delivered), ("b@x.net", Failed)],
        },
        Row {
            name: "unknown after the final dot: recorded, never retried",
            job: stored(&["a@x.net"]),
            recorded: vec![],
            attempt: attempt(&stored(&["a@x.net"]), &[("a@x.net", "timeout")]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Unknown,
            events: vec![E::Unknown],
            counts: true,
            next_in: None,
            follow_up: "ack",
            release: true,
            states: vec![("a@x.net", Unknown)],
        },
        Row {
            name: "an immediate delivery's retry waits for its safety job",
            job: stored(&ab),
            recorded: vec![],
            attempt: attempt(&stored(&ab), &[("a@x.net", ok), ("b@x.net", busy)]),
            carrier: Carrier::SafetyJob,
            age: None,
            status: MessageStatus::Deferred,
            events: vec![E::Deferred],
            counts: true,
            next_in: Some(60),
            follow_up: "wait",
            release: false,
            states: vec![("a@x.net", Delivered), ("b@x.net", Deferred)],
        },
        Row {
            name: "an immediate delivery that fails still dead-letters",
            job: job(&["b@x.net"]),
            recorded: vec![],
            attempt: attempt(&job(&["b@x.net"]), &[("b@x.net", gone)]),
            carrier: Carrier::SafetyJob,
            age: None,
            status: MessageStatus::Failed,
            events: vec![E::Bounced, E::Failed],
            counts: true,
            next_in: None,
            follow_up: "dead-letter m1",
            release: false,
            states: vec![("b@x.net", Failed)],
        },
        Row {
            name: "a retry's result merges with the recorded recipients",
            job: job(&["b@x.net"]),
            recorded: vec![("A@x.net", Delivered), ("b@x.net", Deferred)],
            attempt: attempt(&job(&["b@x.net"]), &[("b@x.net", ok)]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::Delivered,
            events: vec![E::Delivered],
            counts: true,
            next_in: None,
            follow_up: "ack",
            release: false,
            states: vec![("b@x.net", Delivered)],
        },
        Row {
            name: "a bounce after an earlier delivery makes a partial delivery",
            job: job(&["b@x.net"]),
            recorded: vec![("a@x.net", Delivered), ("b@x.net", Deferred)],
            attempt: attempt(&job(&["b@x.net"]), &[("b@x.net", gone)]),
            carrier: Carrier::Queue,
            age: None,
            status: MessageStatus::PartiallyDelivered,
            events: vec![E::Bounced, E::Failed],
            counts: true,
            next_in: None,
            follow_up: "dead-letter m1",
            release: false,
            states: vec![("b@x.net", Failed)],
        },
    ];
    for row in rows {
        let name = row.name;
        let now = match row.age {
            Some(age) => (ACCEPTED_AT + age) * 1000,
            None => NOW,
        };
        let recorded: Vec<(String, RecipientState)> = row
            .recorded
            .iter()
            .map(|(a, s)| (a.to_string(), *s))
            .collect();
        let transaction_recorded = row.attempt.results.is_some();
        let s = settle(
            &row.job,
            &recorded,
            row.attempt,
            &policy(),
            now,
            0.5,
            row.carrier,
        );
        assert_eq!(s.message_id, "m1", "{name}");
        let record = s
            .record
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no record"));
        assert_eq!(record.status, row.status, "{name}");
        let kinds: Vec<EventKind> = record.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, row.events, "{name}");
        assert_eq!(record.counts_attempt, row.counts, "{name}");
        // Results of a completed transaction were written (and counted) as
        // it completed; only an attempt that reached no upstream is new here.
        assert_eq!(record.recipients_recorded, transaction_recorded, "{name}");
        assert_eq!(
            record.next_attempt_at,
            row.next_in.map(|d| now / 1000 + d),
            "{name}"
        );
        assert_eq!(follow_up(&s.follow_up), row.follow_up, "{name}");
        let released = s.release_body.is_some();
        assert_eq!(released, row.release, "{name}");
        if released {
            assert_eq!(s.release_body, row.job.body_ref, "{name}");
        }
        let states: Vec<(&str, RecipientState)> = record
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.state))
            .collect();
        assert_eq!(states, row.states, "{name}");
        // The attempt's own event comes last, and sets last_error unless delivered.
        let last = record.events.last().unwrap();
        let want_error = (row.status != MessageStatus::Delivered).then(|| last.detail.clone());
        assert_eq!(record.last_error, want_error, "{name}");
    }
}

#[test]
fn events_say_what_happened() {
    let j = job(&["a@x.net", "b@x.net"]);
    let a = attempt(
        &j,
        &[
            ("a@x.net", "250 2.0.0 Queued"),
            ("b@x.net", "550 5.1.1 No such user"),
        ],
    );
    let s = settle(&j, &[], a, &policy(), NOW, 0.5, Carrier::Queue);
    let events = s.record.unwrap().events;
    assert_eq!(events[0].detail, "b@x.net: 550 5.1.1 No such user");
    assert!(
        events[1].detail.contains("No such user"),
        "{}",
        events[1].detail
    );

    let a = attempt(&j, &[("a@x.net", "451 4.3.0 Try later")]);
    let s = settle(&j, &[], a, &policy(), NOW, 0.5, Carrier::Queue);
    let detail = &s.record.unwrap().events[0].detail;
    assert!(detail.ends_with("; next attempt in 60 s"), "{detail}");
    assert!(detail.contains("Try later"), "{detail}");
}

#[test]
fn the_delay_follows_the_attempt_count_and_the_jitter() {
    let mut j = job(&["a@x.net"]);
    j.attempt = 3;
    let busy = || attempt(&job(&["a@x.net"]), &[("a@x.net", "451 4.3.0 Try later")]);
    // Fourth attempt: 60 * 2^3 = 480 s, ±20 %.
    for (jitter, delay) in [(0.0, 384), (0.5, 480), (0.999, 576)] {
        let s = settle(&j, &[], busy(), &policy(), NOW, jitter, Carrier::Queue);
        assert_eq!(
            follow_up(&s.follow_up),
            format!("requeue in {delay} s: a@x.net attempt 4"),
            "jitter {jitter}"
        );
    }
}

#[test]
fn a_retry_carries_only_the_body_reference() {
    let busy = "451 4.3.0 Try later";
    for (j, mime) in [
        (stored(&["a@x.net"]), ""),
        (job(&["a@x.net"]), "Subject: hi\r\n\r\nbody\r\n"),
    ] {
        let a = attempt(&j, &[("a@x.net", busy)]);
        let s = settle(&j, &[], a, &policy(), NOW, 0.5, Carrier::Queue);
        let FollowUp::Requeue {
            body: QueueBody::Deliver { job: next, .. },
            ..
        } = s.follow_up
        else {
            panic!("not a requeue: {:?}", s.follow_up);
        };
        assert_eq!(next.mime, mime);
        assert_eq!(next.body_ref, j.body_ref);
        assert_eq!((next.id.as_str(), next.accepted_at), ("m1", ACCEPTED_AT));
    }
    // A dead letter does the same.
    let j = stored(&["a@x.net"]);
    let a = attempt(&j, &[("a@x.net", "550 5.1.1 No such user")]);
    let s = settle(&j, &[], a, &policy(), NOW, 0.5, Carrier::Queue);
    let FollowUp::DeadLetter(letter) = s.follow_up else {
        panic!("not a dead letter");
    };
    let dead = letter.job.unwrap();
    assert!(dead.mime.is_empty());
    assert_eq!(dead.body_ref.as_deref(), Some("bodies/m1.eml"));
    assert!(letter.reason.contains("No such user"), "{}", letter.reason);
}

fn recorded(states: &[(&str, RecipientState)]) -> Vec<(String, RecipientState)> {
    states.iter().map(|(a, s)| (a.to_string(), *s)).collect()
}

#[test]
fn a_redelivery_with_everything_recorded() {
    use MessageStatus as S;
    // (recorded states, status on the record) -> (status written, or none; body released)
    type Row = (
        Vec<(&'static str, RecipientState)>,
        Option<MessageStatus>,
        Option<MessageStatus>,
        bool,
    );
    let table: Vec<Row> = vec![
        // The crash came after the recipients and before the status.
        (
            vec![("a@x.net", Delivered)],
            Some(S::Queued),
            Some(S::Delivered),
            true,
        ),
        (vec![("a@x.net", Delivered)], None, Some(S::Delivered), true),
        // Everything was settled: nothing to write.
        (vec![("a@x.net", Delivered)], Some(S::Delivered), None, true),
        (
            vec![("a@x.net", Delivered), ("b@x.net", Failed)],
            Some(S::Deferred),
            Some(S::PartiallyDelivered),
            true,
        ),
        (
            vec![("a@x.net", Unknown)],
            Some(S::Queued),
            Some(S::Unknown),
            true,
        ),
        // Another job still carries a deferred recipient: keep the body.
        (
            vec![("a@x.net", Delivered), ("c@x.net", Deferred)],
            Some(S::Queued),
            Some(S::Deferred),
            false,
        ),
    ];
    for (states, current, written, release) in table {
        let j = stored(&["a@x.net"]);
        let s = settle_recorded(&j, &recorded(&states), current);
        assert_eq!(s.follow_up, FollowUp::Ack, "{states:?}");
        assert_eq!(s.release_body.is_some(), release, "{states:?}");
        let Some(status) = written else {
            assert_eq!(s.record, None, "{states:?}");
            continue;
        };
        let r = s.record.unwrap_or_else(|| panic!("{states:?}: no record"));
        assert_eq!(r.status, status, "{states:?}");
        assert!(!r.counts_attempt);
        assert!(r.recipients.is_empty());
        assert_eq!(r.next_attempt_at, None);
        assert_eq!(
            r.events,
            vec![Event {
                kind: EventKind::settled_as(status),
                detail: REDELIVERY_DETAIL.into()
            }]
        );
        assert_eq!(r.last_error.is_none(), status == S::Delivered);
    }
}

#[test]
fn a_lost_body_fails_what_was_not_delivered() {
    let j = stored(&["a@x.net"]);
    let s = body_lost(
        &j,
        &[],
        None,
        "the stored body bodies/m1.eml does not exist",
    );
    let r = s.record.unwrap();
    assert_eq!(r.status, MessageStatus::Failed);
    assert_eq!(r.events.last().unwrap().kind, EventKind::Failed);
    assert_eq!(
        r.last_error.as_deref(),
        Some("the stored body bodies/m1.eml does not exist")
    );
    assert!(!r.counts_attempt);
    assert_eq!(follow_up(&s.follow_up), "dead-letter m1");
    assert_eq!(s.release_body, None);

    // A redelivered retry job (carrying b only) whose body was released:
    // a stays delivered, the message is partially delivered.
    let j = stored(&["b@x.net"]);
    let s = body_lost(
        &j,
        &recorded(&[("a@x.net", Delivered), ("b@x.net", Deferred)]),
        Some(MessageStatus::Deferred),
        "gone",
    );
    let r = s.record.unwrap();
    assert_eq!(r.status, MessageStatus::PartiallyDelivered);
    assert_eq!(states_of(&r), vec![("b@x.net".to_string(), Failed)]);
}

fn states_of(r: &Record) -> Vec<(String, RecipientState)> {
    r.recipients
        .iter()
        .map(|x| (x.address.clone(), x.state))
        .collect()
}

#[test]
fn a_dead_letter_settles_from_the_recorded_recipients() {
    use MessageStatus as S;
    type Row = (
        &'static [&'static str],
        Vec<(&'static str, RecipientState)>,
        Option<MessageStatus>,
        MessageStatus,
        &'static [&'static str],
    );
    // (job's recipients, recorded, status on record) -> (status, recipients failed now)
    let table: Vec<Row> = vec![
        // Nothing recorded (the platform gave up after crashes): failed.
        (
            &["a@x.net"],
            vec![],
            Some(S::Queued),
            S::Failed,
            &["a@x.net"],
        ),
        // Delivered before the crash loop: stays delivered.
        (
            &["a@x.net"],
            vec![("a@x.net", Delivered)],
            Some(S::Queued),
            S::Delivered,
            &[],
        ),
        (
            &["A@x.net", "b@x.net"],
            vec![("a@x.net", Delivered)],
            Some(S::Queued),
            S::PartiallyDelivered,
            &["b@x.net"],
        ),
        // A retry job carries only b; a was delivered by an earlier attempt.
        (
            &["b@x.net"],
            vec![("a@x.net", Delivered), ("b@x.net", Deferred)],
            Some(S::Deferred),
            S::PartiallyDelivered,
            &["b@x.net"],
        ),
        // Our own dead letter after a 5xx: recorded already, nothing changes.
        (
            &["a@x.net"],
            vec![("a@x.net", Failed)],
            Some(S::Failed),
            S::Failed,
            &[],
        ),
        // The upstream may have it: unknown, never failed.
        (
            &["a@x.net", "b@x.net"],
            vec![("a@x.net", Unknown), ("b@x.net", Delivered)],
            Some(S::Queued),
            S::Unknown,
            &[],
        ),
        // A deferred recipient no job carries any more fails too.
        (
            &["a@x.net"],
            vec![("a@x.net", Delivered), ("c@x.net", Deferred)],
            Some(S::Deferred),
            S::PartiallyDelivered,
            &["c@x.net"],
        ),
    ];
    for (rcpts, states, current, status, failed) in table {
        let j = stored(rcpts);
        let s = dead_lettered(&j, &recorded(&states), current, "crashed");
        assert_eq!(s.follow_up, FollowUp::Ack, "{states:?}");
        assert_eq!(s.release_body.as_deref(), Some("bodies/m1.eml"));
        let r = s.record.unwrap();
        assert_eq!(r.status, status, "{rcpts:?} {states:?}");
        let now_failed: Vec<(String, RecipientState)> =
            failed.iter().map(|a| (a.to_string(), Failed)).collect();
        assert_eq!(states_of(&r), now_failed, "{rcpts:?} {states:?}");
        let kinds: Vec<EventKind> = r.events.iter().map(|e| e.kind).collect();
        let mut want = vec![E::Bounced; failed.len()];
        want.push(E::DeadLettered);
        assert_eq!(kinds, want, "{states:?}");
        assert_eq!(r.last_error.is_none(), status == S::Delivered);
        assert!(!r.counts_attempt);
    }
}

/// Which refusals add the address to the tenant's list at settle time:
/// (replies, addresses suppressed).
#[test]
fn only_hard_bounces_add_suppressions() {
    let abc = ["a@x.net", "B@x.net", "c@x.net"];
    type Row<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let table: Vec<Row<'_>> = vec![
        (
            vec![
                ("a@x.net", "250 2.0.0 Queued"),
                ("B@x.net", "550 5.1.1 No such user"),
                ("c@x.net", "550 5.7.1 Message refused by policy"),
            ],
            vec!["b@x.net"],
        ),
        (
            vec![
                ("a@x.net", "550 5.2.1 Mailbox disabled"),
                ("B@x.net", "552 5.3.4 Message too big"),
                ("c@x.net", "451 4.3.0 Try later"),
            ],
            vec!["a@x.net"],
        ),
        (
            vec![
                ("a@x.net", "554 5.7.1 Spam detected"),
                ("B@x.net", "450 4.1.1 Try again"),
                ("c@x.net", "250 2.0.0 Queued"),
            ],
            vec![],
        ),
    ];
    for (replies, want) in table {
        let j = DeliveryJob {
            tenant: "acme".into(),
            ..job(&abc)
        };
        let s = settle(
            &j,
            &[],
            attempt(&j, &replies),
            &policy(),
            NOW,
            0.0,
            Carrier::Queue,
        );
        let record = s.record.unwrap();
        let got: Vec<&str> = record.suppress.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(got, want, "{replies:?}");
        for e in &record.suppress {
            assert_eq!(e.tenant, "acme");
            assert_eq!(e.message_id.as_deref(), Some("m1"));
            assert_eq!(e.created_at_ms, NOW);
        }
    }
    // A recipient given up at the end of its lifetime after 4xx replies is
    // failed, but its address is not bad.
    let j = job(&["a@x.net"]);
    let late = settle(
        &j,
        &[],
        attempt(&j, &[("a@x.net", "450 4.2.1 Mailbox busy")]),
        &policy(),
        (ACCEPTED_AT + 432_001) * 1000,
        0.0,
        Carrier::Queue,
    );
    let record = late.record.unwrap();
    assert_eq!(record.recipients[0].state, Failed);
    assert!(record.suppress.is_empty());
}
