//! Which events of the stream a settlement emits: one per recipient whose
//! state it writes, named for what edgerelay knows and no more.
//!
//! | recipient's new state | event | fields |
//! | --- | --- | --- |
//! | `delivered` (the smarthost's 2xx) | `email.sent`, never `email.delivered` | `smtp` |
//! | `deferred` | `email.delivery_delayed` | `smtp` (when a reply decided it), `reason` |
//! | `failed` by a 5xx reply | `email.bounced` | `smtp`, `bounce`: `type` hard or soft and its `category` (`events::bounce`) |
//! | `failed` otherwise (lifetime spent, no upstream, body lost, dead-lettered) | `email.failed` | `failed.reason`, `smtp` when a 4xx was the last reply |
//! | `unknown` (the connection died after the data was sent) | `email.failed` | `failed.reason`, `failed.outcome: "unknown"`: the smarthost may have it; edgerelay does not send it again |
//! | `pending`, `sending` | nothing | |
//! | `suppressed` | nothing here: screening emits `email.suppressed` when it holds the recipient back | |
//!
//! A smarthost's acceptance says the message left edgerelay, not that the
//! recipient's server has it: `email.delivered` needs evidence of final
//! delivery (a success DSN, or the provider's own event), which no SMTP
//! reply is. A settlement that only corrects a status from what is recorded
//! (a redelivery) writes no recipient and emits nothing: each recipient's
//! event was emitted when its state was written.
//!
//! Event ids are derived from the message, the attempt, the recipient and the
//! type, so a settlement carried out twice (a redelivered queue message)
//! records each event once.
//! Must not: store or send events (the edge does), or read the clock.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::events::model::smtp_field;
use crate::events::{EmailEvent, EventType, bounce_field};
use crate::queue::DeliveryJob;

use super::recipients::{RecipientResult, RecipientState};
use super::settle::Settlement;

/// The events `settlement` of `job` emits, in the order its recipients are
/// written; `at_ms` is the time of the settlement.
pub fn of_settlement(job: &DeliveryJob, settlement: &Settlement, at_ms: u64) -> Vec<EmailEvent> {
    let Some(record) = &settlement.record else {
        return Vec::new();
    };
    record
        .recipients
        .iter()
        .filter_map(|r| of_recipient(job, r, at_ms))
        .collect()
}

/// The event of one recipient's new state, if it has one.
pub fn of_recipient(job: &DeliveryJob, r: &RecipientResult, at_ms: u64) -> Option<EmailEvent> {
    let smtp = r
        .reply_code
        .map(|code| smtp_field(code, r.enhanced_code.as_deref(), &r.reply_text));
    let (event_type, fields) = match r.state {
        // Screening emits `email.suppressed` when it holds a recipient back,
        // and a report that comes back later emits its own `email.bounced`.
        RecipientState::Pending
        | RecipientState::Sending
        | RecipientState::Suppressed
        | RecipientState::Bounced => {
            return None;
        }
        RecipientState::Delivered => (EventType::Sent, vec![]),
        RecipientState::Deferred => (
            EventType::DeliveryDelayed,
            vec![("reason", json!(r.reply_text))],
        ),
        RecipientState::Failed => match r.reply_code.filter(|c| (500..600).contains(c)) {
            Some(code) => (
                EventType::Bounced,
                vec![(
                    "bounce",
                    bounce_field(code, r.enhanced_code.as_deref(), &r.reply_text),
                )],
            ),
            None => (
                EventType::Failed,
                vec![("failed", json!({"reason": r.reply_text}))],
            ),
        },
        RecipientState::Unknown => (
            EventType::Failed,
            vec![(
                "failed",
                json!({"reason": r.reply_text, "outcome": "unknown"}),
            )],
        ),
    };
    let entropy = id_entropy(job, event_type, &r.address);
    let mut event = EmailEvent::for_job(job, event_type, Some(&r.address), at_ms, &entropy);
    if let Some(smtp) = smtp {
        event = event.with("smtp", smtp);
    }
    for (field, value) in fields {
        event = event.with(field, value);
    }
    Some(event)
}

