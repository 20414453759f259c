//! Postfix's smtp-sink with its fault options: commands rejected with 4xx or
//! 5xx, hang-ups, 421, and delays. Each row names the fault and the outcome
//! the client must record for the message: kind, reply code and enhanced
//! code (`None` when no reply decided it), and whether smtp-sink kept it.

use edgerelay::smtp::{Cause, OutcomeKind, Security, Timeouts};

use crate::driver::run_session;
use crate::servers::SmtpSink;
use crate::{config, envelope, reply_codes};

const CONTENT: &[u8] = b"Subject: sink test\r\n\r\nHi\r\n";
const CONTENT_MARK: &[u8] = b"Subject: sink test";

struct Row {
    what: &'static str,
    options: &'static [&'static str],
    kind: OutcomeKind,
    reply: Option<(u16, &'static str)>,
    cause: Option<Cause>,
    /// Messages smtp-sink kept with their content (it opens a dump file for
    /// every transaction, so a file alone proves nothing): `None` where it
    /// may or may not (after the final dot the client cannot know either,
    /// which is the point).
    dumped: Option<usize>,
}

const fn row(
    what: &'static str,
    options: &'static [&'static str],
    kind: OutcomeKind,
    reply: Option<(u16, &'static str)>,
    dumped: Option<usize>,
) -> Row {
    Row {
        what,
        options,
        kind,
        reply,
        cause: None,
        dumped,
    }
}

fn table() -> Vec<Row> {
    use OutcomeKind::*;
    vec![
        row("no fault", &[], Delivered, Some((250, "2.0.0")), Some(1)),
        row(
            "no pipelining offered",
            &["-p"],
            Delivered,
            Some((250, "2.0.0")),
            Some(1),
        ),
        row(
            "EHLO refused: HELO fallback",
            &["-f", "EHLO"],
            Delivered,
            Some((250, "2.0.0")),
            Some(1),
        ),
        row(
            "EHLO and HELO refused",
            &["-f", "EHLO,HELO"],
            Configuration,
            Some((500, "5.3.0")),
            Some(0),
        ),
        row(
            "greeting 4xx",
            &["-r", "CONNECT"],
            Transient,
            Some((450, "4.3.0")),
            Some(0),
        ),
        row(
            "greeting 5xx",
            &["-f", "CONNECT"],
            Configuration,
            Some((500, "5.3.0")),
            Some(0),
        ),
        row(
            "MAIL 5xx",
            &["-f", "MAIL"],
            Permanent,
            Some((500, "5.3.0")),
            Some(0),
        ),
        row(
            "MAIL 4xx",
            &["-r", "MAIL"],
            Transient,
            Some((450, "4.3.0")),
            Some(0),
        ),
        row(
            "RCPT 5xx",
            &["-f", "RCPT"],
            Permanent,
            Some((500, "5.3.0")),
            Some(0),
        ),
        row(
            "RCPT 4xx",
            &["-r", "RCPT"],
            Transient,
            Some((450, "4.3.0")),
            Some(0),
        ),
        row(
            "RCPT greylisted with a custom reply",
            &["-b", "451 4.7.1 Greylisted, try again", "-r", "RCPT"],
            Transient,
            Some((451, "4.7.1")),
            Some(0),
        ),
        row(
            "RCPT refused with a custom hard reply",
            &["-B", "550 5.1.1 No such user", "-f", "RCPT"],
            Permanent,
            Some((550, "5.1.1")),
            Some(0),
        ),
        row(
            "DATA 5xx",
            &["-f", "DATA"],
            Permanent,
            Some((500, "5.3.0")),
            Some(0),
        ),
        row(
            "DATA 4xx",
            &["-r", "DATA"],
            Transient,
            Some((450, "4.3.0")),
            Some(0),
        ),
        row(
            "final dot 5xx",
            &["-f", "."],
            Permanent,
            Some((500, "5.3.0")),
            None,
        ),
        row(
            "final dot 4xx",
            &["-r", "."],
            Transient,
            Some((450, "4.3.0")),
            None,
        ),
        row(
            "421 after MAIL",
            &["-Q", "MAIL"],
            Transient,
            Some((421, "4.0.0")),
            Some(0),
        ),
        row(
            "421 after RCPT",
            &["-Q", "RCPT"],
            Transient,
            Some((421, "4.0.0")),
            Some(0),
        ),
        // RFC 5321: a 421 to the final dot is a definite "not delivered".
        row(
            "421 after the final dot",
            &["-Q", "."],
            Transient,
            Some((421, "4.0.0")),
            None,
        ),
        Row {
            cause: Some(Cause::ConnectionLost),
            ..row(
                "hang-up after MAIL",
                &["-q", "MAIL"],
                Transient,
                None,
                Some(0),
            )
        },
        Row {
            cause: Some(Cause::ConnectionLost),
            ..row(
                "hang-up after DATA",
                &["-q", "DATA"],
                Transient,
                None,
                Some(0),
            )
        },
        // The message was sent in full; the server may have it.
        Row {
            cause: Some(Cause::ConnectionLost),
            ..row(
                "hang-up after the final dot",
                &["-q", "."],
                Unknown,
                None,
                None,
            )
        },
        Row {
            cause: Some(Cause::Timeout),
            ..row(
                "DATA answered too late",
                &["-w", "3"],
                Transient,
                None,
                Some(0),
            )
        },
        // Lock-step (-p): with a reply delayed, smtp-sink answers the QUIT
        // pipelined behind the dot at once and hangs up, never answering the
        // dot (see `reply_221_to_the_end_of_data_is_not_a_delivery`).
        Row {
            cause: Some(Cause::Timeout),
            ..row(
                "final dot answered too late",
                &["-p", "-W", ".:3"],
                Unknown,
                None,
                None,
            )
        },
        // Lock-step (-p): smtp-sink's delayed replies lose track of
        // pipelined commands and answer DATA with 503.
        row(
            "slow but in time",
            &["-p", "-W", "RCPT:1"],
            Delivered,
            Some((250, "2.0.0")),
            Some(1),
        ),
    ]
}

