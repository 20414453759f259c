//! The report fixtures in `tests/fixtures/reports/` (each names its source),
//! read whole and mangled.

use super::*;
use crate::events::{BounceClass, EventType};

fn delivery(raw: &[u8]) -> DeliveryReport {
    match Report::parse(raw) {
        Ok(Report::Delivery(d)) => d,
        other => panic!("expected a DSN, got {other:?}"),
    }
}

/// What one DSN fixture must read as.
struct Expected {
    fixture: &'static [u8],
    final_recipient: &'static str,
    /// The address the message was sent to (ORCPT, as echoed).
    recipient: &'static str,
    action: Action,
    status: &'static str,
    event: Option<EventType>,
    class: BounceClass,
    /// The reply code the diagnostic quotes, or the status stands for.
    code: u16,
    remote_mta: Option<&'static str>,
    diagnostic: &'static str,
}

#[test]
fn dsn_table() {
    // The postfix-* fixtures are what Postfix 3.7 wrote on loopback
    // (scripts/make_report_fixtures.py); policy-rejection.eml is written by
    // hand in its shape, with the ORCPT echoed in xtext form.
    let table = [
        Expected {
            fixture: fixture!("postfix-unknown-user.eml"),
            // The smarthost aliased the address it was given.
            final_recipient: "nobody@unknown.test",
            recipient: "nobody+tag@unknown.test",
            action: Action::Failed,
            status: "5.1.1",
            event: Some(EventType::Bounced),
            class: BounceClass::Hard,
            code: 550,
            remote_mta: Some("127.0.0.1"),
            diagnostic: "550 5.1.1 <nobody@unknown.test>: Recipient address rejected: \
                         User unknown in local recipient table",
        },
        Expected {
            fixture: fixture!("policy-rejection.eml"),
            final_recipient: "nobody@example.net",
            recipient: "nobody+tag@example.net",
            action: Action::Failed,
            status: "5.7.1",
            event: Some(EventType::Bounced),
            class: BounceClass::Soft,
            code: 550,
            remote_mta: Some("127.0.0.1"),
            diagnostic: "550 5.7.1 Message rejected as spam by content filter",
        },
        Expected {
            fixture: fixture!("postfix-delayed.eml"),
            final_recipient: "later@slow.test",
            recipient: "later@slow.test",
            action: Action::Delayed,
            status: "4.3.0",
            event: Some(EventType::DeliveryDelayed),
            class: BounceClass::Transient,
            code: 451,
            remote_mta: Some("127.0.0.1"),
            diagnostic: "451 4.3.0 <later@slow.test>: Temporary lookup failure, try again later",
        },
        Expected {
            fixture: fixture!("postfix-success.eml"),
            final_recipient: "someone@ok.test",
            recipient: "someone@ok.test",
            action: Action::Delivered,
            status: "2.0.0",
            event: Some(EventType::Delivered),
            class: BounceClass::Transient,
            // Final delivery into a mailbox: no SMTP reply to quote.
            code: 250,
            remote_mta: None,
            diagnostic: "delivery via virtual: delivered to maildir",
        },
        Expected {
            fixture: fixture!("postfix-relayed.eml"),
            final_recipient: "someone@relay.test",
            recipient: "someone@relay.test",
            action: Action::Relayed,
            status: "2.0.0",
            // Handed to a server that will not report: not delivery.
            event: None,
            class: BounceClass::Transient,
            code: 250,
            remote_mta: Some("127.0.0.1"),
            diagnostic: "250 2.0.0 Ok: queued",
        },
    ];
    for want in table {
        let report = delivery(want.fixture);
        let name = want.recipient;
        assert_eq!(
            report.envelope_id.as_deref(),
            Some("4f3c9a0b1d2e3f405162738495a6b7c8"),
            "{name}"
        );
        assert_eq!(
            report.reporting_mta.as_deref(),
            Some("mx.example.net"),
            "{name}"
        );
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("4f3c9a0b1d2e3f405162738495a6b7c8@example.com"),
            "{name}"
        );
        let [r] = report.recipients.as_slice() else {
            panic!("one recipient: {report:?}");
        };
        assert_eq!(r.final_recipient, want.final_recipient);
        assert_eq!(r.recipient(), want.recipient);
        assert_eq!((r.action, r.status.as_str()), (want.action, want.status));
        assert_eq!(r.event_type(), want.event, "{name}");
        assert_eq!(r.bounce_class(), want.class, "{name}");
        assert_eq!(r.reply().code, want.code, "{name}: {:?}", r.reply());
        assert_eq!(r.remote_mta.as_deref(), want.remote_mta, "{name}");
        assert_eq!(r.diagnostic.as_deref(), Some(want.diagnostic), "{name}");
    }
}