/// The same bytes for the same message, attempt, type and recipient.
fn id_entropy(job: &DeliveryJob, event_type: EventType, recipient: &str) -> [u8; 16] {
    id_entropy_in(None, job, event_type, recipient)
}

/// [`id_entropy`] within `domain`, kept apart from the ids of real
/// outcomes (`None`: those).
pub(super) fn id_entropy_in(
    domain: Option<&str>,
    job: &DeliveryJob,
    event_type: EventType,
    recipient: &str,
) -> [u8; 16] {
    let mut hash = Sha256::new();
    let attempt = job.attempt.to_string();
    let recipient = recipient.to_ascii_lowercase();
    let parts = [job.id.as_str(), &attempt, event_type.as_str(), &recipient];
    for part in domain.iter().copied().chain(parts) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::settle::{FollowUp, Record};
    use crate::queue::MessageStatus;

    fn job() -> DeliveryJob {
        let mut job = DeliveryJob::sample("msg_1", "MIME");
        job.tenant = "acme".into();
        job.rcpt_to = vec!["a@example.net".into(), "b@example.net".into()];
        job
    }

    fn result(
        address: &str,
        state: RecipientState,
        code: Option<u16>,
        enhanced: Option<&str>,
        text: &str,
    ) -> RecipientResult {
        RecipientResult {
            address: address.into(),
            state,
            reply_code: code,
            enhanced_code: enhanced.map(str::to_string),
            reply_text: text.into(),
        }
    }

    fn settlement(recipients: Vec<RecipientResult>) -> Settlement {
        Settlement {
            message_id: "msg_1".into(),
            record: Some(Record {
                recipients,
                recipients_recorded: true,
                counts_attempt: true,
                events: Vec::new(),
                status: MessageStatus::Delivered,
                last_error: None,
                next_attempt_at: None,
                suppress: Vec::new(),
            }),
            follow_up: FollowUp::Ack,
            release_body: None,
        }
    }

    #[test]
    fn each_state_emits_its_event() {
        use RecipientState::*;
        // (state, code, enhanced, text, type, bounce type, smtp code, failed outcome)
        type Row = (
            RecipientState,
            Option<u16>,
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            Option<u16>,
            Option<&'static str>,
        );
        let table: &[Row] = &[
            (
                Delivered,
                Some(250),
                Some("2.0.0"),
                "queued as 1",
                Some("email.sent"),
                None,
                Some(250),
                None,
            ),
            (
                Deferred,
                Some(451),
                Some("4.7.1"),
                "try later",
                Some("email.delivery_delayed"),
                None,
                Some(451),
                None,
            ),
            (
                Deferred,
                None,
                None,
                "connect failed",
                Some("email.delivery_delayed"),
                None,
                None,
                None,
            ),
            (
                Failed,
                Some(550),
                Some("5.1.1"),
                "no such user",
                Some("email.bounced"),
                Some("hard"),
                Some(550),
                None,
            ),
            (
                Failed,
                Some(550),
                None,
                "User unknown",
                Some("email.bounced"),
                Some("hard"),
                Some(550),
                None,
            ),
            (
                Failed,
                Some(554),
                Some("5.7.1"),
                "spam content",
                Some("email.bounced"),
                Some("soft"),
                Some(554),
                None,
            ),
            (
                Failed,
                Some(552),
                Some("5.3.4"),
                "too big",
                Some("email.bounced"),
                Some("soft"),
                Some(552),
                None,
            ),
            (
                Failed,
                Some(451),
                Some("4.4.1"),
                "still down; message lifetime exceeded",
                Some("email.failed"),
                None,
                Some(451),
                None,
            ),
            (
                Failed,
                None,
                None,
                "dead-lettered",
                Some("email.failed"),
                None,
                None,
                None,
            ),
            (
                Unknown,
                None,
                None,
                "connection lost after data",
                Some("email.failed"),
                None,
                None,
                Some("unknown"),
            ),
            (Pending, None, None, "", None, None, None, None),
            (Sending, None, None, "", None, None, None, None),
            (
                Suppressed,
                None,
                None,
                "on the suppression list",
                None,
                None,
                None,
                None,
            ),
        ];
        for (state, code, enhanced, text, want, bounce, smtp, outcome) in table {
            let r = result("a@example.net", *state, *code, *enhanced, text);
            let event = of_recipient(&job(), &r, 1_000);
            let row = format!("{state:?} {code:?} {text}");
            assert_eq!(
                event.as_ref().map(|e| e.event_type.as_str()),
                *want,
                "{row}"
            );
            let Some(event) = event else { continue };
            assert_ne!(event.event_type, EventType::Delivered, "{row}");
            let data = &event.data;
            assert_eq!(data["recipient"], "a@example.net", "{row}");
            assert_eq!(
                data.get("bounce").map(|b| b["type"].clone()),
                bounce.map(|b| json!(b)),
                "{row}"
            );
            assert_eq!(
                data.get("smtp").map(|s| s["code"].clone()),
                smtp.map(|c| json!(c)),
                "{row}"
            );
            assert_eq!(
                data.get("failed").and_then(|f| f.get("outcome")).cloned(),
                outcome.map(|o| json!(o)),
                "{row}"
            );
            assert_eq!(event.tenant, "acme");
        }
    }

    #[test]
    fn a_bounce_carries_its_type_and_category() {
        let r = result(
            "a@example.net",
            RecipientState::Failed,
            Some(550),
            Some("5.1.1"),
            "no",
        );
        let event = of_recipient(&job(), &r, 1).unwrap();
        assert_eq!(
            event.data["bounce"],
            json!({"type": "hard", "category": "invalid_mailbox"})
        );
    }

    #[test]
    fn a_settlement_emits_one_event_per_written_recipient_in_order() {
        let s = settlement(vec![
            result(
                "a@example.net",
                RecipientState::Delivered,
                Some(250),
                None,
                "ok",
            ),
            result(
                "b@example.net",
                RecipientState::Failed,
                Some(550),
                Some("5.1.1"),
                "no",
            ),
        ]);
        let events = of_settlement(&job(), &s, 5);
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["email.sent", "email.bounced"]);
        // A status correction writes no recipient: nothing to emit.
        let mut correction = settlement(Vec::new());
        assert!(of_settlement(&job(), &correction, 5).is_empty());
        correction.record = None;
        assert!(of_settlement(&job(), &correction, 5).is_empty());
    }

    #[test]
    fn ids_repeat_for_the_same_settlement_only() {
        let r = result(
            "a@example.net",
            RecipientState::Deferred,
            Some(451),
            None,
            "later",
        );
        let first = of_recipient(&job(), &r, 1).unwrap();
        // Carried out again (at another time): the same id, stored once.
        assert_eq!(of_recipient(&job(), &r, 99).unwrap().id, first.id);
        let mut next = job();
        next.attempt = 1;
        let other_attempt = of_recipient(&next, &r, 1).unwrap();
        let other_recipient = of_recipient(
            &job(),
            &result(
                "b@example.net",
                RecipientState::Deferred,
                Some(451),
                None,
                "later",
            ),
            1,
        )
        .unwrap();
        let other_type = of_recipient(
            &job(),
            &result(
                "a@example.net",
                RecipientState::Delivered,
                Some(250),
                None,
                "ok",
            ),
            1,
        )
        .unwrap();
        for other in [other_attempt, other_recipient, other_type] {
            assert_ne!(other.id, first.id);
        }
        assert!(first.id.starts_with("evt_") && first.id.len() == 36);
    }
}
