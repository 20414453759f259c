//! Writes as the driver sees them: output in bounded pieces, the end of a
//! message's data in a piece of its own, and what a write that fails or
//! stalls at each point means for the message. Only once the bytes ending
//! the data are handed out may the server have the message (`Unknown`);
//! before that, a failure is plainly retryable.

use super::*;
use crate::smtp::wire::Expect;

fn implicit(pipelining: bool) -> SmtpConfig {
    let mut config = config(Security::ImplicitTls);
    config.use_pipelining = pipelining;
    config
}

/// Answers every command written so far the way a willing server would;
/// a message's data is answered only once its end has been handed out.
fn answer_all(session: &mut SmtpSession, capabilities: &str, now: u64) {
    for _ in 0..session.wire.pending_len() {
        let next = session.wire.next_expected();
        if matches!(next, Some(Expect::DataEnd | Expect::BdatLast))
            && session.data_end_next().is_some()
        {
            return;
        }
        let reply: &[u8] = match next {
            Some(Expect::Ehlo) => capabilities.as_bytes(),
            Some(Expect::Data) => b"354 go\r\n",
            Some(Expect::Quit) => b"221 bye\r\n",
            _ => b"250 ok\r\n",
        };
        session.handle_input(reply, now);
    }
}

/// A one-message session (content `data`) run against a willing server
/// until the first piece of the message's content has been taken; returns
/// the session and that piece.
fn up_to_content(config: SmtpConfig, capabilities: &str, data: &[u8]) -> (SmtpSession, Vec<u8>) {
    let mut session = SmtpSession::new(config, 0);
    session.send(
        Envelope::new(1, "from@example.com", vec!["a@example.com".into()], data),
        0,
    );
    session.finish(0);
    session.handle_input(b"220 hi\r\n", 1);
    for now in 2..20 {
        let piece = session.poll_transmit().expect("the session has output");
        let bdat = piece.windows(4).any(|w| w == b"BDAT");
        if piece.starts_with(b"Subject") || bdat {
            return (session, piece);
        }
        session.handle_written(now);
        answer_all(&mut session, capabilities, now);
    }
    panic!("the content never came");
}

const PIPELINING: &str = "250-mx\r\n250 PIPELINING\r\n";
const CHUNKING: &str = "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n";

/// Where the write trouble happens, and how.
#[derive(Clone, Copy, Debug)]
enum Trouble {
    /// The write of the content fails (connection reset).
    ContentWriteFails,
    /// The write of the content stalls past the write deadline.
    ContentWriteStalls,
    /// The content is written; the write of the data end fails.
    DataEndWriteFails,
    /// The content is written; the write of the data end stalls.
    DataEndWriteStalls,
    /// Everything is written; the reply to the data end never comes.
    ReplyTimesOut,
}

#[test]
fn write_trouble_before_the_data_end_is_retryable_after_it_unknown() {
    let sessions = [
        ("DATA, pipelined", implicit(true), PIPELINING),
        ("DATA, lock-step", implicit(false), PIPELINING),
        ("BDAT", implicit(true), CHUNKING),
    ];
    let table = [
        (
            Trouble::ContentWriteFails,
            OutcomeKind::Transient,
            Cause::ConnectionLost,
        ),
        (
            Trouble::ContentWriteStalls,
            OutcomeKind::Transient,
            Cause::WriteTimeout,
        ),
        (
            Trouble::DataEndWriteFails,
            OutcomeKind::Unknown,
            Cause::ConnectionLost,
        ),
        (
            Trouble::DataEndWriteStalls,
            OutcomeKind::Unknown,
            Cause::WriteTimeout,
        ),
        (Trouble::ReplyTimesOut, OutcomeKind::Unknown, Cause::Timeout),
    ];
    for (name, config, capabilities) in &sessions {
        for (trouble, kind, cause) in &table {
            let row = format!("{name}, {trouble:?}");
            let (mut session, _content) =
                up_to_content(config.clone(), capabilities, MESSAGE.as_bytes());
            let now = 100;
            match trouble {
                Trouble::ContentWriteFails => session.handle_closed(now),
                Trouble::ContentWriteStalls => session.handle_write_timeout(now),
                Trouble::DataEndWriteFails
                | Trouble::DataEndWriteStalls
                | Trouble::ReplyTimesOut => {
                    session.handle_written(now);
                    let end = session.poll_transmit().expect("the data end follows");
                    assert!(
                        end.starts_with(b".\r\n") || end.starts_with(b"\n"),
                        "{row}: the data end starts its own piece: {:?}",
                        String::from_utf8_lossy(&end)
                    );
                    match trouble {
                        Trouble::DataEndWriteFails => session.handle_closed(now + 1),
                        Trouble::DataEndWriteStalls => session.handle_write_timeout(now + 1),
                        _ => {
                            session.handle_written(now + 1);
                            let deadline = session.poll_timeout().expect("a reply is awaited");
                            session.handle_timeout(deadline);
                        }
                    }
                }
            }
            let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
            assert_one_outcome_each(&events, &[1]);
            let outcome = events
                .iter()
                .find_map(|e| match e {
                    Event::TransactionDone(done) => Some(done.outcome.clone()),
                    _ => None,
                })
                .expect("an outcome");
            assert_eq!((outcome.kind, &outcome.cause), (*kind, cause), "{row}");
            assert!(session.is_closed(), "{row}");
            assert_eq!(
                session.poll_transmit(),
                None,
                "{row}: nothing more to write"
            );
        }
    }
}

