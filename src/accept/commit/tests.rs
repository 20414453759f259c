//! The commit sequence over in-memory ports: every step failing in turn, and
//! the undoing failing too, with exactly what each case leaves behind.

use super::memory::{Op, State, World, finish, round_trips};
use super::*;
use crate::message::Tag;
use crate::queue::QUEUE_BODY_LIMIT;

const ID: &str = "0123456789abcdef0123456789abcdef";
const AT: u64 = 1_700_000_000_000;
const LEASE: Lease = Lease {
    until_ms: AT + 600_000,
    safety_delay_seconds: 48,
};

fn job(mime_len: usize, tagged: bool) -> DeliveryJob {
    DeliveryJob {
        id: ID.to_string(),
        key_id: "backend".to_string(),
        mail_from: "hello@example.com".to_string(),
        rcpt_to: vec!["rcpt@example.net".to_string()],
        mime: "x".repeat(mime_len),
        smtputf8: false,
        accepted_at: AT / 1000,
        attempt: 0,
        body_ref: None,
        tags: if tagged {
            vec![Tag {
                name: "campaign".to_string(),
                value: "spring".to_string(),
            }]
        } else {
            Vec::new()
        },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Queued,
    Immediate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    Small,
    /// Too large for a queue message: the body goes to the body store.
    Large,
}

fn order(mode: Mode, size: Size) -> Order {
    let len = match size {
        Size::Small => 1000,
        Size::Large => QUEUE_BODY_LIMIT + 1,
    };
    Order {
        job: job(len, true),
        accepted_at_ms: AT,
        lease: (mode == Mode::Immediate).then_some(LEASE),
        warnings: vec!["a warning".to_string()],
        send_at: None,
    }
}

/// What remains of the message after the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Left {
    row: bool,
    lease: bool,
    body: bool,
    job: bool,
}

const NOTHING: Left = Left {
    row: false,
    lease: false,
    body: false,
    job: false,
};

fn left(state: &State) -> Left {
    Left {
        row: state.rows.contains_key(ID),
        lease: state.leases.contains_key(ID),
        body: !state.bodies.is_empty(),
        job: !state.queue.is_empty(),
    }
}

/// Accepted, or the step that failed (what stays behind is in the `Left` column).
type Outcome = Result<(), Step>;

/// One case: its name, the mode and size of the message, the operations
/// that fail, the outcome, and what remains afterwards.
type Row = (&'static str, Mode, Size, &'static [Op], Outcome, Left);

fn row_not_removed() -> Residue {
    Residue::RowNotRemoved(ID.to_string())
}

