//! Reports from the fixtures (real Postfix notices, RFC 5965's complaint)
//! matched to stored messages: only a signed return path changes anything.

use super::*;
use crate::events::suppression::Reason;
use crate::inbound::return_path::WHOLE_MESSAGE;

const ID: &str = "4f3c9a0b1d2e3f405162738495a6b7c8";

fn secrets() -> QueueSecrets {
    QueueSecrets::parse("return-path-matching-secret-0123456789").unwrap()
}

fn return_path(id: &str, index: u16) -> String {
    ReturnPathClaim {
        message_id: id.into(),
        recipient_index: index,
    }
    .address("rp.example.com", &secrets())
    .unwrap()
}

fn stored(rcpts: &[&str]) -> MessageFacts {
    MessageFacts {
        id: ID.into(),
        tenant: "acme".into(),
        to: rcpts.iter().map(|r| r.to_string()).collect(),
        ..MessageFacts::default()
    }
}

/// `raw` with its bare ENVID replaced by `envid`.
fn with_envid(raw: &[u8], envid: &str) -> Report {
    let text = String::from_utf8_lossy(raw).replace(
        &format!("Original-Envelope-Id: {ID}"),
        &format!("Original-Envelope-Id: {envid}"),
    );
    assert!(text.contains(envid), "the fixture quotes its ENVID");
    report(text.as_bytes())
}

fn report(raw: &[u8]) -> Report {
    Report::parse(raw).unwrap()
}

#[test]
fn a_hard_bounce_to_a_signed_return_path_suppresses_its_recipient() {
    let r = report(fixture!("postfix-unknown-user.eml"));
    let names = namings(&r, &return_path(ID, 1), &secrets());
    // The token first; the ENVID is the same message, so not listed twice.
    assert_eq!(names.len(), 1, "{names:?}");
    let message = stored(&["first@example.net", "nobody+tag@unknown.test"]);
    let Verdict::Apply(effects) = judge(&r, &names[0], Some(&message)) else {
        panic!("expected effects");
    };
    let [e] = effects.as_slice() else {
        panic!("one effect: {effects:?}");
    };
    assert_eq!(e.recipient, "nobody+tag@unknown.test");
    assert_eq!(
        (e.event, e.bounce),
        (EventType::Bounced, Some(BounceClass::Hard))
    );
    assert_eq!(e.suppress, Some(Reason::HardBounce));
    assert_eq!(e.tenant, "acme");
    assert_eq!(e.reply.as_ref().map(|r| r.code), Some(550));
}

#[test]
fn soft_bounces_and_delays_suppress_nothing() {
    for (raw, event) in [
        (fixture!("policy-rejection.eml"), EventType::Bounced),
        (fixture!("postfix-delayed.eml"), EventType::DeliveryDelayed),
    ] {
        let r = report(raw);
        let names = namings(&r, &return_path(ID, 0), &secrets());
        let recipient = match &r {
            Report::Delivery(d) => d.recipients[0].recipient().to_string(),
            Report::Complaint(_) => unreachable!(),
        };
        let Verdict::Apply(effects) = judge(&r, &names[0], Some(&stored(&[&recipient]))) else {
            panic!("expected effects");
        };
        assert_eq!(effects[0].event, event);
        assert_eq!(effects[0].suppress, None, "{event:?}");
    }
}

#[test]
fn forged_and_unsigned_reports_change_nothing() {
    let r = report(fixture!("postfix-unknown-user.eml"));
    let message = stored(&["nobody+tag@unknown.test"]);
    // Sent to a return path nobody signed: only the quoted id names it.
    let names = namings(&r, "b+tok@rp.example.com", &secrets());
    assert_eq!(names, vec![Naming::Unsigned(ID.into())]);
    assert!(
        matches!(judge(&r, &names[0], Some(&message)), Verdict::Unmatched(why) if why.contains("not trusted"))
    );
    // A token of another secret.
    let other = QueueSecrets::parse("another-secret-entirely-0123456789abc").unwrap();
    let forged = ReturnPathClaim {
        message_id: ID.into(),
        recipient_index: 0,
    }
    .address("rp.example.com", &other)
    .unwrap();
    assert!(
        !namings(&r, &forged, &secrets())
            .iter()
            .any(|n| matches!(n, Naming::ReturnPath(_)))
    );
    // A signed token for a message that is not there, or a recipient it lacks.
    let names = namings(&r, &return_path(ID, 0), &secrets());
    assert!(matches!(judge(&r, &names[0], None), Verdict::Unmatched(_)));
    let names = namings(&r, &return_path(ID, 5), &secrets());
    assert!(matches!(
        judge(&r, &names[0], Some(&message)),
        Verdict::Unmatched(_)
    ));
}

#[test]
fn a_complaint_quoting_a_signed_return_path_suppresses_everywhere() {
    let raw = String::from_utf8_lossy(fixture!("arf-rfc5965.eml"))
        .replace("b+tok@rp.example.com", &return_path(ID, 0));
    let r = report(raw.as_bytes());
    let names = namings(&r, "fbl@rp.example.com", &secrets());
    let Verdict::Apply(effects) = judge(&r, &names[0], Some(&stored(&["user@example.net"]))) else {
        panic!("expected effects: {names:?}");
    };
    assert_eq!(effects[0].event, EventType::Complained);
    assert_eq!(effects[0].suppress, Some(Reason::Complaint));
    // The RFC's example as it is quotes an unsigned return path.
    let plain = report(fixture!("arf-rfc5965.eml"));
    let names = namings(&plain, "fbl@rp.example.com", &secrets());
    assert!(
        names.iter().all(|n| matches!(n, Naming::Unsigned(_))),
        "{names:?}"
    );
}

