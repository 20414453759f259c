//! The event stream: one model for a message's whole life after it was
//! accepted, with the names webhook consumers already understand (Resend's
//! `email.*`), and one stable payload.
//!
//! Words mean what they say: a smarthost's 2xx is `email.sent` (the
//! smarthost took it); `email.delivered` only comes from evidence that the
//! recipient's own server took it (a success DSN, or the smarthost
//! provider's delivery event).
//!
//! Owns the event types, the payload shape and event ids. Must not: decide
//! which events an outcome produces (delivery does), or store or send them.

use serde_json::{Map, Value, json};

use crate::message::Tag;
use crate::queue::DeliveryJob;

use super::time::rfc3339_ms;

/// One type of event, as webhooks and the status API name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A smarthost accepted the message for the recipient (its 2xx). Not
    /// proof that the recipient's server has it.
    Sent,
    /// Evidence of final delivery arrived (a success DSN, or the smarthost
    /// provider's own delivery event).
    Delivered,
    /// An attempt for the recipient was refused for now; another follows.
    DeliveryDelayed,
    /// The recipient was refused for good (`bounce.type`: hard or soft).
    Bounced,
    /// The recipient marked the message as spam (a feedback loop report).
    Complained,
    /// The message failed for good for a reason not about one recipient's
    /// address (expired, refused by every upstream, dead-lettered).
    Failed,
    /// The recipient is on the tenant's suppression list; nothing was sent.
    Suppressed,
    /// The recipient unsubscribed (one-click or from the preference page).
    Unsubscribed,
    /// The message was opened (tracking).
    Opened,
    /// A link in the message was clicked (tracking).
    Clicked,
    /// A scheduled message was canceled before it was due; nothing was sent.
    Canceled,
    /// The tenant's marketing mail was paused by the reputation guard
    /// (`events::reputation`): about a stream, not a message.
    StreamPaused,
    /// The tenant's marketing mail was resumed (an API call).
    StreamResumed,
    /// A sending domain's re-verification found a record that matched and
    /// no longer does, or its key rotation switched (`http::domains::recheck`):
    /// about a domain, not a message.
    DomainUpdated,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::Sent,
        EventType::Delivered,
        EventType::DeliveryDelayed,
        EventType::Bounced,
        EventType::Complained,
        EventType::Failed,
        EventType::Suppressed,
        EventType::Unsubscribed,
        EventType::Opened,
        EventType::Clicked,
        EventType::Canceled,
        EventType::StreamPaused,
        EventType::StreamResumed,
        EventType::DomainUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Sent => "email.sent",
            EventType::Delivered => "email.delivered",
            EventType::DeliveryDelayed => "email.delivery_delayed",
            EventType::Bounced => "email.bounced",
            EventType::Complained => "email.complained",
            EventType::Failed => "email.failed",
            EventType::Suppressed => "email.suppressed",
            EventType::Unsubscribed => "email.unsubscribed",
            EventType::Opened => "email.opened",
            EventType::Clicked => "email.clicked",
            EventType::Canceled => "email.canceled",
            EventType::StreamPaused => "stream.paused",
            EventType::StreamResumed => "stream.resumed",
            EventType::DomainUpdated => "domain.updated",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// An event about a tenant's stream rather than a message: its payload
    /// carries no `email_id`, and its stored `message_id` is empty.
    pub fn is_about_a_stream(self) -> bool {
        matches!(self, EventType::StreamPaused | EventType::StreamResumed)
    }

    /// An event about a sending domain: no `email_id`, an empty stored
    /// `message_id`.
    pub fn is_about_a_domain(self) -> bool {
        self == EventType::DomainUpdated
    }
}

/// One event, ready to store and deliver. A stream's event
/// ([`EventType::is_about_a_stream`]) has an empty `message_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailEvent {
    /// `evt_` and 32 hex digits; unique, and the `webhook-id` of every
    /// delivery of this event.
    pub id: String,
    pub tenant: String,
    pub message_id: String,
    /// The recipient it is about; `None` for the whole message.
    pub recipient: Option<String>,
    pub event_type: EventType,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// The payload's `data` object.
    pub data: Map<String, Value>,
}

