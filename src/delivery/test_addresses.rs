//! Test addresses: recipients at [`TEST_DOMAIN`] that show what each outcome
//! looks like, events and webhooks included, without any upstream seeing
//! the message.
//!
//! | recipient (any `+label` allowed) | row | events |
//! | --- | --- | --- |
//! | `delivered@` | `delivered`, 250 | `email.sent`, `email.delivered` |
//! | `bounced@` | `failed`, 550 5.1.1 | `email.bounced` (hard) |
//! | `complained@` | `delivered`, 250 | `email.sent`, `email.delivered`, `email.complained` |
//! | `suppressed@` | `suppressed` | `email.suppressed` |
//! | any other name there | `failed`, 550 5.1.1 | `email.bounced`, the reply naming the four above |
//!
//! `.invalid` is reserved (RFC 2606), so no real mailbox is ever one of
//! these. Test addresses never enter the suppression list: `bounced@` bounces
//! every time. Their events carry `evidence.source = "test_address"` where
//! a real one would carry a report's source.
//!
//! Owns: which recipients are test addresses and what each records. Must
//! not: perform I/O or read the clock (the edge records what this returns,
//! at the screening step, after the suppression list).

use serde_json::json;

use crate::events::model::smtp_field;
use crate::events::time::rfc3339_ms;
use crate::events::{EmailEvent, EventType};
use crate::queue::{DeliveryJob, EventKind};

use super::email_events::{id_entropy_in, of_recipient};
use super::recipients::{RecipientResult, RecipientState};
use super::settle::Event;

/// The reserved domain of the test addresses.
pub const TEST_DOMAIN: &str = "test.edgerelay.invalid";

/// What a test address simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Bounced,
    Complained,
    Suppressed,
    /// A name at the test domain that is none of the above: bounced, with
    /// a reply that names the ones there are.
    Unknown,
}

/// One recipient that is a test address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulated {
    pub address: String,
    pub outcome: Outcome,
}

/// A job's recipients, split: those that go upstream, and the test ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub rcpt_to: Vec<String>,
    pub simulated: Vec<Simulated>,
}

/// The outcome of `address` if it is a test address (case-insensitive;
/// `name+label@` is `name@`).
pub fn outcome(address: &str) -> Option<Outcome> {
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(TEST_DOMAIN) {
        return None;
    }
    let name = local.split_once('+').map_or(local, |(name, _)| name);
    Some(match name.to_ascii_lowercase().as_str() {
        "delivered" => Outcome::Delivered,
        "bounced" => Outcome::Bounced,
        "complained" => Outcome::Complained,
        "suppressed" => Outcome::Suppressed,
        _ => Outcome::Unknown,
    })
}

/// Splits `rcpt_to` into the recipients to send to and the test addresses.
pub fn split(rcpt_to: &[String]) -> Split {
    let mut split = Split {
        rcpt_to: Vec::new(),
        simulated: Vec::new(),
    };
    for address in rcpt_to {
        match outcome(address) {
            Some(outcome) => split.simulated.push(Simulated {
                address: address.clone(),
                outcome,
            }),
            None => split.rcpt_to.push(address.clone()),
        }
    }
    split
}

const DELIVERED_TEXT: &str = "2.0.0 test address: delivered; no upstream was contacted";
const BOUNCED_TEXT: &str = "5.1.1 test address: bounced; no upstream was contacted";
const UNKNOWN_TEXT: &str = "5.1.1 no such test address; the test addresses are delivered@, bounced@, complained@ and suppressed@";
const SUPPRESSED_TEXT: &str = "suppressed: test address; no upstream was contacted";

