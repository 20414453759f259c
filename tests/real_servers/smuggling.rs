//! SMTP smuggling against a real server: every row of the transparency
//! table goes out byte for byte as the table says, and the server stores
//! exactly one message per row with the content intact. Then the same
//! separators with a complete smuggled transaction behind them: still one
//! message each, and the smuggled recipient is never seen as a command.

use edgerelay::smtp::{OutcomeKind, Security};

use crate::driver::run_session;
use crate::servers::{Aiosmtpd, AiosmtpdMode, SmtpSink};
use crate::{RECIPIENT, SENDER, config, envelope};
use edgerelay::smtp::transparency::cases::TRANSPARENCY_CASES;

const SMUGGLED: &[u8] =
    b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@target.test>\r\nDATA\r\nSmuggled\r\n.\r\n";

/// Separators that end DATA on some server, strict or lenient.
const SEPARATORS: &[&[u8]] = &[
    b"\r\n.\r\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\r\n.\n",
    b"\n.\r",
    b"\r\n.\r",
];

fn attack(separator: &[u8]) -> Vec<u8> {
    [b"Subject: t\r\n\r\nhello".as_slice(), separator, SMUGGLED].concat()
}

#[test]
fn transparency_table_reaches_aiosmtpd_intact() {
    let Some(server) = Aiosmtpd::start(AiosmtpdMode::Plain) else {
        return;
    };
    for (n, (input, data, _)) in TRANSPARENCY_CASES.iter().enumerate() {
        let cfg = config(Security::Insecure, Some((&server.user, &server.password)));
        let run = run_session(&server.addr, cfg, None, vec![envelope(n as u64, input)]);
        assert_eq!(
            run.outcome(n as u64).outcome.kind,
            OutcomeKind::Delivered,
            "row {n}"
        );
        // The content and its final dot go out as writes of their own,
        // one after the other.
        let wire = run.written.concat();
        assert!(
            wire.windows(data.len()).any(|w| w == *data),
            "row {n}: the DATA content went out as the table says"
        );
    }
    for (n, separator) in SEPARATORS.iter().enumerate() {
        let cfg = config(Security::Insecure, Some((&server.user, &server.password)));
        let run = run_session(
            &server.addr,
            cfg,
            None,
            vec![envelope(n as u64, &attack(separator))],
        );
        assert_eq!(run.outcome(n as u64).outcome.kind, OutcomeKind::Delivered);
    }
    let report = server.finish();
    let sessions = TRANSPARENCY_CASES.len() + SEPARATORS.len();
    assert_eq!(report.connections, sessions);
    assert_eq!(
        report.messages.len(),
        sessions,
        "one message per session, no more"
    );
    assert_eq!(report.rcpt_commands, vec![RECIPIENT.to_string(); sessions]);
    for (n, (input, _, stored)) in TRANSPARENCY_CASES.iter().enumerate() {
        let m = &report.messages[n];
        assert_eq!(
            m.data(),
            *stored,
            "row {n}: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    for (n, separator) in SEPARATORS.iter().enumerate() {
        let m = &report.messages[TRANSPARENCY_CASES.len() + n];
        assert_eq!(m.mail_from, SENDER);
        let data = m.data();
        let smuggled_as_text = data
            .windows(b"MAIL FROM:<evil@attacker.test>\r\n".len())
            .any(|w| w == b"MAIL FROM:<evil@attacker.test>\r\n");
        assert!(
            smuggled_as_text,
            "{separator:?}: the smuggled lines stay content"
        );
    }
}

/// smtp-sink reads commands its own way; it too sees one message per
/// attack.
#[test]
fn smuggling_attempts_reach_smtp_sink_as_one_message_each() {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    for (n, separator) in SEPARATORS.iter().enumerate() {
        let cfg = config(Security::Insecure, None);
        let run = run_session(
            &sink.addr,
            cfg,
            None,
            vec![envelope(n as u64, &attack(separator))],
        );
        assert_eq!(
            run.outcome(n as u64).outcome.kind,
            OutcomeKind::Delivered,
            "{separator:?}"
        );
    }
    let dumped = sink.dumped();
    assert_eq!(dumped.len(), SEPARATORS.len());
    for dump in dumped {
        let text = String::from_utf8_lossy(&dump);
        assert_eq!(text.matches("X-Mail-Args:").count(), 1, "{text}");
        assert!(
            !text.contains("X-Rcpt-Args: <victim@target.test>"),
            "{text}"
        );
        assert!(text.contains("X-Rcpt-Args: <rcpt@example.net>"), "{text}");
        assert!(text.contains("MAIL FROM:<evil@attacker.test>"), "{text}");
    }
}