#[test]
fn each_failing_step_leaves_exactly_what_the_table_says() {
    use Mode::*;
    use Op::*;
    use Size::*;
    let accepted_small = Left {
        row: true,
        job: true,
        ..NOTHING
    };
    let accepted_large = Left {
        body: true,
        ..accepted_small
    };
    let accepted_immediate = Left {
        lease: true,
        ..accepted_small
    };
    let everything = Left {
        row: true,
        lease: true,
        body: true,
        job: true,
    };
    let only_job = Left {
        job: true,
        ..NOTHING
    };
    let row = || row_not_removed();
    let lease = || Residue::Lease(ID.to_string());
    let body = || Residue::Body(crate::queue::body::body_key(ID));
    let table: Vec<Row> = vec![
        ("queued", Queued, Small, &[], Ok(()), accepted_small),
        // The job went out beside the failed row: it finds no row and is
        // refused by the consumer after its bounded wait.
        (
            "row fails",
            Queued,
            Small,
            &[Insert],
            Err(Step::Row),
            only_job,
        ),
        (
            "row fails, then the withdrawal",
            Queued,
            Small,
            &[Insert, Delete],
            Err(Step::Row),
            only_job,
        ),
        (
            "row and enqueue fail",
            Queued,
            Small,
            &[Insert, Enqueue],
            Err(Step::Row),
            NOTHING,
        ),
        (
            "enqueue fails",
            Queued,
            Small,
            &[Enqueue],
            Err(Step::Enqueue),
            NOTHING,
        ),
        (
            "enqueue fails, then the delete",
            Queued,
            Small,
            &[Enqueue, Delete],
            Err(Step::Enqueue),
            Left {
                row: true,
                ..NOTHING
            },
        ),
        ("large, queued", Queued, Large, &[], Ok(()), accepted_large),
        (
            "large, body fails",
            Queued,
            Large,
            &[PutBody],
            Err(Step::Body),
            NOTHING,
        ),
        (
            "large, row fails",
            Queued,
            Large,
            &[Insert],
            Err(Step::Row),
            only_job,
        ),
        (
            "large, row fails, then the body's release",
            Queued,
            Large,
            &[Insert, ReleaseBody],
            Err(Step::Row),
            Left {
                body: true,
                ..only_job
            },
        ),
        (
            "large, enqueue fails",
            Queued,
            Large,
            &[Enqueue],
            Err(Step::Enqueue),
            NOTHING,
        ),
        (
            "large, enqueue fails, then every undo",
            Queued,
            Large,
            &[Enqueue, Delete, ReleaseBody],
            Err(Step::Enqueue),
            Left {
                row: true,
                body: true,
                ..NOTHING
            },
        ),
        (
            "immediate",
            Immediate,
            Small,
            &[],
            Ok(()),
            accepted_immediate,
        ),
        (
            "immediate, row fails",
            Immediate,
            Small,
            &[Insert],
            Err(Step::Row),
            only_job,
        ),
        (
            "immediate, enqueue fails",
            Immediate,
            Small,
            &[Enqueue],
            Err(Step::Enqueue),
            NOTHING,
        ),
        (
            "immediate, enqueue fails, then the lease's release",
            Immediate,
            Small,
            &[Enqueue, ReleaseLease],
            Err(Step::Enqueue),
            Left {
                lease: true,
                ..NOTHING
            },
        ),
        (
            "immediate, large",
            Immediate,
            Large,
            &[],
            Ok(()),
            Left {
                lease: true,
                ..accepted_large
            },
        ),
        (
            "immediate, large, enqueue fails, then every undo",
            Immediate,
            Large,
            &[Enqueue, ReleaseLease, Delete, ReleaseBody],
            Err(Step::Enqueue),
            Left {
                job: false,
                ..everything
            },
        ),
    ];
    for (name, mode, size, failing, expected, expected_left) in table {
        let world = World::failing(failing);
        let got = finish(commit(&world, &world, &world, order(mode, size)));
        let state = world.state();
        assert_eq!(left(&state), expected_left, "{name}: {state:?}");
        match (got, expected) {
            (Ok(returned), Ok(())) => {
                // The request goes on with the whole body, and the key when it was stored apart.
                assert_eq!(returned.mime, order(mode, size).job.mime, "{name}");
                assert_eq!(returned.body_ref.is_some(), size == Large, "{name}");
                assert!(!returned.safety_net, "{name}");
                // Tags and warnings are written with the row.
                assert!(state.tags.contains_key(ID), "{name}");
                assert_eq!(state.warnings.get(ID), Some(&vec!["a warning".to_string()]));
            }
            (Err(failure), Err(step)) => {
                assert_eq!(failure.step, step, "{name}");
                assert_eq!(failure.error, PortError(format!("{:?} failed", failing[0])));
                // The failure names what stayed behind, and nothing else.
                let mut expected_residue = Vec::new();
                if expected_left.lease {
                    expected_residue.push(lease());
                }
                if expected_left.row {
                    expected_residue.push(row());
                }
                if expected_left.body {
                    expected_residue.push(body());
                }
                if expected_left.job {
                    expected_residue.push(Residue::JobWithoutRow(ID.to_string()));
                }
                assert_eq!(failure.residue, expected_residue, "{name}");
                if failure.residue.is_empty() {
                    assert_eq!(state, State::default(), "{name}: a 503 leaves nothing");
                }
                // A job is left only beside a row that was never written,
                // so no consumer can deliver it.
                assert!(
                    !(left(&state).job && state.rows.contains_key(ID)),
                    "{name}: a refused message left a deliverable job"
                );
                // A stored job goes with its row: none is left for the
                // sweep unless the row itself stayed.
                assert_eq!(state.jobs.contains_key(ID), expected_left.row, "{name}");
            }
            (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn the_queued_job_is_what_the_consumer_needs() {
    for (mode, size) in [
        (Mode::Queued, Size::Small),
        (Mode::Queued, Size::Large),
        (Mode::Immediate, Size::Small),
        (Mode::Immediate, Size::Large),
    ] {
        let world = World::default();
        finish(commit(&world, &world, &world, order(mode, size))).unwrap();
        let state = world.state();
        let [(QueueBody::Deliver { job, .. }, delay)] = state.queue.as_slice() else {
            panic!(
                "{mode:?} {size:?}: one deliver job expected: {:?}",
                state.queue
            );
        };
        let whole = order(mode, size).job;
        assert_eq!(job.safety_net, mode == Mode::Immediate, "{mode:?}");
        match mode {
            Mode::Immediate => assert_eq!(*delay, Some(LEASE.safety_delay_seconds)),
            Mode::Queued => assert_eq!(*delay, None),
        }
        match size {
            Size::Small => {
                assert_eq!(job.mime, whole.mime);
                assert!(state.bodies.is_empty());
            }
            Size::Large => {
                // The queue message carries the key, the bucket the body.
                let key = job.body_ref.clone().unwrap();
                assert!(job.mime.is_empty());
                assert_eq!(state.bodies.get(&key), Some(&whole.mime));
            }
        }
        assert_eq!(state.rows.get(ID), Some(&AT));
        // The row keeps exactly the job the queue carries, so the sweep can
        // send it again if the queue message is lost.
        assert_eq!(state.jobs.get(ID), Some(job), "{mode:?} {size:?}");
        if mode == Mode::Immediate {
            assert_eq!(state.leases.get(ID), Some(&LEASE.until_ms));
        }
    }
}

#[test]
fn steps_run_in_order_and_undo_runs_newest_first() {
    use Op::*;
    let world = World::default();
    finish(commit(
        &world,
        &world,
        &world,
        order(Mode::Immediate, Size::Large),
    ))
    .unwrap();
    assert_eq!(
        *world.calls.borrow(),
        [PutBody, Insert, Enqueue],
        "the body first, then the row (with its lease) and the job together"
    );

    let world = World::failing(&[Enqueue]);
    finish(commit(
        &world,
        &world,
        &world,
        order(Mode::Immediate, Size::Large),
    ))
    .unwrap_err();
    assert_eq!(
        *world.calls.borrow(),
        [PutBody, Insert, Enqueue, ReleaseLease, Delete, ReleaseBody]
    );

    // A failed body store stops everything: no row is written.
    let world = World::failing(&[PutBody]);
    finish(commit(
        &world,
        &world,
        &world,
        order(Mode::Queued, Size::Large),
    ))
    .unwrap_err();
    assert_eq!(*world.calls.borrow(), [PutBody]);

    // A failed row write is withdrawn (it may have been applied).
    let world = World::failing(&[Insert]);
    finish(commit(
        &world,
        &world,
        &world,
        order(Mode::Queued, Size::Small),
    ))
    .unwrap_err();
    assert_eq!(*world.calls.borrow(), [Insert, Enqueue, Delete]);
}

/// The accept path's storage waits, counted over ports that each take one
/// round trip: the row and the job are written together, so a message that
/// fits a queue message waits for one round trip; a large body is stored
/// first (the job names it), so it waits for two. Copies of one message
/// (one per recipient) commit one after another.
#[test]
fn the_commit_waits_for_one_round_trip() {
    let table = [
        (Mode::Queued, Size::Small, 1),
        (Mode::Immediate, Size::Small, 1),
        (Mode::Queued, Size::Large, 2),
        (Mode::Immediate, Size::Large, 2),
    ];
    for (mode, size, expected) in table {
        let world = World::default().remote();
        let (got, waits) = round_trips(commit(&world, &world, &world, order(mode, size)));
        got.unwrap();
        assert_eq!(waits, expected, "{mode:?} {size:?}");
    }
    // The same sequence run one call after another would wait twice:
    // the count is of waits, not of calls.
    let world = World::default().remote();
    let (_, waits) = round_trips(async {
        let o = order(Mode::Queued, Size::Small);
        let row = NewRow {
            job: &o.job,
            accepted_at_ms: AT,
            lease_until_ms: None,
            warnings: &[],
            send_at: None,
        };
        let _ = world.insert(&row).await;
        let _ = world
            .enqueue(&QueueBody::deliver(o.job.clone()), None)
            .await;
    });
    assert_eq!(waits, 2);
    // A failure costs its undo on top.
    let world = World::failing(&[Op::Enqueue]).remote();
    let (got, waits) = round_trips(commit(
        &world,
        &world,
        &world,
        order(Mode::Queued, Size::Small),
    ));
    assert!(got.is_err());
    assert_eq!(waits, 2);
    // Three copies: three round trips.
    let world = World::default().remote();
    let copies: Vec<Order> = (1..=3)
        .map(|i| {
            let mut o = order(Mode::Queued, Size::Small);
            o.job.id = format!("{ID}-{i}");
            o
        })
        .collect();
    let (got, waits) = round_trips(commit_copies(&world, &world, &world, copies));
    assert_eq!(got.unwrap().len(), 3);
    assert_eq!(waits, 3);
}

#[test]
fn a_failure_answers_503_naming_the_step() {
    let cases = [
        (Step::Body, "could not store the message body: boom"),
        (Step::Row, "could not store the message: boom"),
        (Step::Enqueue, "could not enqueue the message: boom"),
    ];
    for (step, message) in cases {
        let e = ApiError::from(CommitFailure {
            step,
            error: PortError("boom".to_string()),
            residue: vec![row_not_removed()],
        });
        assert_eq!(
            (e.status, e.rule),
            (503, "temporarily_unavailable"),
            "{step:?}"
        );
        assert_eq!(e.retry_after, Some(5), "{step:?}");
        assert_eq!(e.message, message);
    }
}

#[test]
fn the_copies_of_a_message_are_accepted_together_or_withdrawn_together() {
    let copies = |n: usize| -> Vec<Order> {
        (1..=n)
            .map(|i| {
                let mut o = order(Mode::Queued, if i == 2 { Size::Large } else { Size::Small });
                o.job.id = format!("{ID}-{i}");
                o
            })
            .collect()
    };
    // All three go in.
    let world = World::default();
    let jobs = finish(commit_copies(&world, &world, &world, copies(3))).unwrap();
    assert_eq!(jobs.len(), 3);
    let state = world.state();
    assert_eq!(state.rows.len(), 3);
    assert_eq!(state.queue.len(), 3);
    assert_eq!(state.bodies.len(), 1);
    // The third enqueue fails: the first two copies are withdrawn (rows and
    // the stored body gone), so the queue messages they left find no row.
    let world = World::failing_after(Op::Enqueue, 2);
    let failure = finish(commit_copies(&world, &world, &world, copies(3))).unwrap_err();
    assert_eq!(failure.step, Step::Enqueue);
    assert!(failure.residue.is_empty(), "{:?}", failure.residue);
    let state = world.state();
    assert!(state.rows.is_empty(), "{:?}", state.rows);
    assert!(state.bodies.is_empty());
    assert_eq!(state.queue.len(), 2);
    // A withdrawal that fails is residue, named by the copy: here the
    // second copy's own undo and the first copy's withdrawal both fail to
    // delete their rows (the stored body is released).
    let world = World::failing_after(Op::Enqueue, 1).and_failing(Op::Delete);
    let failure = finish(commit_copies(&world, &world, &world, copies(2))).unwrap_err();
    assert_eq!(failure.step, Step::Enqueue);
    assert_eq!(
        failure.residue,
        [
            Residue::RowNotRemoved(format!("{ID}-2")),
            Residue::RowNotRemoved(format!("{ID}-1")),
        ]
    );
}
