//! What a trusted report's effect writes: the recipient's new state, the
//! event of the stream, the timeline entry and the suppression, decided
//! here so the email handler and the provider receivers write the same.
//! (The report itself is read and judged in `inbound`.)
//!
//! A report may arrive twice (a server resends it, a provider retries its
//! webhook) or contradict what is already known; it then writes nothing
//! rather than a second event.
//! Owns: the shape of those writes. Must not: perform I/O or decide whether
//! a report is trusted (see `matching`).

use serde_json::json;

use super::{RecipientResult, RecipientState};
use crate::events::model::smtp_field;
use crate::events::suppression::{Entry, Scope, address_key};
use crate::events::{BounceCategory, EmailEvent, EventType, MessageFacts};
use crate::inbound::matching::Effect;
use crate::queue::EventKind;

/// The writes of one effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// For a bounce: the recipient becomes `bounced`, with the report's
    /// reply.
    pub bounced: Option<RecipientResult>,
    pub event: EmailEvent,
    /// The message timeline's entry: its kind and detail.
    pub timeline: (EventKind, String),
    pub suppress: Option<Entry>,
}

/// The writes of `effect` on the message `facts` describe, whose recipient
/// is now in state `current` (`None`: no state recorded); `None` when the
/// effect is already known or contradicts what is.
pub fn plan(
    effect: &Effect,
    facts: &MessageFacts,
    current: Option<RecipientState>,
    at_ms: u64,
    id_entropy: &[u8; 16],
) -> Option<Changes> {
    let settled_without_delivery = matches!(
        current,
        Some(RecipientState::Bounced | RecipientState::Failed | RecipientState::Suppressed)
    );
    if effect.event != EventType::Complained && settled_without_delivery {
        return None;
    }
    let source = effect.source.as_str();
    let mut event = EmailEvent::about(
        facts,
        effect.event,
        Some(&effect.recipient),
        at_ms,
        id_entropy,
    )
    .with("evidence", json!({"source": source}));
    if let Some(reply) = &effect.reply {
        event = event.with(
            "smtp",
            smtp_field(reply.code, reply.enhanced.as_deref(), &reply.text),
        );
    }
    let mut bounced = None;
    if let Some(class) = effect.bounce {
        let (code, enhanced, text) = effect
            .reply
            .as_ref()
            .map(|r| (r.code, r.enhanced.as_deref(), r.text.as_str()))
            .unwrap_or((550, None, ""));
        event = event.with(
            "bounce",
            json!({
                "type": class.as_str(),
                "category": BounceCategory::of(code, enhanced, text).as_str(),
            }),
        );
        if effect.event == EventType::Bounced {
            bounced = Some(RecipientResult {
                address: effect.recipient.clone(),
                state: RecipientState::Bounced,
                reply_code: Some(code),
                enhanced_code: enhanced.map(str::to_string),
                reply_text: format!("{text} (reported by {source})").trim().to_string(),
            });
        }
    }
    let reply_text = effect.reply.as_ref().map(|r| {
        let mut line = r.code.to_string();
        if let Some(e) = &r.enhanced {
            line.push(' ');
            line.push_str(e);
        }
        if !r.text.is_empty() {
            line.push(' ');
            line.push_str(&r.text);
        }
        line
    });
    let mut detail = format!(
        "{} for {} ({source})",
        effect.event.as_str(),
        effect.recipient
    );
    if let Some(line) = &reply_text {
        detail.push_str(": ");
        detail.push_str(line);
    }
    let kind = if effect.event == EventType::Bounced {
        EventKind::Bounced
    } else {
        EventKind::Report
    };
    let suppress = effect.suppress.map(|reason| Entry {
        tenant: effect.tenant.clone(),
        address: address_key(&effect.recipient),
        scope: Scope::All,
        reason,
        message_id: Some(effect.message_id.clone()),
        detail: Some(reply_text.unwrap_or_else(|| format!("reported by {source}"))),
        created_at_ms: at_ms,
        expires_at_ms: None,
    });
    Some(Changes {
        bounced,
        event,
        timeline: (kind, detail),
        suppress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::BounceClass;
    use crate::events::suppression::Reason;
    use crate::inbound::dsn::DiagnosticReply;
    use crate::inbound::matching::Source;

    fn facts() -> MessageFacts {
        MessageFacts {
            id: "4f3c9a0b1d2e3f405162738495a6b7c8".into(),
            tenant: "acme".into(),
            from: "news@example.com".into(),
            to: vec!["Nobody@Example.net".into()],
            subject: Some("Hello".into()),
            stream: "marketing".into(),
            ..MessageFacts::default()
        }
    }

    fn effect(event: EventType, bounce: Option<BounceClass>, suppress: Option<Reason>) -> Effect {
        Effect {
            message_id: facts().id,
            tenant: "acme".into(),
            recipient: "Nobody@Example.net".into(),
            event,
            reply: Some(DiagnosticReply {
                code: 550,
                enhanced: Some("5.1.1".into()),
                text: "user unknown".into(),
            }),
            bounce,
            suppress,
            source: Source::Dsn,
        }
    }

    #[test]
    fn a_hard_bounce_marks_the_recipient_and_suppresses_everywhere() {
        let e = effect(
            EventType::Bounced,
            Some(BounceClass::Hard),
            Some(Reason::HardBounce),
        );
        let c = plan(&e, &facts(), Some(RecipientState::Delivered), 7, &[1; 16]).unwrap();
        let bounced = c.bounced.unwrap();
        assert_eq!(bounced.state, RecipientState::Bounced);
        assert_eq!(
            (bounced.reply_code, bounced.enhanced_code.as_deref()),
            (Some(550), Some("5.1.1"))
        );
        assert!(bounced.reply_text.contains("user unknown"));
        let payload = c.event.payload();
        assert_eq!(payload["type"], "email.bounced");
        assert_eq!(payload["data"]["bounce"]["type"], "hard");
        assert_eq!(payload["data"]["bounce"]["category"], "invalid_mailbox");
        assert_eq!(payload["data"]["smtp"]["enhanced"], "5.1.1");
        assert_eq!(payload["data"]["evidence"]["source"], "dsn");
        assert_eq!(payload["data"]["stream"], "marketing");
        assert_eq!(c.timeline.0, EventKind::Bounced);
        let entry = c.suppress.unwrap();
        assert_eq!(
            (entry.address.as_str(), &entry.scope, entry.reason),
            ("nobody@example.net", &Scope::All, Reason::HardBounce)
        );
    }

    #[test]
    fn a_soft_bounce_marks_but_does_not_suppress() {
        let e = effect(EventType::Bounced, Some(BounceClass::Soft), None);
        let c = plan(&e, &facts(), Some(RecipientState::Delivered), 7, &[1; 16]).unwrap();
        assert!(c.bounced.is_some());
        assert_eq!(c.event.payload()["data"]["bounce"]["type"], "soft");
        assert_eq!(c.suppress, None);
    }

    #[test]
    fn delivery_delay_and_complaint_leave_the_state_alone() {
        for (event, kind) in [
            (EventType::Delivered, EventKind::Report),
            (EventType::DeliveryDelayed, EventKind::Report),
        ] {
            let c = plan(
                &effect(event, None, None),
                &facts(),
                Some(RecipientState::Delivered),
                7,
                &[1; 16],
            )
            .unwrap();
            assert_eq!(c.bounced, None);
            assert_eq!(c.timeline.0, kind);
            assert_eq!(c.suppress, None);
        }
        let mut complaint = effect(EventType::Complained, None, Some(Reason::Complaint));
        complaint.reply = None;
        complaint.source = Source::Arf;
        // Even after a bounce, a complaint counts.
        let c = plan(
            &complaint,
            &facts(),
            Some(RecipientState::Bounced),
            7,
            &[1; 16],
        )
        .unwrap();
        assert_eq!(c.event.payload()["data"]["evidence"]["source"], "arf");
        assert_eq!(c.suppress.unwrap().reason, Reason::Complaint);
    }

    #[test]
    fn a_repeated_or_contradicting_report_writes_nothing() {
        let hard = effect(
            EventType::Bounced,
            Some(BounceClass::Hard),
            Some(Reason::HardBounce),
        );
        for current in [
            RecipientState::Bounced,
            RecipientState::Failed,
            RecipientState::Suppressed,
        ] {
            assert_eq!(plan(&hard, &facts(), Some(current), 7, &[1; 16]), None);
            assert_eq!(
                plan(
                    &effect(EventType::Delivered, None, None),
                    &facts(),
                    Some(current),
                    7,
                    &[1; 16]
                ),
                None
            );
        }
        assert!(plan(&hard, &facts(), None, 7, &[1; 16]).is_some());
    }
}