#[test]
fn smtp_sink_faults_are_classified() {
    let mut failures = Vec::new();
    for row in table() {
        let Some(sink) = SmtpSink::start(row.options) else {
            return;
        };
        let mut cfg = config(Security::Insecure, None);
        // Short enough for the delay rows (3 s), long enough for "in time" (1 s).
        cfg.timeouts = Timeouts {
            greeting_ms: 2_000,
            command_ms: 2_000,
            data_end_ms: 2_000,
            write_ms: 2_000,
        };
        let run = run_session(&sink.addr, cfg, None, vec![envelope(1, CONTENT)]);
        let outcome = &run.outcome(1).outcome;
        let got_reply = reply_codes(outcome);
        let want_reply = row.reply.map(|(c, e)| (c, Some(e.to_string())));
        let dumped = sink
            .dumped()
            .iter()
            .filter(|d| d.windows(CONTENT_MARK.len()).any(|w| w == CONTENT_MARK))
            .count();
        let mut problems = Vec::new();
        if outcome.kind != row.kind {
            problems.push(format!("kind {:?}, want {:?}", outcome.kind, row.kind));
        }
        if got_reply != want_reply {
            problems.push(format!("reply {got_reply:?}, want {want_reply:?}"));
        }
        if let Some(cause) = &row.cause
            && &outcome.cause != cause
        {
            problems.push(format!("cause {:?}, want {cause:?}", outcome.cause));
        }
        if let Some(want) = row.dumped
            && dumped != want
        {
            problems.push(format!("smtp-sink kept {dumped} messages, want {want}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} {:?}: {} ({outcome})",
                row.what,
                row.options,
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Several messages over one connection to a server offering PIPELINING:
/// the envelope commands of a transaction go out in one write, behind the
/// end of the previous message's data.
#[test]
fn pipelining_with_smtp_sink_sends_envelope_commands_together() {
    // (use pipelining, expect MAIL and RCPT in one write)
    for (use_pipelining, together) in [(true, true), (false, false)] {
        let Some(sink) = SmtpSink::start(&[]) else {
            return;
        };
        let mut cfg = config(Security::Insecure, None);
        cfg.use_pipelining = use_pipelining;
        let envelopes = (0..3)
            .map(|i| envelope(i, b"Subject: t\r\n\r\nHi\r\n"))
            .collect();
        let run = run_session(&sink.addr, cfg, None, envelopes);
        for id in 0..3 {
            assert_eq!(run.outcome(id).outcome.kind, OutcomeKind::Delivered);
        }
        assert_eq!(sink.dumped().len(), 3);
        let grouped = run
            .written
            .iter()
            .filter(|w| w.starts_with(b"MAIL FROM:"))
            .all(|w| w.windows(8).any(|x| x == b"RCPT TO:"));
        assert_eq!(grouped, together, "use_pipelining={use_pipelining}");
        // Across transactions: messages 2 and 3 start in the write that
        // ends the previous one's data, and QUIT follows the last dot.
        let behind_dot = run
            .written
            .iter()
            .filter(|w| w.starts_with(b".\r\nMAIL FROM:"))
            .count();
        let quit_behind_dot = run.written.iter().any(|w| w.as_slice() == b".\r\nQUIT\r\n");
        let want = if use_pipelining {
            (2, true)
        } else {
            (0, false)
        };
        assert_eq!(
            (behind_dot, quit_behind_dot),
            want,
            "use_pipelining={use_pipelining}"
        );
    }
}