#[test]
fn content_goes_out_in_bounded_pieces_and_the_terminator_last_alone() {
    // Lines of 100 bytes, well over several pieces.
    let line = format!("{}\r\n", "x".repeat(98));
    let data = format!("Subject: big\r\n\r\n{}", line.repeat(8_000));
    for (name, capabilities, end) in [
        ("DATA", PIPELINING, b".\r\nQUIT\r\n".as_slice()),
        ("BDAT", CHUNKING, b"\nQUIT\r\n".as_slice()),
    ] {
        let (mut session, first) = up_to_content(implicit(true), capabilities, data.as_bytes());
        let mut pieces = vec![first];
        while let Some(piece) = session.poll_transmit() {
            pieces.push(piece);
        }
        assert!(pieces.len() > 2, "{name}: {} pieces", pieces.len());
        // A few bytes over at most: a line ending is never split.
        for piece in &pieces {
            assert!(
                piece.len() <= MAX_TRANSMIT + 6,
                "{name}: a piece of {}",
                piece.len()
            );
        }
        let (last, content) = pieces.split_last().expect("pieces");
        assert_eq!(last.as_slice(), end, "{name}: the data end and QUIT alone");
        // DATA: the content up to (not including) the terminator; BDAT
        // (pipelined, so blind): MAIL, RCPT, the command and every byte of
        // the chunk but the last.
        let expected = match name {
            "DATA" => data.clone().into_bytes(),
            _ => format!(
                "MAIL FROM:<from@example.com>\r\nRCPT TO:<a@example.com>\r\nBDAT {} LAST\r\n{}",
                data.len(),
                &data[..data.len() - 1]
            )
            .into_bytes(),
        };
        assert!(
            content.concat() == expected,
            "{name}: the content as written"
        );
    }
}

#[test]
fn the_reply_clock_starts_when_the_write_is_done() {
    let (mut session, _content) = up_to_content(implicit(false), PIPELINING, MESSAGE.as_bytes());
    session.handle_written(10);
    let _end = session.poll_transmit();
    // A slow write: the data end went out long after it was queued.
    session.handle_written(50_000);
    assert_eq!(session.poll_timeout(), Some(50_000 + 5_000));
    session.handle_timeout(54_999);
    assert!(session.poll_event().is_none(), "not due yet");
}

#[test]
fn write_timeout_comes_from_the_configuration() {
    let session = SmtpSession::new(implicit(true), 0);
    assert_eq!(session.write_timeout_ms(), 3_000);
}

#[test]
fn the_session_says_when_the_next_piece_ends_a_message() {
    for (name, config, capabilities) in [
        ("DATA, pipelined", implicit(true), PIPELINING),
        ("DATA, lock-step", implicit(false), PIPELINING),
        ("BDAT", implicit(true), CHUNKING),
    ] {
        let mut session = SmtpSession::new(config, 0);
        session.send(envelope(7, &["a@example.com"]), 0);
        session.finish(0);
        session.handle_input(b"220 hi\r\n", 1);
        let mut seen = Vec::new();
        for now in 2..20 {
            let next = session.data_end_next();
            let Some(piece) = session.poll_transmit() else {
                break;
            };
            let ends = piece.starts_with(b".\r\n") || piece.starts_with(b"\n");
            seen.push((next, ends));
            session.handle_written(now);
            answer_all(&mut session, capabilities, now);
        }
        // Exactly the piece that ends the data is announced, with its envelope.
        assert!(seen.contains(&(Some(7), true)), "{name}: {seen:?}");
        assert!(
            seen.iter().all(|&(next, ends)| next.is_some() == ends),
            "{name}: {seen:?}"
        );
        assert!(session.is_closed(), "{name}");
    }
}

#[test]
fn a_stalled_quit_is_still_a_clean_end() {
    let mut session = SmtpSession::new(implicit(true), 0);
    session.finish(0);
    session.handle_input(b"220 hi\r\n", 1);
    let _ehlo = session.poll_transmit();
    session.handle_input(b"250 mx\r\n", 2);
    assert_eq!(
        session.poll_transmit().as_deref(),
        Some(b"QUIT\r\n".as_slice())
    );
    session.handle_write_timeout(3);
    assert_eq!(session.poll_event(), Some(Event::Closed { failure: None }));
}
