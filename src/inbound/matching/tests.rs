//! Reports from the fixtures (real Postfix notices, RFC 5965's complaint)
//! matched to stored messages: only a signed return path changes anything.

use super::*;
use crate::events::suppression::Reason;

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

fn stored(rcpts: &[&str]) -> Stored {
    Stored {
        id: ID.into(),
        tenant: "acme".into(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
    }
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
