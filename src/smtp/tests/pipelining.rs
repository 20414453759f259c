//! Pipelining across transactions (RFC 2920 §3.1): the end of one
//! message's data and the next transaction's commands, or QUIT, in one
//! write; replies matched in order; every envelope still settled once, by
//! its own replies.

use super::*;
use crate::smtp::wire::Expect;

fn implicit() -> SmtpConfig {
    config(Security::ImplicitTls)
}

fn mail_rcpt_data(recipients: &[&str]) -> String {
    let mut commands = String::from("MAIL FROM:<from@example.com>\r\n");
    for recipient in recipients {
        commands.push_str(&format!("RCPT TO:<{recipient}>\r\n"));
    }
    commands.push_str("DATA\r\n");
    commands
}

/// The message, its final dot, and `next` behind them.
fn dot_then(next: &str) -> String {
    format!("{MESSAGE}.\r\n{next}")
}

#[test]
fn three_messages_take_one_write_per_message() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&[
            "b@example.com",
            "c@example.com",
        ]))),
        server("250 one\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&["d@example.com"]))),
        server("250 two\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 three\r\n221 bye\r\n"),
    ]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com", "c@example.com"]),
            envelope(3, &["d@example.com"]),
        ],
        steps,
    );
    // Each message is decided by the reply to its own dot.
    for (id, text) in [(1, "one"), (2, "two"), (3, "three")] {
        let done = run.outcome(id);
        assert!(done.outcome.is_delivered(), "{id}");
        assert_eq!(
            done.outcome.reply.as_ref().map(|r| r.text()),
            Some(text.to_string())
        );
    }
    assert_eq!(run.closed_failure(), None);
}

#[test]
fn the_data_end_reply_decides_only_its_own_message() {
    // (reply to the first dot, what the first message becomes)
    let cases = [
        ("250 2.0.0 queued\r\n", OutcomeKind::Delivered),
        ("554 5.7.1 spam\r\n", OutcomeKind::Permanent),
        ("451 4.3.0 try later\r\n", OutcomeKind::Transient),
        ("552 5.3.4 too big\r\n", OutcomeKind::Permanent),
    ];
    for (dot_reply, first) in cases {
        let mut steps = hello(&["PIPELINING"]);
        steps.extend([
            client(&mail_rcpt_data(&["a@example.com"])),
            server("250 ok\r\n250 ok\r\n354 go\r\n"),
            // No RSET after a refused dot: the dot ended the transaction.
            client(&dot_then(&mail_rcpt_data(&["b@example.com"]))),
            server(&format!("{dot_reply}250 ok\r\n250 ok\r\n354 go\r\n")),
            client(&dot_then("QUIT\r\n")),
            server("250 second\r\n221 bye\r\n"),
        ]);
        let run = run(
            implicit(),
            vec![
                envelope(1, &["a@example.com"]),
                envelope(2, &["b@example.com"]),
            ],
            steps,
        );
        assert_eq!(run.kinds(1), vec![first], "{dot_reply:?}");
        let code = dot_reply.get(..3).and_then(|c| c.parse::<u16>().ok());
        assert_eq!(
            run.outcome(1).outcome.reply.as_ref().map(|r| r.code),
            code,
            "{dot_reply:?}"
        );
        assert_eq!(run.kinds(2), vec![OutcomeKind::Delivered], "{dot_reply:?}");
    }
}

#[test]
fn next_transaction_recipient_refusals_are_its_own() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&[
            "b@example.com",
            "x@example.com",
        ]))),
        server("250 one\r\n250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 two\r\n221 bye\r\n"),
    ]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com", "x@example.com"]),
        ],
        steps,
    );
    assert_eq!(run.kinds(1), vec![OutcomeKind::Delivered]);
    assert_eq!(
        run.kinds(2),
        vec![OutcomeKind::Delivered, OutcomeKind::Permanent]
    );
}

#[test]
fn next_transaction_with_every_recipient_refused_recovers_as_before() {
    // DATA refused: RSET, then the third message goes on.
    let mut refused = hello(&["PIPELINING"]);
    refused.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&["x@example.com"]))),
        server("250 one\r\n250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n"),
        client("RSET\r\n"),
        server("250 reset\r\n"),
        client(&mail_rcpt_data(&["c@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 three\r\n221 bye\r\n"),
    ]);
    // DATA accepted anyway: a bare dot ends it, and nothing is pipelined
    // behind that terminator.
    let mut accepted = hello(&["PIPELINING"]);
    accepted.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&["x@example.com"]))),
        server("250 one\r\n250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n"),
        client(".\r\n"),
        server("554 no valid recipients\r\n"),
        client(&mail_rcpt_data(&["c@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 three\r\n221 bye\r\n"),
    ]);
    for steps in [refused, accepted] {
        let run = run(
            implicit(),
            vec![
                envelope(1, &["a@example.com"]),
                envelope(2, &["x@example.com"]),
                envelope(3, &["c@example.com"]),
            ],
            steps,
        );
        assert_eq!(run.kinds(1), vec![OutcomeKind::Delivered]);
        assert_eq!(run.kinds(2), vec![OutcomeKind::Permanent]);
        assert_eq!(
            run.outcome(2).recipients[0]
                .outcome
                .reply
                .as_ref()
                .map(|r| r.code),
            Some(550)
        );
        assert_eq!(run.kinds(3), vec![OutcomeKind::Delivered]);
    }
}

