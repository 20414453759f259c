//! The report fixtures in `tests/fixtures/reports/` (each names its source),
//! read whole and mangled.

use super::*;
use crate::events::{BounceClass, EventType};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/reports/",
            $name
        ))
        .as_slice()
    };
}

fn delivery(raw: &[u8]) -> DeliveryReport {
    match Report::parse(raw) {
        Ok(Report::Delivery(d)) => d,
        other => panic!("expected a DSN, got {other:?}"),
    }
}

#[test]
fn dsn_table() {
    // (fixture, action, status, event, bounce class, diagnostic reply code)
    type Row<'a> = (
        &'a [u8],
        Action,
        &'a str,
        Option<EventType>,
        BounceClass,
        u16,
    );
    let table: &[Row] = &[
        (
            fixture!("postfix-unknown-user.eml"),
            Action::Failed,
            "5.1.1",
            Some(EventType::Bounced),
            BounceClass::Hard,
            550,
        ),
        (
            fixture!("policy-rejection.eml"),
            Action::Failed,
            "5.7.1",
            Some(EventType::Bounced),
            BounceClass::Soft,
            550,
        ),
        (
            fixture!("postfix-delayed.eml"),
            Action::Delayed,
            "4.4.1",
            Some(EventType::DeliveryDelayed),
            BounceClass::Transient,
            450,
        ),
        (
            fixture!("postfix-success.eml"),
            Action::Delivered,
            "2.0.0",
            Some(EventType::Delivered),
            BounceClass::Transient,
            250,
        ),
    ];
    for (raw, action, status, event, class, code) in table {
        let report = delivery(raw);
        assert_eq!(
            report.envelope_id.as_deref(),
            Some("4f3c9a0b1d2e3f405162738495a6b7c8"),
            "{status}"
        );
        assert_eq!(report.reporting_mta.as_deref(), Some("mx.example.net"));
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("4f3c9a0b1d2e3f405162738495a6b7c8@example.com")
        );
        let [r] = report.recipients.as_slice() else {
            panic!("one recipient: {report:?}");
        };
        assert_eq!(r.final_recipient, "nobody@example.net");
        // ORCPT, xtext-decoded, is what the message was sent to.
        assert_eq!(r.recipient(), "nobody+tag@example.net");
        assert_eq!((r.action, r.status.as_str()), (*action, *status));
        assert_eq!(r.event_type(), *event, "{status}");
        assert_eq!(r.bounce_class(), *class, "{status}");
        assert_eq!(r.reply().code, *code, "{status}: {:?}", r.reply());
    }
}

#[test]
fn the_diagnostic_reply_is_read_whole() {
    let r = &delivery(fixture!("postfix-unknown-user.eml")).recipients[0];
    let reply = r.reply();
    assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
    assert_eq!(
        reply.text,
        "<nobody@example.net>: Recipient address rejected: User unknown in local recipient table"
    );
    assert_eq!(r.remote_mta.as_deref(), Some("127.0.0.1"));
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
        "Final-Recipient: rfc822; nobody@example.net",
        &format!(
            "{}Final-Recipient: rfc822; nobody@example.net",
            block.repeat(MAX_REPORT_RECIPIENTS + 50)
        ),
        1,
    );
    assert_eq!(
        delivery(many.as_bytes()).recipients.len(),
        MAX_REPORT_RECIPIENTS
    );
}