impl Simulated {
    /// The recipient's row.
    pub fn result(&self) -> RecipientResult {
        let (state, code, enhanced, text) = match self.outcome {
            Outcome::Delivered | Outcome::Complained => (
                RecipientState::Delivered,
                Some(250),
                Some("2.0.0"),
                DELIVERED_TEXT,
            ),
            Outcome::Bounced => (
                RecipientState::Failed,
                Some(550),
                Some("5.1.1"),
                BOUNCED_TEXT,
            ),
            Outcome::Unknown => (
                RecipientState::Failed,
                Some(550),
                Some("5.1.1"),
                UNKNOWN_TEXT,
            ),
            Outcome::Suppressed => (RecipientState::Suppressed, None, None, SUPPRESSED_TEXT),
        };
        RecipientResult {
            address: self.address.clone(),
            state,
            reply_code: code,
            enhanced_code: enhanced.map(str::to_string),
            reply_text: text.to_string(),
        }
    }

    /// Its entry on the message's timeline.
    pub fn timeline(&self) -> Event {
        let kind = match self.outcome {
            Outcome::Delivered | Outcome::Complained => EventKind::Delivered,
            Outcome::Bounced | Outcome::Unknown => EventKind::Bounced,
            Outcome::Suppressed => EventKind::Suppressed,
        };
        Event {
            kind,
            detail: format!("{}: {}", self.address, self.result().reply_text),
        }
    }

    /// Its events of the stream, in the order a real recipient's would
    /// come. Ids are derived from the message, the attempt, the type and
    /// the recipient, so a redelivered job records each once.
    pub fn email_events(&self, job: &DeliveryJob, at_ms: u64) -> Vec<EmailEvent> {
        let result = self.result();
        let evidence = json!({"source": "test_address"});
        let event = |event_type: EventType| {
            EmailEvent::for_job(
                job,
                event_type,
                Some(&self.address),
                at_ms,
                &id_entropy_in(Some("test address"), job, event_type, &self.address),
            )
            .with("evidence", evidence.clone())
        };
        let mut events: Vec<EmailEvent> = Vec::new();
        match self.outcome {
            Outcome::Delivered | Outcome::Complained => {
                events.extend(of_recipient(job, &result, at_ms));
                let smtp = smtp_field(250, Some("2.0.0"), &result.reply_text);
                events.push(event(EventType::Delivered).with("smtp", smtp));
                if self.outcome == Outcome::Complained {
                    events.push(event(EventType::Complained));
                }
            }
            Outcome::Bounced | Outcome::Unknown => {
                events.extend(of_recipient(job, &result, at_ms));
            }
            Outcome::Suppressed => events.push(event(EventType::Suppressed).with(
                "suppression",
                json!({
                    "reason": "test_address",
                    "scope": "all",
                    "message_id": null,
                    "created_at": rfc3339_ms(at_ms),
                    "expires_at": null,
                }),
            )),
        }
        events
    }
}

