//! Matching a smarthost provider's event to the message it is about, and
//! what it may change.
//!
//! A provider's event is authentic once its request verified, but it is
//! only evidence about edgerelay's message if it names one: the id
//! edgerelay put in the provider's custom-data header when it sent the
//! message ([`MESSAGE_ID_FIELD`](super::MESSAGE_ID_FIELD)). An event is
//! trusted only when that message exists, belongs to the endpoint's tenant
//! (when the endpoint has one: a tenant's provider account must not change
//! another tenant's messages), and the event's recipient is one of the
//! message's. Events without an id (mail the smarthost sent for someone
//! else) are kept as unmatched with the reason; events edgerelay does not
//! track (opens, clicks, `processed`) are neither.
//! Owns: those rules and the effects of a trusted event. Must not: look
//! anything up (the caller fetches the message [`lookup_id`] names) or
//! record anything.

use crate::events::MessageFacts;
use crate::events::suppression::Reason;
use crate::inbound::dsn::DiagnosticReply;
use crate::inbound::matching::{Effect, Source, Verdict, recipient_of};

use super::{ProviderEvent, ProviderEventKind};

/// The message id worth looking up for `event`: one in the form of
/// edgerelay's ids (so a hostile value never reaches a query as anything
/// but a short token). `None`: judge without a lookup.
pub fn lookup_id(event: &ProviderEvent) -> Option<&str> {
    event.message_id.as_deref().filter(|id| {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// The effects of `event`, which arrived at an endpoint of
/// `endpoint_tenant`, on `stored` (the message [`lookup_id`] named, as the
/// caller found it). `None` for an event edgerelay does not track.
pub fn judge(
    event: &ProviderEvent,
    endpoint_tenant: Option<&str>,
    stored: Option<&MessageFacts>,
) -> Option<Verdict> {
    let event_type = event.event_type()?;
    let provider = event.provider.as_str();
    let Some(named) = event.message_id.as_deref() else {
        return Some(Verdict::Unmatched(format!(
            "the {provider} event names no edgerelay message (no `edgerelay_id` in its custom \
             data): mail edgerelay did not send, or sent through an upstream without the \
             provider header"
        )));
    };
    if lookup_id(event).is_none() {
        return Some(Verdict::Unmatched(
            "the event's `edgerelay_id` is not an edgerelay message id".into(),
        ));
    }
    let stored = stored.filter(|s| s.id == named);
    let stored = match (stored, endpoint_tenant) {
        (Some(s), Some(tenant)) if s.tenant != tenant => None,
        (stored, _) => stored,
    };
    let Some(stored) = stored else {
        return Some(Verdict::Unmatched(match endpoint_tenant {
            Some(tenant) => format!("no message {named} of tenant {tenant}"),
            None => format!("no message {named}"),
        }));
    };
    let Some(recipient) = recipient_of(stored, &event.recipient) else {
        return Some(Verdict::Unmatched(format!(
            "{} is not a recipient of message {named}",
            one_line(&event.recipient)
        )));
    };
    let bounce = match &event.kind {
        ProviderEventKind::Bounced { class } => Some(*class),
        _ => None,
    };
    let suppress = match &event.kind {
        ProviderEventKind::Complained => Some(Reason::Complaint),
        _ => bounce
            .filter(|c| c.suppresses())
            .map(|_| Reason::HardBounce),
    };
    Some(Verdict::Apply(vec![Effect {
        message_id: stored.id.clone(),
        tenant: stored.tenant.clone(),
        recipient: recipient.to_string(),
        event: event_type,
        reply: event.reply.as_ref().map(|r| DiagnosticReply {
            code: r.code,
            enhanced: r.enhanced.clone(),
            text: r.text.clone(),
        }),
        bounce,
        suppress,
        source: Source::Provider(event.provider),
    }]))
}

/// What makes an event the same event when a provider sends it again (a
/// retry after a failed request): its provider's id for the message or
/// event, what it says and about whom, as a SHA-256 in hex. `None` without
/// a provider id. A bounce sent again changes nothing anyway (the
/// recipient is already bounced); a delivery or complaint would emit its
/// event twice without this.
pub fn event_key(event: &ProviderEvent) -> Option<String> {
    use sha2::{Digest, Sha256};
    let provider_id = event.provider_id.as_deref()?;
    let what = event.event_type()?;
    let mut hash = Sha256::new();
    for part in [
        event.provider.as_str(),
        what.as_str(),
        provider_id,
        &event.recipient.to_ascii_lowercase(),
        event.message_id.as_deref().unwrap_or_default(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Whose record of the event it is (who sees it in `/v1/inbound-reports`):
/// the endpoint's tenant, when it has one, whatever message the event
/// names; else the tenant of the message it names, when that is stored;
/// else nobody's (the operator's alone).
pub fn record_tenant(
    endpoint_tenant: Option<&str>,
    stored: Option<&MessageFacts>,
) -> Option<String> {
    endpoint_tenant
        .map(str::to_string)
        .or_else(|| stored.map(|s| s.tenant.clone()))
}

/// An address from the event, fit for a reason: one line, bounded.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(320)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BounceClass, EventType};
    use crate::inbound::providers::{Provider, QuotedReply};

    const ID: &str = "4f3c9a0b1d2e3f405162738495a6b7c8";

    fn facts(tenant: &str) -> MessageFacts {
        MessageFacts {
            id: ID.into(),
            tenant: tenant.into(),
            from: "news@example.com".into(),
            to: vec!["Alice@Example.net".into(), "bob@example.net".into()],
            subject: Some("Hi".into()),
            stream: "transactional".into(),
            topic: None,
            tags: Vec::new(),
            metadata: None,
        }
    }

    fn event(kind: ProviderEventKind, id: Option<&str>, recipient: &str) -> ProviderEvent {
        ProviderEvent {
            provider: Provider::SendGrid,
            kind,
            message_id: id.map(str::to_string),
            recipient: recipient.into(),
            provider_id: Some("sg-1".into()),
            at_ms: None,
            reply: Some(QuotedReply {
                code: 550,
                enhanced: Some("5.1.1".into()),
                text: "no such user".into(),
            }),
        }
    }

    fn hard() -> ProviderEventKind {
        ProviderEventKind::Bounced {
            class: BounceClass::Hard,
        }
    }

    #[test]
    fn trusted_events_and_their_effects() {
        // (kind, event type, bounce, suppression)
        type Row = (
            ProviderEventKind,
            EventType,
            Option<BounceClass>,
            Option<Reason>,
        );
        let table: Vec<Row> = vec![
            (
                hard(),
                EventType::Bounced,
                Some(BounceClass::Hard),
                Some(Reason::HardBounce),
            ),
            (
                ProviderEventKind::Bounced {
                    class: BounceClass::Soft,
                },
                EventType::Bounced,
                Some(BounceClass::Soft),
                None,
            ),
            (
                ProviderEventKind::Complained,
                EventType::Complained,
                None,
                Some(Reason::Complaint),
            ),
            (
                ProviderEventKind::Delivered,
                EventType::Delivered,
                None,
                None,
            ),
            (
                ProviderEventKind::Delayed,
                EventType::DeliveryDelayed,
                None,
                None,
            ),
        ];
        let stored = facts("acme");
        for (kind, event_type, bounce, suppress) in table {
            let e = event(kind.clone(), Some(ID), "alice@example.NET");
            for tenant in [None, Some("acme")] {
                let Some(Verdict::Apply(effects)) = judge(&e, tenant, Some(&stored)) else {
                    panic!("{kind:?} at {tenant:?} not applied");
                };
                let [effect] = effects.as_slice() else {
                    panic!("{kind:?}: {effects:?}");
                };
                assert_eq!(effect.event, event_type, "{kind:?}");
                assert_eq!(effect.bounce, bounce, "{kind:?}");
                assert_eq!(effect.suppress, suppress, "{kind:?}");
                assert_eq!(effect.source, Source::Provider(Provider::SendGrid));
                // The message's own spelling of the recipient.
                assert_eq!(effect.recipient, "Alice@Example.net");
                assert_eq!(
                    (effect.message_id.as_str(), effect.tenant.as_str()),
                    (ID, "acme")
                );
                let reply = effect.reply.as_ref().unwrap();
                assert_eq!(
                    (reply.code, reply.enhanced.as_deref(), reply.text.as_str()),
                    (550, Some("5.1.1"), "no such user")
                );
            }
        }
    }

    #[test]
    fn what_is_not_trusted_is_unmatched_with_its_reason() {
        let stored = facts("acme");
        // (event, endpoint tenant, stored, a word of the reason)
        let table: Vec<(ProviderEvent, Option<&str>, Option<&MessageFacts>, &str)> = vec![
            (
                event(hard(), None, "alice@example.net"),
                None,
                None,
                "names no edgerelay message",
            ),
            (
                event(hard(), Some("x' OR 1=1 --"), "alice@example.net"),
                None,
                None,
                "not an edgerelay message id",
            ),
            (
                event(hard(), Some(ID), "alice@example.net"),
                None,
                None,
                "no message 4f3c",
            ),
            // Another tenant's message, through a tenant's endpoint: as
            // if it did not exist.
            (
                event(hard(), Some(ID), "alice@example.net"),
                Some("globex"),
                Some(&stored),
                "no message 4f3c9a0b1d2e3f405162738495a6b7c8 of tenant globex",
            ),
            (
                event(hard(), Some(ID), "mallory@example.net"),
                None,
                Some(&stored),
                "mallory@example.net is not a recipient",
            ),
            (
                event(hard(), Some("0000"), "alice@example.net"),
                None,
                Some(&stored),
                "no message 0000",
            ),
        ];
        for (e, tenant, stored, want) in table {
            match judge(&e, tenant, stored) {
                Some(Verdict::Unmatched(reason)) => {
                    assert!(reason.contains(want), "{e:?}: {reason}")
                }
                other => panic!("{e:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn untracked_events_say_nothing() {
        let stored = facts("acme");
        for id in [Some(ID), None] {
            let e = event(
                ProviderEventKind::Other("open".into()),
                id,
                "alice@example.net",
            );
            assert_eq!(judge(&e, None, Some(&stored)), None);
        }
    }

    #[test]
    fn the_same_event_has_the_same_key() {
        let e = event(hard(), Some(ID), "alice@example.net");
        let key = event_key(&e).unwrap();
        assert_eq!(key.len(), 64);
        let shouted = event(hard(), Some(ID), "ALICE@example.net");
        assert_eq!(event_key(&shouted), Some(key.clone()));
        // What it says, about whom, from which provider, and which
        // provider message, all count.
        let others = [
            event(ProviderEventKind::Delivered, Some(ID), "alice@example.net"),
            event(hard(), Some(ID), "bob@example.net"),
            event(hard(), None, "alice@example.net"),
            ProviderEvent {
                provider: Provider::Mailgun,
                ..e.clone()
            },
            ProviderEvent {
                provider_id: Some("sg-2".into()),
                ..e.clone()
            },
        ];
        for other in others {
            assert_ne!(event_key(&other), Some(key.clone()), "{other:?}");
        }
        let anonymous = ProviderEvent {
            provider_id: None,
            ..e.clone()
        };
        assert_eq!(event_key(&anonymous), None);
        let open = event(ProviderEventKind::Other("open".into()), Some(ID), "a@b");
        assert_eq!(event_key(&open), None);
    }

    #[test]
    fn records_belong_to_the_endpoints_tenant_first() {
        let theirs = facts("globex");
        assert_eq!(
            record_tenant(Some("acme"), Some(&theirs)).as_deref(),
            Some("acme")
        );
        assert_eq!(
            record_tenant(None, Some(&theirs)).as_deref(),
            Some("globex")
        );
        assert_eq!(record_tenant(Some("acme"), None).as_deref(), Some("acme"));
        assert_eq!(record_tenant(None, None), None);
    }

    #[test]
    fn lookup_ids() {
        for (id, want) in [
            (Some(ID), Some(ID)),
            (Some("msg_01-x"), Some("msg_01-x")),
            (Some(""), None),
            (Some("a b"), None),
            (None, None),
        ] {
            let e = event(hard(), id, "a@b");
            assert_eq!(lookup_id(&e), want, "{id:?}");
        }
        let long = "a".repeat(65);
        assert_eq!(lookup_id(&event(hard(), Some(&long), "a@b")), None);
    }
}