/// An event id from 16 random bytes.
pub fn event_id(entropy: &[u8; 16]) -> String {
    let mut id = String::with_capacity(36);
    id.push_str("evt_");
    for b in entropy {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// What an event says about its message: the fields every payload
/// carries, from the job while it is delivered, or from the stored message
/// when a report about it comes back later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFacts {
    pub id: String,
    pub tenant: String,
    /// The From address (the return path when no From was recorded).
    pub from: String,
    /// The recipients as accepted, in order.
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub stream: String,
    pub topic: Option<String>,
    pub tags: Vec<Tag>,
    pub metadata: Option<Map<String, Value>>,
}

impl MessageFacts {
    /// The facts of `job`'s message.
    pub fn of_job(job: &DeliveryJob) -> MessageFacts {
        MessageFacts {
            id: job.id.clone(),
            tenant: job.tenant().to_string(),
            from: job.from.clone().unwrap_or_else(|| job.mail_from.clone()),
            to: job.rcpt_to.clone(),
            subject: job.subject.clone(),
            stream: job.stream().to_string(),
            topic: job.topic.clone(),
            tags: job.tags.clone(),
            metadata: job.metadata.clone(),
        }
    }
}

impl EmailEvent {
    /// An event about `job`'s message (and `recipient`, when it is about
    /// one), with the common fields of `data` filled in from the job.
    pub fn for_job(
        job: &DeliveryJob,
        event_type: EventType,
        recipient: Option<&str>,
        at_ms: u64,
        id_entropy: &[u8; 16],
    ) -> EmailEvent {
        EmailEvent::about(
            &MessageFacts::of_job(job),
            event_type,
            recipient,
            at_ms,
            id_entropy,
        )
    }

    /// An event about the message `facts` describe (and `recipient`, when
    /// it is about one), with the common fields of `data` filled in.
    pub fn about(
        facts: &MessageFacts,
        event_type: EventType,
        recipient: Option<&str>,
        at_ms: u64,
        id_entropy: &[u8; 16],
    ) -> EmailEvent {
        let mut data = Map::new();
        data.insert("email_id".into(), json!(facts.id));
        data.insert("from".into(), json!(facts.from));
        data.insert("to".into(), json!(facts.to));
        data.insert("subject".into(), json!(facts.subject));
        data.insert("stream".into(), json!(facts.stream));
        if let Some(topic) = &facts.topic {
            data.insert("topic".into(), json!(topic));
        }
        let tags: Map<String, Value> = facts
            .tags
            .iter()
            .map(|t| (t.name.clone(), Value::String(t.value.clone())))
            .collect();
        data.insert("tags".into(), Value::Object(tags));
        data.insert(
            "metadata".into(),
            facts
                .metadata
                .clone()
                .map(Value::Object)
                .unwrap_or(Value::Null),
        );
        if let Some(r) = recipient {
            data.insert("recipient".into(), json!(r));
        }
        EmailEvent {
            id: event_id(id_entropy),
            tenant: facts.tenant.clone(),
            message_id: facts.id.clone(),
            recipient: recipient.map(str::to_string),
            event_type,
            created_at_ms: at_ms,
            data,
        }
    }

    /// Adds (or replaces) one field of `data`, e.g. `smtp` or `bounce`.
    pub fn with(mut self, field: &str, value: Value) -> EmailEvent {
        self.data.insert(field.to_string(), value);
        self
    }

    /// The payload as delivered: `{type, created_at, data}`.
    pub fn payload(&self) -> Value {
        json!({
            "type": self.event_type.as_str(),
            "created_at": rfc3339_ms(self.created_at_ms),
            "data": self.data,
        })
    }

    /// [`EmailEvent::payload`] as JSON text, what is stored and signed.
    pub fn payload_json(&self) -> String {
        self.payload().to_string()
    }
}

/// The `smtp` field of an event: the reply that decided it.
pub fn smtp_field(code: u16, enhanced: Option<&str>, text: &str) -> Value {
    json!({"code": code, "enhanced": enhanced, "text": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_resends_and_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let prefix = if t.is_about_a_stream() {
                "stream."
            } else if t.is_about_a_domain() {
                "domain."
            } else {
                "email."
            };
            assert!(t.as_str().starts_with(prefix), "{}", t.as_str());
        }
        assert_eq!(EventType::Sent.as_str(), "email.sent");
        assert_eq!(
            EventType::DeliveryDelayed.as_str(),
            "email.delivery_delayed"
        );
        assert_eq!(EventType::parse("delivered"), None);
    }

    #[test]
    fn payload_is_stable() {
        let mut job = DeliveryJob::sample("m1", "MIME");
        job.key_id = "backend-2".into();
        job.tenant = "acme".into();
        job.subject = Some("Hello".into());
        job.from = Some("news@example.com".into());
        job.rcpt_to = vec!["a@example.net".into(), "b@example.net".into()];
        job.tags = vec![Tag {
            name: "campaign".into(),
            value: "spring".into(),
        }];
        let event = EmailEvent::for_job(
            &job,
            EventType::Bounced,
            Some("a@example.net"),
            1_796_850_469_123,
            &[0xab; 16],
        )
        .with("smtp", smtp_field(550, Some("5.1.1"), "no such user"))
        .with("bounce", json!({"type": "hard"}));
        assert_eq!(event.id, format!("evt_{}", "ab".repeat(16)));
        assert_eq!(event.tenant, "acme");
        assert_eq!(
            event.payload(),
            json!({
                "type": "email.bounced",
                "created_at": "2026-12-09T21:07:49.123Z",
                "data": {
                    "email_id": "m1",
                    "from": "news@example.com",
                    "to": ["a@example.net", "b@example.net"],
                    "subject": "Hello",
                    "stream": "transactional",
                    "tags": {"campaign": "spring"},
                    "metadata": null,
                    "recipient": "a@example.net",
                    "smtp": {"code": 550, "enhanced": "5.1.1", "text": "no such user"},
                    "bounce": {"type": "hard"},
                }
            })
        );
    }

    #[test]
    fn an_old_job_falls_back_to_its_key_and_envelope() {
        let job = DeliveryJob::sample("m1", "MIME");
        let event = EmailEvent::for_job(&job, EventType::Sent, None, 0, &[0; 16]);
        assert_eq!(event.tenant, job.key_id);
        assert_eq!(event.data["from"], json!(job.mail_from));
        assert!(event.data.get("recipient").is_none());
    }
}
