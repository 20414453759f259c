//! MAIL/RCPT/DATA/BDAT, pipelining, extensions and per-recipient results.

use super::*;

fn quit() -> [Step; 2] {
    [client("QUIT\r\n"), server("221 bye\r\n")]
}

fn data_and_dot() -> String {
    format!("{MESSAGE}.\r\n")
}

/// The message and its final dot with `next` pipelined behind them in the
/// same write (RFC 2920 §3.1).
fn data_dot_then(next: &str) -> String {
    format!("{MESSAGE}.\r\n{next}")
}

/// The last message's data with QUIT behind it, and the server's replies
/// to both: `dot_reply` for the message, then 221.
fn last_data_then_quit(dot_reply: &str) -> [Step; 2] {
    [
        client(&data_dot_then("QUIT\r\n")),
        server(&format!("{dot_reply}221 bye\r\n")),
    ]
}

fn implicit() -> SmtpConfig {
    config(Security::ImplicitTls)
}

#[test]
fn pipelined_mail_rcpt_and_data_go_in_one_write() {
    let mut steps = hello(&["PIPELINING", "SIZE 1000"]);
    steps.extend([
        client(
            "MAIL FROM:<from@example.com> SIZE=21\r\n\
             RCPT TO:<a@example.com>\r\n\
             RCPT TO:<b@example.com>\r\n\
             DATA\r\n",
        ),
        server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 2.0.0 queued\r\n"));
    let run = run(
        implicit(),
        vec![envelope(7, &["a@example.com", "b@example.com"])],
        steps,
    );
    let done = run.outcome(7);
    assert!(done.outcome.is_delivered());
    assert_eq!(
        done.delivered().collect::<Vec<_>>(),
        ["a@example.com", "b@example.com"]
    );
    assert_eq!(
        done.outcome.reply.as_ref().map(|r| r.text()),
        Some("queued".to_string())
    );
}

#[test]
fn pipelined_group_is_a_single_transmit() {
    let mut session = SmtpSession::new(implicit(), 0);
    session.send(envelope(1, &["a@example.com", "b@example.com"]), 0);
    session.handle_input(b"220 hi\r\n", 1);
    assert!(session.poll_transmit().is_some());
    session.handle_input(b"250-mx\r\n250 PIPELINING\r\n", 2);
    let write = session.poll_transmit().unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&write),
        "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    );
    assert_eq!(session.poll_transmit(), None);
}

#[test]
fn lockstep_when_pipelining_is_not_offered() {
    let mut steps = hello(&["8BITMIME"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<b@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&data_and_dot()),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(
        implicit(),
        vec![envelope(1, &["a@example.com", "b@example.com"])],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn lockstep_can_be_forced_by_configuration() {
    let mut config = implicit();
    config.use_pipelining = false;
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&data_and_dot()),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(config, vec![envelope(1, &["a@example.com"])], steps);
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn bdat_when_chunking_is_offered() {
    let mut steps = hello(&["PIPELINING", "CHUNKING"]);
    steps.extend([
        // Pipelined, the whole transaction goes out at once; no
        // dot-stuffing and no terminator with BDAT.
        client(
            "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\n\
             BDAT 23 LAST\r\n.hi\r\n..\r\nbare lf\r\nend\r\nQUIT\r\n",
        ),
        server("250 ok\r\n250 ok\r\n250 2.0.0 ok\r\n221 bye\r\n"),
    ]);
    let mut message = envelope(1, &["a@example.com"]);
    message.data = std::rc::Rc::new(b".hi\r\n..\nbare lf\r\nend".to_vec());
    let run = run(implicit(), vec![message], steps);
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn chunking_can_be_disabled_by_configuration() {
    let mut config = implicit();
    config.use_chunking = false;
    let mut steps = hello(&["PIPELINING", "CHUNKING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 ok\r\n"));
    let run = run(config, vec![envelope(1, &["a@example.com"])], steps);
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn message_over_the_size_limit_is_refused_without_upload() {
    let mut steps = hello(&["SIZE 21"]);
    // The second, small enough envelope still goes, with its SIZE.
    steps.extend([
        client("MAIL FROM:<from@example.com> SIZE=3\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client("x\r\n.\r\n"),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let mut big = envelope(1, &["a@example.com"]);
    std::rc::Rc::make_mut(&mut big.data).extend_from_slice(b"more\r\n");
    let mut small = envelope(2, &["a@example.com"]);
    small.data = std::rc::Rc::new(b"x".to_vec());
    let run = run(implicit(), vec![big, small], steps);
    let refused = &run.outcome(1).outcome;
    assert!(refused.is_permanent());
    assert_eq!(
        refused.cause,
        Cause::SizeExceeded {
            size: 27,
            limit: 21
        }
    );
    assert!(run.outcome(2).outcome.is_delivered());
}

#[test]
fn smtputf8_needed_but_not_offered_is_permanent_without_sending() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend(quit());
    let mut flagged = envelope(1, &["a@example.com"]);
    flagged.needs_smtputf8 = true;
    let unicode_address = envelope(2, &["ü@example.com"]);
    let run = run(implicit(), vec![flagged, unicode_address], steps);
    for id in [1, 2] {
        let outcome = &run.outcome(id).outcome;
        assert!(outcome.is_permanent());
        assert_eq!(outcome.cause, Cause::Smtputf8NotOffered);
    }
}

#[test]
fn smtputf8_and_8bitmime_parameters_when_offered() {
    let mut steps = hello(&["PIPELINING", "SMTPUTF8", "8BITMIME"]);
    steps.extend([
        client("MAIL FROM:<from@example.com> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<ü@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 ok\r\n"));
    let mut message = envelope(1, &["ü@example.com"]);
    message.has_8bit = true;
    let run = run(implicit(), vec![message], steps);
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn eight_bit_content_without_8bitmime_is_permanent() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend(quit());
    let mut message = envelope(1, &["a@example.com"]);
    message.has_8bit = true;
    let run = run(implicit(), vec![message], steps);
    assert_eq!(run.outcome(1).outcome.cause, Cause::EightBitMimeNotOffered);
    assert!(run.outcome(1).outcome.is_permanent());
}

#[test]
fn mixed_recipient_replies_send_data_for_the_accepted_only() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(
            "MAIL FROM:<from@example.com>\r\n\
             RCPT TO:<ok@example.com>\r\n\
             RCPT TO:<later@example.com>\r\n\
             RCPT TO:<never@example.com>\r\n\
             DATA\r\n",
        ),
        server(
            "250 ok\r\n250 ok\r\n450 4.2.1 mailbox busy\r\n550 5.1.1 no such user\r\n354 go\r\n",
        ),
    ]);
    steps.extend(last_data_then_quit("250 2.0.0 queued\r\n"));
    let run = run(
        implicit(),
        vec![envelope(
            1,
            &["ok@example.com", "later@example.com", "never@example.com"],
        )],
        steps,
    );
    let done = run.outcome(1);
    assert_eq!(
        run.kinds(1),
        vec![
            OutcomeKind::Delivered,
            OutcomeKind::Transient,
            OutcomeKind::Permanent
        ]
    );
    let never = &done.recipients[2].outcome;
    assert_eq!(never.reply.as_ref().map(|r| r.code), Some(550));
    assert_eq!(
        never
            .reply
            .as_ref()
            .and_then(|r| r.enhanced)
            .map(|e| e.to_string()),
        Some("5.1.1".into())
    );
    // Summary: the most pressing failure, not "delivered".
    assert!(done.outcome.is_transient());
    // Only the recipient the data goes to was announced in flight, before
    // the final dot (the runner checks the order).
    assert_eq!(
        run.in_flight,
        [InFlight {
            id: 1,
            recipients: vec!["ok@example.com".into()]
        }]
    );
}

#[test]
fn all_recipients_rejected_sends_no_data_and_rsets_before_the_next_message() {
    let mut steps = hello(&[]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<x@example.com>\r\n"),
        server("550 5.1.1 unknown\r\n"),
        client("RCPT TO:<y@example.com>\r\n"),
        server("551 not local\r\n"),
        client("RSET\r\n"),
        server("250 ok\r\n"),
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&data_and_dot()),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(
        implicit(),
        vec![
            envelope(1, &["x@example.com", "y@example.com"]),
            envelope(2, &["a@example.com"]),
        ],
        steps,
    );
    assert_eq!(
        run.kinds(1),
        vec![OutcomeKind::Permanent, OutcomeKind::Permanent]
    );
    assert!(run.outcome(2).outcome.is_delivered());
}

#[test]
fn all_recipients_rejected_when_pipelined_data_is_refused_then_rset() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n550 unknown\r\n554 5.5.1 no valid recipients\r\n"),
        client("RSET\r\n"),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(implicit(), vec![envelope(1, &["x@example.com"])], steps);
    assert_eq!(run.kinds(1), vec![OutcomeKind::Permanent]);
    assert_eq!(
        run.outcome(1).recipients[0]
            .outcome
            .reply
            .as_ref()
            .map(|r| r.code),
        Some(550)
    );
}

#[test]
fn pipelined_data_accepted_with_no_recipients_sends_only_the_terminator() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n550 unknown\r\n354 go\r\n"),
        client(".\r\n"),
        server("554 no valid recipients\r\n"),
    ]);
    steps.extend(quit());
    let run = run(implicit(), vec![envelope(1, &["x@example.com"])], steps);
    assert_eq!(run.kinds(1), vec![OutcomeKind::Permanent]);
}

#[test]
fn mail_from_rejected_settles_every_recipient_and_rsets() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"),
        server("553 5.7.1 sender not allowed\r\n503 no\r\n503 no\r\n503 no\r\n"),
        client("RSET\r\n"),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(
        implicit(),
        vec![envelope(1, &["a@example.com", "b@example.com"])],
        steps,
    );
    for recipient in &run.outcome(1).recipients {
        assert_eq!(recipient.outcome.reply.as_ref().map(|r| r.code), Some(553));
    }
}

#[test]
fn too_many_recipients_continue_in_a_new_transaction() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client(
            "MAIL FROM:<from@example.com>\r\n\
             RCPT TO:<a@example.com>\r\n\
             RCPT TO:<b@example.com>\r\n\
             RCPT TO:<c@example.com>\r\n\
             DATA\r\n",
        ),
        server("250 ok\r\n250 ok\r\n452 4.5.3 too many recipients\r\n452 4.5.3 too many recipients\r\n354 go\r\n"),
        // The continuation waits for the first part's result: nothing is
        // pipelined behind this dot.
        client(&data_and_dot()),
        server("250 first\r\n"),
        // A completed transaction needs no RSET.
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 second\r\n"));
    let run = run(
        implicit(),
        vec![envelope(
            1,
            &["a@example.com", "b@example.com", "c@example.com"],
        )],
        steps,
    );
    let done = run.outcome(1);
    assert!(done.outcome.is_delivered());
    let texts: Vec<String> = done
        .recipients
        .iter()
        .map(|r| {
            r.outcome
                .reply
                .as_ref()
                .map(|r| r.text())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(texts, ["first", "second", "second"]);
}

#[test]
fn too_many_recipients_in_lockstep_stops_sending_rcpt() {
    let mut steps = hello(&[]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<b@example.com>\r\n"),
        server("452 too many recipients\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&data_and_dot()),
        server("250 ok\r\n"),
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<b@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<c@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&data_and_dot()),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(
        implicit(),
        vec![envelope(
            1,
            &["a@example.com", "b@example.com", "c@example.com"],
        )],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn too_many_recipients_without_progress_are_handed_back_for_retry() {
    let mut steps = hello(&[]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com>\r\n"),
        server("452 4.5.3 too many recipients\r\n"),
        client("RSET\r\n"),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(
        implicit(),
        vec![envelope(1, &["a@example.com", "b@example.com"])],
        steps,
    );
    for recipient in &run.outcome(1).recipients {
        assert!(recipient.outcome.is_transient());
        assert_eq!(recipient.outcome.cause, Cause::TooManyRecipients);
    }
}

#[test]
fn two_messages_on_one_connection_without_rset() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client(&data_dot_then(
            "MAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        )),
        server("250 one\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 two\r\n"));
    let mut bounce = envelope(2, &["b@example.com"]);
    bounce.mail_from = String::new();
    let run = run(
        implicit(),
        vec![envelope(1, &["a@example.com"]), bounce],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
    assert!(run.outcome(2).outcome.is_delivered());
}

#[test]
fn data_end_rejection_is_per_message_and_the_session_goes_on() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        // The refused dot ended its transaction: the next MAIL behind it
        // needs no RSET.
        client(&data_dot_then(
            "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n",
        )),
        server("554 5.7.1 spam\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("451 4.3.0 try later\r\n"));
    let run = run(
        implicit(),
        vec![
            envelope(1, &["a@example.com"]),
            envelope(2, &["a@example.com"]),
        ],
        steps,
    );
    assert!(run.outcome(1).outcome.is_permanent());
    assert!(run.outcome(2).outcome.is_transient());
}

#[test]
fn injection_attempts_in_addresses_never_reach_the_wire() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<ok@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 ok\r\n"));
    let mut evil_sender = envelope(1, &["a@example.com"]);
    evil_sender.mail_from = "x@example.com>\r\nRCPT TO:<victim@example.com".into();
    let mixed = envelope(
        2,
        &[
            "evil@example.com>\r\nDATA",
            "ok@example.com",
            "sp ace@example.com",
            "",
        ],
    );
    let run = run(implicit(), vec![evil_sender, mixed], steps);
    assert!(run.outcome(1).outcome.is_permanent());
    assert!(matches!(
        run.outcome(1).outcome.cause,
        Cause::InvalidAddress(_)
    ));
    assert_eq!(
        run.kinds(2),
        vec![
            OutcomeKind::Permanent,
            OutcomeKind::Delivered,
            OutcomeKind::Permanent,
            OutcomeKind::Permanent
        ]
    );
}

#[test]
fn envelope_without_recipients_is_permanent() {
    let mut steps = hello(&[]);
    steps.extend(quit());
    let run = run(implicit(), vec![envelope(1, &[])], steps);
    assert_eq!(run.outcome(1).outcome.cause, Cause::NoRecipients);
}

#[test]
fn body_is_dot_stuffed_on_the_wire() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
        client("..first\r\nx\r\n..\r\nQUIT\r\n..\r\n.\r\nQUIT\r\n"),
        server("250 ok\r\n221 bye\r\n"),
    ]);
    let mut message = envelope(1, &["a@example.com"]);
    message.data = std::rc::Rc::new(b".first\nx\r\n.\r\nQUIT\r.".to_vec());
    let run = run(implicit(), vec![message], steps);
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn envelopes_sent_while_idle_start_at_once() {
    let mut steps = hello(&["PIPELINING"]);
    steps.push(client(""));
    steps.push(Step::Send(envelope(9, &["a@example.com"])));
    steps.push(Step::Finish);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 ok\r\n"));
    let run = run(implicit(), vec![], steps);
    assert!(run.outcome(9).outcome.is_delivered());
}

#[test]
fn envelope_sent_after_the_session_ended_gets_an_outcome_at_once() {
    let mut session = SmtpSession::new(implicit(), 0);
    session.connect_failed("refused", 0);
    session.send(envelope(3, &["a@example.com"]), 1);
    let mut outcomes = Vec::new();
    while let Some(event) = session.poll_event() {
        if let Event::TransactionDone(outcome) = event {
            outcomes.push(outcome);
        }
    }
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].outcome.is_transient());
}

/// A large message goes out in chunks of bounded size, encoded from the
/// caller's buffer as the socket takes it: the session never holds a second
/// copy, and the chunks add up to exactly the DATA encoding.
#[test]
fn a_large_message_is_written_in_bounded_chunks_from_the_shared_buffer() {
    use crate::smtp::transparency::encode_for_data;
    let line = b"0123456789 .abcdefghijklmnopqrstuvwxyz\n.leading dot\r\n";
    let body: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(3 * 1024 * 1024 + 7)
        .collect();
    let shared = std::rc::Rc::new(body);
    let message = Envelope::shared(
        1,
        "from@example.com",
        vec!["a@example.com".into()],
        shared.clone(),
    );
    let mut session = SmtpSession::new(implicit(), 0);
    session.send(message, 0);
    session.finish(0);
    let feed = |session: &mut SmtpSession, reply: &str| {
        session.handle_input(reply.as_bytes(), 0);
    };
    assert_eq!(session.poll_transmit(), None);
    feed(&mut session, "220 mx.example ESMTP\r\n");
    assert_eq!(
        session.poll_transmit().as_deref(),
        Some(&b"EHLO client.example\r\n"[..])
    );
    feed(&mut session, "250-mx.example\r\n250 PIPELINING\r\n");
    let commands = session.poll_transmit().unwrap_or_default();
    assert!(commands.ends_with(b"DATA\r\n"), "{commands:?}");
    feed(&mut session, "250 ok\r\n250 ok\r\n354 go\r\n");
    // Shared, not copied: the session holds the caller's buffer itself.
    assert!(std::rc::Rc::strong_count(&shared) >= 2);
    let mut written = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = session.poll_transmit() {
        assert!(chunk.len() <= MAX_TRANSMIT + 6, "{}", chunk.len());
        written.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks > 3 * 1024 * 1024 / MAX_TRANSMIT, "{chunks} chunks");
    // Pipelined, QUIT follows the terminator in the last chunk.
    let mut want = encode_for_data(&shared);
    want.extend_from_slice(b"QUIT\r\n");
    assert!(written == want, "the chunks differ from the whole encoding");
}

fn with_dsn(mut envelope: Envelope) -> Envelope {
    envelope.dsn = Some(DsnRequest {
        envid: "msg+1".into(),
        notify: Notify {
            success: false,
            failure: true,
            delay: true,
        },
        headers_only: true,
    });
    envelope
}

/// A signed envelope id as accept issues them (`<message id>.<tag>`).
const SIGNED_ENVID: &str = "4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef";
/// A VERP return path as accept writes them.
const VERP: &str = "b+j46jucyndixt6qcrmjzyjfngw7ea7777xkbtjz3wbq5ko@rp.example.com";

#[test]
fn proof_of_delivery_and_a_return_path_go_on_the_wire_as_asked() {
    // (envelope id, success asked) -> MAIL FROM and RCPT lines.
    let table: &[(&str, bool, &str, &str)] = &[
        (
            SIGNED_ENVID,
            true,
            "RET=HDRS ENVID=4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef",
            "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a@example.net",
        ),
        (
            SIGNED_ENVID,
            false,
            "RET=HDRS ENVID=4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef",
            "NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@example.net",
        ),
        // No signed envelope id: no ENVID, the rest as asked.
        (
            "",
            true,
            "RET=HDRS",
            "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a@example.net",
        ),
    ];
    for (envid, success, mail, rcpt) in table {
        let mut steps = hello(&["DSN"]);
        steps.extend([
            client(&format!("MAIL FROM:<{VERP}> {mail}\r\n")),
            server("250 ok\r\n"),
            client(&format!("RCPT TO:<a@example.net> {rcpt}\r\n")),
            server("250 ok\r\n"),
            client("DATA\r\n"),
            server("354 go\r\n"),
            client(&data_and_dot()),
            server("250 ok\r\n"),
        ]);
        steps.extend(quit());
        let mut e = Envelope::new(6, VERP, vec!["a@example.net".to_string()], MESSAGE);
        e.dsn = Some(DsnRequest {
            envid: envid.to_string(),
            notify: Notify {
                success: *success,
                failure: true,
                delay: true,
            },
            headers_only: true,
        });
        let run = run(implicit(), vec![e], steps);
        assert!(run.outcome(6).outcome.is_delivered(), "{envid:?} {success}");
    }
}

#[test]
fn dsn_parameters_go_to_a_server_that_offers_dsn() {
    let mut steps = hello(&["PIPELINING", "DSN"]);
    steps.extend([
        client(
            "MAIL FROM:<from@example.com> RET=HDRS ENVID=msg+2B1\r\n\
             RCPT TO:<a@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@example.com\r\n\
             RCPT TO:<b+x@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.com\r\n\
             DATA\r\n",
        ),
        server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 2.0.0 queued\r\n"));
    let envelope = with_dsn(envelope(3, &["a@example.com", "b+x@example.com"]));
    let run = run(implicit(), vec![envelope], steps);
    assert!(run.outcome(3).outcome.is_delivered());
}

#[test]
fn dsn_parameters_follow_each_rcpt_in_lockstep() {
    let mut steps = hello(&["DSN"]);
    steps.extend([
        client("MAIL FROM:<from@example.com> RET=HDRS ENVID=msg+2B1\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<a@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@example.com\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&data_and_dot()),
        server("250 ok\r\n"),
    ]);
    steps.extend(quit());
    let run = run(
        implicit(),
        vec![with_dsn(envelope(4, &["a@example.com"]))],
        steps,
    );
    assert!(run.outcome(4).outcome.is_delivered());
}

#[test]
fn no_dsn_parameter_goes_to_a_server_without_dsn() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([
        client("MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"),
        server("250 ok\r\n250 ok\r\n354 go\r\n"),
    ]);
    steps.extend(last_data_then_quit("250 2.0.0 queued\r\n"));
    let run = run(
        implicit(),
        vec![with_dsn(envelope(5, &["a@example.com"]))],
        steps,
    );
    assert!(run.outcome(5).outcome.is_delivered());
}
