//! Timeouts, hang-ups, 421, malformed replies, connect failures: every
//! envelope still gets exactly one outcome, classified by whether the end
//! of its data had been sent.

use super::*;

fn implicit() -> SmtpConfig {
    config(Security::ImplicitTls)
}

/// Pipelined transaction for a@example.com up to the end of the data,
/// with `next` (the next transaction's commands, or QUIT) pipelined behind
/// the final dot.
fn up_to_data_end_then(next: &str) -> Vec<Step> {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&format!("{MESSAGE}.\r\n{next}")),
    ]);
    steps
}

/// The only message up to its end of data, QUIT pipelined behind it.
fn up_to_data_end() -> Vec<Step> {
    up_to_data_end_then("QUIT\r\n")
}

#[test]
fn greeting_timeout_is_transient() {
    let steps = vec![Step::Timeout];
    let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
    assert_eq!(run.outcome(1).outcome.cause, Cause::Timeout);
    assert!(run.outcome(1).outcome.is_transient());
    assert_eq!(
        run.closed_failure().map(|f| &f.cause),
        Some(&Cause::Timeout)
    );
}

#[test]
fn command_timeout_fails_the_active_and_the_queued_transiently() {
    let mut steps = hello(&[]);
    steps.extend([client("MAIL FROM:<from@example.com>\r\n"), Step::Timeout]);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    for id in [1, 2] {
        assert_eq!(run.kinds(id), vec![OutcomeKind::Transient]);
        assert_eq!(run.outcome(id).outcome.cause, Cause::Timeout);
    }
}

#[test]
fn timeout_after_the_final_dot_is_unknown() {
    let mut steps =
        up_to_data_end_then("MAIL FROM:<from@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    steps.push(Step::Timeout);
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    let outcome = &run.outcome(1).outcome;
    assert!(outcome.is_unknown() && !outcome.is_transient() && !outcome.is_permanent());
    assert_eq!(outcome.cause, Cause::Timeout);
    // The next envelope's MAIL was sent but none of its data: plainly
    // transient.
    assert!(run.outcome(2).outcome.is_transient());
}

#[test]
fn timeout_after_bdat_last_is_unknown() {
    let mut steps = hello(&["PIPELINING", "CHUNKING"]);
    steps.extend([
        client(&format!(
            "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\n\
             BDAT 21 LAST\r\n{MESSAGE}QUIT\r\n"
        )),
        server("250 ok\r\n250 ok\r\n"),
        Step::Timeout,
    ]);
    let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
    assert!(run.outcome(1).outcome.is_unknown());
}

#[test]
fn hangup_before_data_is_transient() {
    let mut steps = hello(&[]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        Step::Hangup,
    ]);
    let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
    assert_eq!(run.outcome(1).outcome.cause, Cause::ConnectionLost);
    assert!(run.outcome(1).outcome.is_transient());
}

#[test]
fn hangup_after_the_final_dot_is_unknown_but_rejected_recipients_keep_their_reply() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n"),
        // QUIT pipelined behind the dot does not make the hang-up clean.
        client(&format!("{MESSAGE}.\r\nQUIT\r\n")),
        Step::Hangup,
    ]);
    let run = run(
        implicit(),
        vec![envelope(1, &["a@example.com", "x@example.com"])],
        steps,
    );
    assert_eq!(
        run.kinds(1),
        vec![OutcomeKind::Unknown, OutcomeKind::Permanent]
    );
    assert!(run.outcome(1).outcome.is_unknown());
}