#[test]
fn a_success_notice_is_delivered_evidence_and_relayed_is_not() {
    for (raw, want) in [
        (fixture!("postfix-success.eml"), Some(EventType::Delivered)),
        (fixture!("postfix-relayed.eml"), None),
    ] {
        let r = report(raw);
        let recipient = match &r {
            Report::Delivery(d) => d.recipients[0].recipient().to_string(),
            Report::Complaint(_) => unreachable!(),
        };
        let names = namings(&r, &return_path(ID, 0), &secrets());
        let got = match judge(&r, &names[0], Some(&stored(&[&recipient]))) {
            Verdict::Apply(effects) => Some(effects[0].event),
            Verdict::Unmatched(_) => None,
        };
        assert_eq!(got, want);
    }
}

#[test]
fn a_signed_envelope_id_matches_where_the_return_path_was_rewritten() {
    let envid = envelope_id::issue(ID, &secrets()).unwrap();
    let r = with_envid(fixture!("postfix-unknown-user.eml"), &envid);
    // Delivered to the smarthost's own bounce address, not a token.
    let names = namings(&r, "bounces@smarthost.example", &secrets());
    assert_eq!(names, vec![Naming::Envelope(ID.into())]);
    let message = stored(&["first@example.net", "NOBODY+tag@unknown.test"]);
    let Verdict::Apply(effects) = judge(&r, &names[0], Some(&message)) else {
        panic!("expected effects");
    };
    let [e] = effects.as_slice() else {
        panic!("one effect: {effects:?}");
    };
    // The message's own spelling of the recipient the report names.
    assert_eq!(e.recipient, "NOBODY+tag@unknown.test");
    assert_eq!(e.suppress, Some(Reason::HardBounce));
    assert_eq!(e.source, Source::Dsn);
    // A signed id, but the report is about nobody the message was sent to.
    let Verdict::Unmatched(why) = judge(&r, &names[0], Some(&stored(&["x@example.net"]))) else {
        panic!("a stranger's bounce must not apply");
    };
    assert!(why.contains("nothing final"), "{why}");
    // Another secret's tag is no better than a bare id.
    let other = QueueSecrets::parse("another-secret-entirely-0123456789abc").unwrap();
    let forged = with_envid(
        fixture!("postfix-unknown-user.eml"),
        &envelope_id::issue(ID, &other).unwrap(),
    );
    let names = namings(&forged, "bounces@smarthost.example", &secrets());
    assert!(names.iter().all(|n| !n.is_signed()), "{names:?}");
}

#[test]
fn a_return_path_for_the_whole_message_lets_the_report_say_whose() {
    let r = report(fixture!("postfix-unknown-user.eml"));
    let names = namings(&r, &return_path(ID, WHOLE_MESSAGE), &secrets());
    let message = stored(&["first@example.net", "nobody+tag@unknown.test"]);
    let Verdict::Apply(effects) = judge(&r, &names[0], Some(&message)) else {
        panic!("expected effects");
    };
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].recipient, "nobody+tag@unknown.test");
    // A complaint on a many-recipient message must say who complained.
    let raw = String::from_utf8_lossy(fixture!("arf-rfc5965.eml"))
        .replace("b+tok@rp.example.com", &return_path(ID, WHOLE_MESSAGE));
    let c = report(raw.as_bytes());
    let names = namings(&c, "fbl@rp.example.com", &secrets());
    let many = stored(&["a@example.net", "b@example.net"]);
    assert!(matches!(
        judge(&c, &names[0], Some(&many)),
        Verdict::Unmatched(why) if why.contains("which")
    ));
    let named = stored(&["a@example.net", "User@example.net"]);
    let Verdict::Apply(effects) = judge(&c, &names[0], Some(&named)) else {
        panic!("the complaint names its recipient");
    };
    assert_eq!(effects[0].recipient, "User@example.net");
    assert_eq!(effects[0].source, Source::Arf);
}

#[test]
fn a_complaint_feedback_loop_report_names_its_message_by_the_signed_feedback_id() {
    let signed = envelope_id::issue(ID, &secrets()).unwrap();
    let raw = String::from_utf8_lossy(fixture!("arf-cfbl-redacted.eml")).replace(
        &format!("CFBL-Feedback-ID: {ID}"),
        &format!("CFBL-Feedback-ID: {signed}"),
    );
    assert!(raw.contains(&signed));
    let r = report(raw.as_bytes());
    // No return path at all: the feedback id is the only signed naming,
    // and it wins over the bare Message-ID of the same message.
    let names = namings(&r, "fbl@rp.example.com", &secrets());
    assert_eq!(names, vec![Naming::Envelope(ID.into())]);
    let Verdict::Apply(effects) = judge(&r, &names[0], Some(&stored(&["reader@example.net"])))
    else {
        panic!("a one-recipient message: the complaint is that recipient's");
    };
    assert_eq!(
        (effects[0].recipient.as_str(), effects[0].event),
        ("reader@example.net", EventType::Complained)
    );
    // Redacted, on a message to two: nobody can say who complained.
    let two = stored(&["a@example.net", "b@example.net"]);
    assert!(matches!(
        judge(&r, &names[0], Some(&two)),
        Verdict::Unmatched(_)
    ));
    // The fixture as it is (a bare id) proves nothing.
    let plain = report(fixture!("arf-cfbl-redacted.eml"));
    let names = namings(&plain, "fbl@rp.example.com", &secrets());
    assert!(names.iter().all(|n| !n.is_signed()), "{names:?}");
}