/// The rows, timeline entries and events of `simulated`, in order.
pub fn record(
    job: &DeliveryJob,
    simulated: &[Simulated],
    at_ms: u64,
) -> (Vec<RecipientResult>, Vec<Event>, Vec<EmailEvent>) {
    let mut rows = Vec::new();
    let mut timeline = Vec::new();
    let mut events = Vec::new();
    for s in simulated {
        rows.push(s.result());
        timeline.push(s.timeline());
        events.extend(s.email_events(job, at_ms));
    }
    (rows, timeline, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_recipients_are_test_addresses() {
        let table: &[(&str, Option<Outcome>)] = &[
            ("delivered@test.edgerelay.invalid", Some(Outcome::Delivered)),
            ("Delivered@TEST.edgerelay.INVALID", Some(Outcome::Delivered)),
            (
                "delivered+signup-42@test.edgerelay.invalid",
                Some(Outcome::Delivered),
            ),
            ("bounced@test.edgerelay.invalid", Some(Outcome::Bounced)),
            ("bounced+a+b@test.edgerelay.invalid", Some(Outcome::Bounced)),
            (
                "complained@test.edgerelay.invalid",
                Some(Outcome::Complained),
            ),
            (
                "suppressed@test.edgerelay.invalid",
                Some(Outcome::Suppressed),
            ),
            ("someone@test.edgerelay.invalid", Some(Outcome::Unknown)),
            ("+delivered@test.edgerelay.invalid", Some(Outcome::Unknown)),
            // Only the domain itself: not a subdomain, not a lookalike.
            ("delivered@x.test.edgerelay.invalid", None),
            ("delivered@test.edgerelay.invalid.example.com", None),
            ("delivered@example.com", None),
            ("delivered", None),
        ];
        for (address, expected) in table {
            assert_eq!(outcome(address), *expected, "{address}");
        }
    }

    fn job(rcpt_to: &[&str]) -> DeliveryJob {
        DeliveryJob {
            rcpt_to: rcpt_to.iter().map(|a| a.to_string()).collect(),
            tenant: "acme".into(),
            ..DeliveryJob::sample("m1", "")
        }
    }

    #[test]
    fn a_job_is_split_in_order() {
        let j = job(&[
            "a@example.net",
            "bounced@test.edgerelay.invalid",
            "b@example.net",
        ]);
        let s = split(&j.rcpt_to);
        assert_eq!(s.rcpt_to, ["a@example.net", "b@example.net"]);
        assert_eq!(
            s.simulated,
            [Simulated {
                address: "bounced@test.edgerelay.invalid".into(),
                outcome: Outcome::Bounced
            }]
        );
    }

    /// (recipient, row state, reply code, event types in order)
    #[test]
    fn each_test_address_records_its_outcome() {
        let table: &[(&str, RecipientState, Option<u16>, &[&str])] = &[
            (
                "delivered@test.edgerelay.invalid",
                RecipientState::Delivered,
                Some(250),
                &["email.sent", "email.delivered"],
            ),
            (
                "bounced+x@test.edgerelay.invalid",
                RecipientState::Failed,
                Some(550),
                &["email.bounced"],
            ),
            (
                "complained@test.edgerelay.invalid",
                RecipientState::Delivered,
                Some(250),
                &["email.sent", "email.delivered", "email.complained"],
            ),
            (
                "suppressed@test.edgerelay.invalid",
                RecipientState::Suppressed,
                None,
                &["email.suppressed"],
            ),
            (
                "nobody@test.edgerelay.invalid",
                RecipientState::Failed,
                Some(550),
                &["email.bounced"],
            ),
        ];
        for (address, state, code, types) in table {
            let j = job(&[address]);
            let s = split(&j.rcpt_to);
            assert!(s.rcpt_to.is_empty());
            let (rows, timeline, events) = record(&j, &s.simulated, 5_000);
            assert_eq!(
                (rows[0].state, rows[0].reply_code),
                (*state, *code),
                "{address}"
            );
            assert!(timeline[0].detail.starts_with(address), "{address}");
            let got: Vec<String> = events
                .iter()
                .map(|e| e.payload()["type"].as_str().unwrap_or("").to_string())
                .collect();
            assert_eq!(got, *types, "{address}");
            for e in &events {
                assert_eq!(e.recipient.as_deref(), Some(*address));
                assert_eq!((e.tenant.as_str(), e.message_id.as_str()), ("acme", "m1"));
            }
            // The same job recorded again gives the same event ids.
            let again = record(&j, &s.simulated, 9_000).2;
            let ids = |es: &[EmailEvent]| es.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&events), ids(&again), "{address}");
        }
    }

    #[test]
    fn a_bounce_is_hard_and_an_unknown_name_says_which_exist() {
        let j = job(&["bounced@test.edgerelay.invalid", "x@test.edgerelay.invalid"]);
        let (_, _, events) = record(&j, &split(&j.rcpt_to).simulated, 5_000);
        let bounce = events[0].payload();
        assert_eq!(bounce["data"]["bounce"]["type"], "hard");
        assert_eq!(bounce["data"]["smtp"]["code"], 550);
        let unknown = events[1].payload();
        let text = unknown["data"]["smtp"]["text"].as_str().unwrap_or("");
        assert!(
            text.contains("delivered@") && text.contains("suppressed@"),
            "{text}"
        );
    }
}