#[test]
fn the_diagnostic_reply_is_read_whole() {
    // Postfix folds a long Diagnostic-Code over lines.
    let r = &delivery(fixture!("postfix-unknown-user.eml")).recipients[0];
    let reply = r.reply();
    assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
    assert_eq!(
        reply.text,
        "<nobody@unknown.test>: Recipient address rejected: User unknown in local recipient table"
    );
    // A diagnostic that is not an SMTP reply stands for the status.
    let r = &delivery(fixture!("postfix-success.eml")).recipients[0];
    let reply = r.reply();
    assert_eq!(reply.enhanced.as_deref(), Some("2.0.0"));
    assert_eq!(reply.text, "delivery via virtual: delivered to maildir");
}

#[test]
fn an_original_recipient_written_decoded_is_kept() {
    // Postfix writes the ORCPT it was given decoded, not as xtext: an
    // address with a `+` and two hex digits must come back as written.
    let raw = String::from_utf8_lossy(fixture!("postfix-unknown-user.eml")).replace(
        "rfc822;nobody+tag@unknown.test",
        "rfc822;nobody+ab@unknown.test",
    );
    let r = &delivery(raw.as_bytes()).recipients[0];
    assert_eq!(r.recipient(), "nobody+ab@unknown.test");
}

#[test]
fn complaints() {
    let Ok(Report::Complaint(c)) = Report::parse(fixture!("arf-rfc5965.eml")) else {
        panic!("expected a complaint");
    };
    assert!(c.is_spam_complaint());
    assert_eq!(c.original_rcpt_to.as_deref(), Some("user@example.net"));
    assert_eq!(
        c.original_mail_from.as_deref(),
        Some("b+tok@rp.example.com")
    );
    assert_eq!(
        c.message_id.as_deref(),
        Some("8787KJKJ3K4J3K4J3K4J3.mail@example.com")
    );
    assert_eq!(c.user_agent.as_deref(), Some("SomeGenerator/1.0"));

    let Ok(Report::Complaint(c)) = Report::parse(fixture!("arf-redacted-headers.eml")) else {
        panic!("expected a complaint");
    };
    assert!(c.is_spam_complaint());
    assert_eq!(
        c.message_id.as_deref(),
        Some("4f3c9a0b1d2e3f405162738495a6b7c8@example.com"),
        "matched by the returned headers when the recipient is redacted"
    );
}

#[test]
fn what_is_not_a_report_says_so() {
    assert_eq!(
        Report::parse(fixture!("auto-reply.eml")),
        Err(Unreadable::NotAReport("text/plain".into()))
    );
    let huge = vec![b'a'; MAX_REPORT_BYTES + 1];
    assert!(matches!(
        Report::parse(&huge),
        Err(Unreadable::TooLarge { .. })
    ));
    // A report part with no recipient block.
    let raw = String::from_utf8_lossy(fixture!("postfix-unknown-user.eml"));
    let cut = raw.replace("Action: failed", "Action: exploded");
    assert!(matches!(
        Report::parse(cut.as_bytes()),
        Err(Unreadable::Malformed(_))
    ));
}

#[test]
fn mangled_reports_never_panic() {
    let raw = fixture!("postfix-unknown-user.eml");
    for cut in (0..raw.len()).step_by(7) {
        let _ = Report::parse(&raw[..cut]);
    }
    let arf = fixture!("arf-rfc5965.eml");
    for cut in (0..arf.len()).step_by(11) {
        let _ = Report::parse(&arf[..cut]);
    }
    let mut flipped = raw.to_vec();
    for i in (0..flipped.len()).step_by(13) {
        flipped[i] = flipped[i].wrapping_add(0x80);
    }
    let _ = Report::parse(&flipped);
}

#[test]
fn recipients_are_bounded() {
    let raw = String::from_utf8_lossy(fixture!("postfix-unknown-user.eml")).into_owned();
    let block = "Final-Recipient: rfc822; x@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n";
    let many = raw.replacen(
        "Final-Recipient: rfc822; nobody@unknown.test",
        &format!(
            "{}Final-Recipient: rfc822; nobody@unknown.test",
            block.repeat(MAX_REPORT_RECIPIENTS + 50)
        ),
        1,
    );
    assert_eq!(
        delivery(many.as_bytes()).recipients.len(),
        MAX_REPORT_RECIPIENTS
    );
}