#[test]
fn next_mail_refused_after_a_delivered_dot() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&["b@example.com"]))),
        server("250 one\r\n451 4.3.2 sender busy\r\n503 no\r\n503 no\r\n"),
        client("RSET\r\n"),
        server("250 ok\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    assert_eq!(run.kinds(1), vec![OutcomeKind::Delivered]);
    assert_eq!(run.kinds(2), vec![OutcomeKind::Transient]);
    assert_eq!(
        run.outcome(2).outcome.reply.as_ref().map(|r| r.code),
        Some(451)
    );
}

#[test]
fn connection_lost_after_the_dot_with_the_next_mail_pipelined() {
    // (how the connection is lost, how much of the reply arrived first,
    //  the first message, the second, the third which was only queued)
    let cases = [
        (
            Step::Hangup,
            "",
            OutcomeKind::Unknown,
            Cause::ConnectionLost,
        ),
        (Step::Timeout, "", OutcomeKind::Unknown, Cause::Timeout),
        // The dot's reply arrived: the message is settled by it.
        (
            Step::Hangup,
            "250 one\r\n",
            OutcomeKind::Delivered,
            Cause::ConnectionLost,
        ),
        (
            Step::Timeout,
            "250 one\r\n250 ok\r\n",
            OutcomeKind::Delivered,
            Cause::Timeout,
        ),
    ];
    for (loss, partial, first, cause) in cases {
        let name = format!("{partial:?} then {}", matches!(loss, Step::Hangup));
        let mut steps = hello(&["PIPELINING"]);
        steps.extend([
            client(&mail_rcpt_data(&["a@example.com"])),
            server("250 ok\r\n250 ok\r\n354 go\r\n"),
            client(&dot_then(&mail_rcpt_data(&["b@example.com"]))),
        ]);
        if !partial.is_empty() {
            steps.push(server(partial));
        }
        steps.push(loss);
        let run = run(
            implicit(),
            vec![
                envelope(1, &["a@example.com"]),
                envelope(2, &["b@example.com"]),
                envelope(3, &["c@example.com"]),
            ],
            steps,
        );
        assert_eq!(run.kinds(1), vec![first], "{name}");
        // Its MAIL was sent, none of its data: retrying cannot duplicate.
        assert_eq!(run.kinds(2), vec![OutcomeKind::Transient], "{name}");
        assert_eq!(run.outcome(2).outcome.cause, cause, "{name}");
        assert_eq!(run.kinds(3), vec![OutcomeKind::Transient], "{name}");
        assert_eq!(run.closed_failure().map(|f| &f.cause), Some(&cause));
    }
}

#[test]
fn service_closing_421_to_the_dot_with_the_next_mail_pipelined() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&["b@example.com"]))),
        server("421 4.3.2 shutting down\r\n"),
    ]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    // A 421 to the dot is a definite "not delivered".
    assert_eq!(run.kinds(1), vec![OutcomeKind::Transient]);
    assert_eq!(run.kinds(2), vec![OutcomeKind::Transient]);
}

#[test]
fn quit_pipelined_after_the_last_dot() {
    // The server answers the dot and closes without waiting to answer
    // QUIT: the message is delivered and the close is clean.
    let mut hangup = hello(&["PIPELINING"]);
    hangup.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 queued\r\n"),
        Step::Hangup,
    ]);
    let mut polite = hello(&["PIPELINING"]);
    polite.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 queued\r\n221 bye\r\n"),
    ]);
    for steps in [hangup, polite] {
        let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
        assert_eq!(run.kinds(1), vec![OutcomeKind::Delivered]);
        assert_eq!(run.closed_failure(), None);
    }
}