#[test]
fn service_closing_421_mid_session() {
    let mut steps = hello(&[]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
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
    for id in [1, 2] {
        let outcome = &run.outcome(id).outcome;
        assert!(outcome.is_transient());
        assert_eq!(outcome.reply.as_ref().map(|r| r.code), Some(421));
    }
    assert!(run.closed);
}

#[test]
fn service_closing_421_as_the_data_end_reply_is_transient_not_unknown() {
    let mut steps = up_to_data_end();
    steps.push(server("421 4.4.2 timeout\r\n"));
    let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
    assert!(run.outcome(1).outcome.is_transient());
}

#[test]
fn malformed_replies_are_protocol_errors() {
    let long_line = format!("250 {}\r\n", "x".repeat(5_000));
    let cases: Vec<(&str, String, ReplyError)> = vec![
        ("garbage", "abc\r\n".into(), ReplyError::MalformedLine),
        ("code 999", "999 what\r\n".into(), ReplyError::InvalidCode),
        ("over-long line", long_line, ReplyError::LineTooLong),
        (
            "mixed codes",
            "250-a\r\n550 b\r\n".into(),
            ReplyError::InconsistentCode,
        ),
    ];
    for (name, bad, error) in cases {
        // At the greeting, before any envelope was attempted.
        let steps = vec![Step::Server(bad.clone().into_bytes())];
        let at_greeting = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
        assert_eq!(
            at_greeting.outcome(1).outcome.cause,
            Cause::Protocol(error),
            "{name}"
        );
        assert!(at_greeting.outcome(1).outcome.is_transient(), "{name}");

        // As the reply to the end of data: delivery unknown.
        let mut steps = up_to_data_end();
        steps.push(Step::Server(bad.into_bytes()));
        let at_data_end = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
        assert!(at_data_end.outcome(1).outcome.is_unknown(), "{name}");
        assert!(at_data_end.closed, "{name}");
    }
}

#[test]
fn unexpected_reply_to_data_ends_the_session() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n250 sure\r\n"),
    ]);
    let run = run(implicit(), vec![envelope(1, &["a@example.com"])], steps);
    assert_eq!(run.outcome(1).outcome.cause, Cause::UnexpectedReply);
    assert!(run.outcome(1).outcome.is_transient());
}

#[test]
fn unsolicited_reply_while_idle_closes_the_session() {
    let mut steps = hello(&[]);
    steps.extend([client(""), server("421 idle timeout\r\n")]);
    steps.push(Step::Send(envelope(5, &["a@example.com"])));
    steps.push(Step::Finish);
    let run = run(implicit(), vec![], steps);
    assert!(run.outcome(5).outcome.is_transient());
    assert!(run.closed);
}

#[test]
fn connect_failure_fails_every_queued_envelope_transiently() {
    let mut session = SmtpSession::new(implicit(), 0);
    session.send(envelope(1, &["a@example.com"]), 0);
    session.send(envelope(2, &["b@example.com", "c@example.com"]), 0);
    session.finish(0);
    session.connect_failed("connection refused", 5);
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    assert_one_outcome_each(&events, &[1, 2]);
    assert!(session.is_closed());
    assert_eq!(session.poll_transmit(), None);
    assert_eq!(session.poll_timeout(), None);
    for event in &events {
        if let Event::TransactionDone(done) = event {
            assert!(done.outcome.is_transient());
            assert!(matches!(done.outcome.cause, Cause::ConnectFailed(_)));
        }
    }
}

#[test]
fn hangup_or_timeout_after_quit_is_a_clean_close() {
    let mut steps = hello(&[]);
    steps.extend([client("QUIT\r\n"), Step::Hangup]);
    let run_hangup = run(implicit(), vec![], steps);
    assert_eq!(run_hangup.closed_failure(), None);

    let mut steps = hello(&[]);
    steps.extend([client("QUIT\r\n"), Step::Timeout]);
    let run_timeout = run(implicit(), vec![], steps);
    assert_eq!(run_timeout.closed_failure(), None);
}

#[test]
fn input_after_close_is_ignored() {
    let mut session = SmtpSession::new(implicit(), 0);
    session.handle_closed(1);
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    assert_eq!(events.len(), 1);
    session.handle_input(b"220 late\r\n", 2);
    session.handle_timeout(u64::MAX);
    session.handle_closed(3);
    assert_eq!(session.poll_event(), None);
    assert_eq!(session.poll_transmit(), None);
}

#[test]
fn hangup_right_after_a_refusal_is_the_refusal_not_the_server() {
    // (reply to the dot, cause the session ends with when the server then
    // hangs up with the next message's commands unanswered)
    let table = [
        ("554 5.7.1 rejected as spam\r\n", Cause::DroppedAfterRefusal),
        ("250 2.0.0 queued\r\n", Cause::ConnectionLost),
        ("451 4.7.1 try later\r\n", Cause::ConnectionLost),
    ];
    for (dot_reply, cause) in table {
        let mut steps = up_to_data_end_then(
            "MAIL FROM:<from@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        );
        steps.extend([server(dot_reply), Step::Hangup]);
        let run = run(
            implicit(),
            vec![
                envelope(1, &["a@example.com"]),
                envelope(2, &["b@example.com"]),
            ],
            steps,
        );
        assert_eq!(
            run.closed_failure().map(|f| &f.cause),
            Some(&cause),
            "{dot_reply}"
        );
        // The next message was not sent: retryable either way.
        assert!(run.outcome(2).outcome.is_transient(), "{dot_reply}");
    }
}