#[test]
fn envelopes_refused_locally_are_settled_before_the_next_is_pipelined() {
    let mut steps = hello(&["PIPELINING", "SIZE 30"]);
    steps.extend([
        client("MAIL FROM:<from@example.com> SIZE=21\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        // Envelope 2 is too big and envelope 3 needs SMTPUTF8: neither is
        // written; envelope 4 follows the dot.
        client(&dot_then(
            "MAIL FROM:<from@example.com> SIZE=21\r\nRCPT TO:<d@example.com>\r\nDATA\r\n",
        )),
        server("250 one\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 four\r\n221 bye\r\n"),
    ]);
    let mut big = envelope(2, &["b@example.com"]);
    std::rc::Rc::make_mut(&mut big.data).extend_from_slice(b"0123456789\r\n");
    let unicode = envelope(3, &["ü@example.com"]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            big,
            unicode,
            envelope(4, &["d@example.com"]),
        ],
        steps,
    );
    assert_eq!(
        run.outcome(2).outcome.cause,
        Cause::SizeExceeded {
            size: 33,
            limit: 30
        }
    );
    assert_eq!(run.outcome(3).outcome.cause, Cause::Smtputf8NotOffered);
    for id in [1, 4] {
        assert!(run.outcome(id).outcome.is_delivered(), "{id}");
    }
}

#[test]
fn envelope_handed_over_while_a_lone_dot_is_unanswered_follows_its_reply() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        // Nothing queued and no QUIT asked for yet: the dot goes alone.
        client(&dot_then("")),
        Step::Send(envelope(2, &["b@example.com"])),
        client(""),
        server("250 one\r\n"),
        client(&mail_rcpt_data(&["b@example.com"])),
        Step::Finish,
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("250 two\r\n221 bye\r\n"),
    ]);
    let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
    assert!(run.outcome(1).outcome.is_delivered());
    assert!(run.outcome(2).outcome.is_delivered());
}

#[test]
fn lockstep_sessions_never_pipeline_past_the_dot() {
    let mut config = implicit();
    config.use_pipelining = false;
    let mut steps = hello(&["PIPELINING", "CHUNKING"]);
    for recipient in ["a@example.com", "b@example.com"] {
        steps.extend([
            client("MAIL FROM:<from@example.com>\r\n"),
            server("250 ok\r\n"),
            client(&format!("RCPT TO:<{recipient}>\r\n")),
            server("250 ok\r\n"),
            client(&format!("BDAT 21 LAST\r\n{MESSAGE}")),
            server("250 ok\r\n"),
        ]);
    }
    steps.extend([client("QUIT\r\n"), server("221 bye\r\n")]);
    let run = run(
        config,
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
    assert!(run.outcome(2).outcome.is_delivered());
}

#[test]
fn bdat_last_is_followed_by_rset_and_the_next_envelope() {
    // (reply to the first BDAT LAST, what the first message becomes)
    let cases = [
        ("250 2.0.0 queued\r\n", OutcomeKind::Delivered),
        ("554 5.7.1 spam\r\n", OutcomeKind::Permanent),
        ("451 4.3.0 later\r\n", OutcomeKind::Transient),
    ];
    for (bdat_reply, first) in cases {
        let mut steps = hello(&["PIPELINING", "CHUNKING"]);
        steps.extend([
            // Both transactions and QUIT in one go. RFC 3030 wants RSET
            // after a refused BDAT before anything else; pipelined, it
            // costs nothing when the BDAT succeeded.
            client(&format!(
                "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\n\
                 BDAT 21 LAST\r\n{MESSAGE}RSET\r\n\
                 MAIL FROM:<from@example.com>\r\nRCPT TO:<b@example.com>\r\n\
                 BDAT 21 LAST\r\n{MESSAGE}QUIT\r\n"
            )),
            server(&format!(
                "250 ok\r\n250 ok\r\n{bdat_reply}250 reset\r\n250 ok\r\n250 ok\r\n\
                 250 second\r\n221 bye\r\n"
            )),
        ]);
        let run = run(
            implicit(),
            vec![
                envelope(1, &["a@example.com"]),
                envelope(2, &["b@example.com"]),
            ],
            steps,
        );
        assert_eq!(run.kinds(1), vec![first], "{bdat_reply:?}");
        assert_eq!(run.kinds(2), vec![OutcomeKind::Delivered], "{bdat_reply:?}");
    }
}

#[test]
fn timeout_after_bdat_last_with_the_next_envelope_pipelined() {
    let mut steps = hello(&["PIPELINING", "CHUNKING"]);
    steps.extend([
        client(&format!(
            "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\n\
             BDAT 21 LAST\r\n{MESSAGE}RSET\r\n\
             MAIL FROM:<from@example.com>\r\nRCPT TO:<b@example.com>\r\n\
             BDAT 21 LAST\r\n{MESSAGE}QUIT\r\n"
        )),
        server("250 ok\r\n250 ok\r\n"),
        Step::Timeout,
    ]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    // Both data ends are on the wire: the server may have either.
    assert_eq!(run.kinds(1), vec![OutcomeKind::Unknown]);
    assert_eq!(run.kinds(2), vec![OutcomeKind::Unknown]);
}

/// Runs `count` one-recipient messages against a server that answers every
/// command as it should, and returns the round trips after EHLO: the times
/// the client has written all it can and must wait for replies (the server
/// then answers everything written so far, in order).
fn round_trips(config: SmtpConfig, capabilities: &str, count: u64) -> usize {
    let mut session = SmtpSession::new(config, 0);
    for id in 0..count {
        session.send(envelope(id, &["a@example.com"]), 0);
    }
    session.finish(0);
    session.handle_input(b"220 hi\r\n", 1);
    let mut waits = 0;
    let mut now = 1;
    loop {
        let mut wrote = false;
        while session.poll_transmit().is_some() {
            wrote = true;
        }
        if !wrote {
            break;
        }
        now += 1;
        session.handle_written(now);
        waits += 1;
        for _ in 0..session.wire.pending_len() {
            let reply: &[u8] = match session.wire.next_expected() {
                Some(Expect::Ehlo) => capabilities.as_bytes(),
                Some(Expect::Data) => b"354 go\r\n",
                Some(Expect::Quit) => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            };
            session.handle_input(reply, now);
        }
    }
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    let ids: Vec<u64> = (0..count).collect();
    assert_one_outcome_each(&events, &ids);
    for event in &events {
        if let Event::TransactionDone(done) = event {
            assert!(done.outcome.is_delivered(), "{done:?}");
        }
    }
    assert!(session.is_closed());
    waits - 1
}

#[test]
fn round_trips_per_message_with_and_without_pipelining() {
    const PIPELINING: &str = "250-mx\r\n250 PIPELINING\r\n";
    const CHUNKING: &str = "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
    let lockstep = {
        let mut config = implicit();
        config.use_pipelining = false;
        config
    };
    let window = crate::smtp::pipeline::WINDOW as u64;
    // (config, EHLO reply, messages, round trips after EHLO, QUIT's included)
    let cases = [
        // MAIL+RCPT+DATA, then per message: data, dot, next group or QUIT.
        (implicit(), PIPELINING, 1, 2),
        (implicit(), PIPELINING, 10, 11),
        // MAIL, RCPT, DATA, data and dot, one by one; then QUIT.
        (lockstep.clone(), PIPELINING, 1, 5),
        (lockstep.clone(), PIPELINING, 10, 41),
        // Blind BDAT: every transaction and QUIT in one write, up to the
        // window; then one more round trip per window's worth.
        (implicit(), CHUNKING, 1, 1),
        (implicit(), CHUNKING, 10, 1),
        (implicit(), CHUNKING, window, 1),
        (implicit(), CHUNKING, window + 1, 2),
        (implicit(), CHUNKING, 3 * window, 3),
        // Lock-step BDAT: MAIL, RCPT, BDAT with its chunk; then QUIT.
        (lockstep, CHUNKING, 10, 31),
    ];
    for (config, capabilities, count, expected) in cases {
        assert_eq!(
            round_trips(config, capabilities, count),
            expected,
            "{capabilities:?} x{count}"
        );
    }
}

#[test]
fn reply_221_to_the_end_of_data_is_not_a_delivery() {
    // A server that answers the pipelined QUIT first (smtp-sink does when
    // its reply to the dot is delayed) and hangs up.
    let mut quit_first = hello(&["PIPELINING"]);
    quit_first.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then("QUIT\r\n")),
        server("221 Bye\r\n"),
        Step::Hangup,
    ]);
    let mut next_pipelined = hello(&["PIPELINING"]);
    next_pipelined.extend([
        client(&mail_rcpt_data(&["a@example.com"])),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&dot_then(&mail_rcpt_data(&["b@example.com"]))),
        server("221 Bye\r\n"),
    ]);
    let first = envelope(1, &["a@example.com"]);
    let second = envelope(2, &["b@example.com"]);
    for (steps, envelopes) in [
        (quit_first, vec![first.clone()]),
        (next_pipelined, vec![first, second]),
    ] {
        let count = envelopes.len();
        let run = run(implicit(), envelopes, steps);
        assert_eq!(run.kinds(1), vec![OutcomeKind::Unknown]);
        assert_eq!(run.outcome(1).outcome.cause, Cause::UnexpectedReply);
        if count == 2 {
            assert_eq!(run.kinds(2), vec![OutcomeKind::Transient]);
        }
    }
}
