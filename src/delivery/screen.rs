//! Screening a job's recipients against its tenant's suppression list, before
//! any upstream sees an address.
//!
//! Owns: which recipients of a job are held back (the entry that applies to
//! each, by the message's stream and topic, see `events::suppression`), what
//! is recorded for them (state `suppressed`, the entry in the reply text,
//! one `suppressed` event each on the timeline), and how a job none of whose
//! recipients is left ends: settled at once, with the status all its
//! recipients add up to (`suppressed` when every one is, see
//! `recipients::message_status`). The others go on to their attempt.
//! Must not: perform I/O or read the clock; the edge reads the entries,
//! passes the time in and writes what this returns.

use serde_json::json;

use crate::events::suppression::{Entry, address_key, applying, erased_address};
use crate::events::time::rfc3339_ms;
use crate::events::{EmailEvent, EventType};
use crate::queue::{DeliveryJob, EventKind};

use super::recipients::{RecipientResult, RecipientState, message_status, with_results};
use super::settle::{Event, FollowUp, Record, Settlement};

/// The detail of the event that ends a message whose remaining recipients
/// are all held back.
pub const ALL_HELD_DETAIL: &str =
    "every recipient left is on the suppression list; nothing was sent";

/// One recipient held back, and the entry that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub address: String,
    pub entry: Entry,
}

/// A job's recipients, screened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// The recipients that may be sent the message, in the job's order.
    pub rcpt_to: Vec<String>,
    pub held: Vec<Held>,
}

/// Splits `job`'s recipients into those that may be sent the message and
/// those an active entry of `entries` holds back. `entries` may hold any
/// tenant's and any address's rows: only the job's tenant's count.
pub fn screen(job: &DeliveryJob, entries: &[Entry], now_ms: u64) -> Screen {
    let tenant = job.tenant();
    let own: Vec<Entry> = entries
        .iter()
        .filter(|e| e.tenant == tenant)
        .cloned()
        .collect();
    let mut screened = Screen {
        rcpt_to: Vec::new(),
        held: Vec::new(),
    };
    for address in &job.rcpt_to {
        match applying(&own, address, job.stream(), job.topic.as_deref(), now_ms) {
            Some(entry) => screened.held.push(Held {
                address: address.clone(),
                entry: entry.clone(),
            }),
            None => screened.rcpt_to.push(address.clone()),
        }
    }
    screened
}

/// The addresses to look up for `jobs`, as the list keeps them (lower-cased,
/// and hashed as an erased address is kept), once each, with their tenants:
/// `(tenant, address)`.
pub fn lookups(jobs: &[&DeliveryJob]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for job in jobs {
        let tenant = job.tenant();
        for address in &job.rcpt_to {
            for key in [address_key(address), erased_address(tenant, address)] {
                let pair = (tenant.to_string(), key);
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
    }
    pairs
}

impl Held {
    /// What the reply text of a held recipient says: the entry's reason and scope.
    pub fn explanation(&self) -> String {
        let mut text = format!(
            "suppressed: on the suppression list ({}, scope {})",
            self.entry.reason.as_str(),
            self.entry.scope.as_stored()
        );
        if let Some(id) = &self.entry.message_id {
            text.push_str(&format!(" since message {id}"));
        }
        text
    }

    /// The recipient's row: `suppressed`, never sent.
    pub fn result(&self) -> RecipientResult {
        RecipientResult {
            address: self.address.clone(),
            state: RecipientState::Suppressed,
            reply_code: None,
            enhanced_code: None,
            reply_text: self.explanation(),
        }
    }

    /// Its event on the message's timeline.
    pub fn event(&self) -> Event {
        Event {
            kind: EventKind::Suppressed,
            detail: format!("{}: {}", self.address, self.explanation()),
        }
    }
}

/// The `email.suppressed` event of each held recipient, with the entry
/// that held it (`data.suppression`); `entropy` gives each event id's
/// random bytes.
pub fn email_events(
    job: &DeliveryJob,
    held: &[Held],
    now_ms: u64,
    entropy: &mut dyn FnMut() -> [u8; 16],
) -> Vec<EmailEvent> {
    held.iter()
        .map(|h| {
            let e = &h.entry;
            EmailEvent::for_job(
                job,
                EventType::Suppressed,
                Some(&h.address),
                now_ms,
                &entropy(),
            )
            .with(
                "suppression",
                json!({
                    "reason": e.reason.as_str(),
                    "scope": e.scope.as_stored(),
                    "message_id": e.message_id,
                    "created_at": rfc3339_ms(e.created_at_ms),
                    "expires_at": e.expires_at_ms.map(rfc3339_ms),
                }),
            )
        })
        .collect()
}

/// The rows and timeline events of the held recipients of a job that goes
/// on to its attempt with the others (its status is left to that attempt).
pub fn held_record(held: &[Held]) -> (Vec<RecipientResult>, Vec<Event>) {
    (
        held.iter().map(Held::result).collect(),
        held.iter().map(Held::event).collect(),
    )
}

/// Ends a job none of whose recipients is left after screening: the held
/// ones are recorded, and the status is what all the message's recipients
/// add up to (`recorded` holds the states recorded before; a retry's held
/// recipient leaves the ones delivered earlier as they are). Acknowledged at
/// once; the stored body, if any, is released.
pub fn settle_all_held(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    held: &[Held],
) -> Settlement {
    let (results, events) = held_record(held);
    settle_none_left(job, recorded, results, events, ALL_HELD_DETAIL)
}

/// The detail of the event that ends a message whose remaining recipients
/// are all test addresses or held back.
pub const NONE_SENT_DETAIL: &str =
    "every recipient left is a test address or on the suppression list; no upstream was contacted";

/// Ends a job none of whose recipients goes upstream: `results` and
/// `events` are the rows and timeline entries of the held recipients and
/// the test addresses, `detail` says why nothing was sent (see
/// [`settle_all_held`]).
pub fn settle_none_left(
    job: &DeliveryJob,
    recorded: &[(String, RecipientState)],
    results: Vec<RecipientResult>,
    mut events: Vec<Event>,
    detail: &str,
) -> Settlement {
    let mut states = recorded.to_vec();
    with_results(&mut states, results.clone());
    let list: Vec<RecipientState> = states.iter().map(|(_, s)| *s).collect();
    let status = message_status(&list);
    events.push(Event {
        kind: EventKind::settled_as(status),
        detail: detail.to_string(),
    });
    Settlement {
        message_id: job.id.clone(),
        record: Some(Record {
            recipients: results,
            recipients_recorded: false,
            counts_attempt: false,
            events,
            status,
            last_error: None,
            next_attempt_at: None,
            suppress: Vec::new(),
        }),
        follow_up: FollowUp::Ack,
        release_body: job.body_ref.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::suppression::{Reason, Scope};
    use crate::queue::MessageStatus;

    fn entry(tenant: &str, address: &str, scope: Scope, expires_at_ms: Option<u64>) -> Entry {
        Entry {
            tenant: tenant.into(),
            address: address.into(),
            scope,
            reason: Reason::HardBounce,
            message_id: Some("msg_0".into()),
            detail: None,
            created_at_ms: 1_000,
            expires_at_ms,
        }
    }

    fn job(rcpt_to: &[&str], stream: Option<&str>, topic: Option<&str>) -> DeliveryJob {
        DeliveryJob {
            rcpt_to: rcpt_to.iter().map(|a| a.to_string()).collect(),
            tenant: "acme".into(),
            stream: stream.map(str::to_string),
            topic: topic.map(str::to_string),
            body_ref: Some("bodies/m1.eml".into()),
            ..DeliveryJob::sample("m1", "")
        }
    }

    /// (recipients, stream, topic) -> (sent, held), against one list.
    #[test]
    fn screening_table() {
        let list = vec![
            entry("acme", "gone@x.net", Scope::All, None),
            entry(
                "acme",
                "news@x.net",
                Scope::Stream("marketing".into()),
                None,
            ),
            entry("acme", "weekly@x.net", Scope::Topic("weekly".into()), None),
            entry("acme", "lapsed@x.net", Scope::All, Some(2_000)),
            // Another tenant's entry never holds back this tenant's mail.
            entry("other", "ok@x.net", Scope::All, None),
        ];
        type Row<'a> = (
            &'a [&'a str],
            Option<&'a str>,
            Option<&'a str>,
            &'a [&'a str],
            &'a [&'a str],
        );
        let table: &[Row<'_>] = &[
            (&["ok@x.net"], None, None, &["ok@x.net"], &[]),
            (
                &["ok@x.net", "Gone@X.net"],
                None,
                None,
                &["ok@x.net"],
                &["Gone@X.net"],
            ),
            // A marketing unsubscribe never holds back transactional mail.
            (&["news@x.net"], None, None, &["news@x.net"], &[]),
            (
                &["news@x.net"],
                Some("marketing"),
                None,
                &[],
                &["news@x.net"],
            ),
            (
                &["weekly@x.net"],
                Some("marketing"),
                Some("offers"),
                &["weekly@x.net"],
                &[],
            ),
            (
                &["weekly@x.net"],
                Some("marketing"),
                Some("weekly"),
                &[],
                &["weekly@x.net"],
            ),
            // Expired at 2 000 ms; the screening runs at 5 000.
            (&["lapsed@x.net"], None, None, &["lapsed@x.net"], &[]),
        ];
        for (rcpts, stream, topic, sent, held) in table {
            let got = screen(&job(rcpts, *stream, *topic), &list, 5_000);
            let held_got: Vec<&str> = got.held.iter().map(|h| h.address.as_str()).collect();
            assert_eq!(got.rcpt_to, *sent, "{rcpts:?} {stream:?} {topic:?}");
            assert_eq!(held_got, *held, "{rcpts:?} {stream:?} {topic:?}");
        }
    }

    #[test]
    fn lookups_are_per_tenant_and_lower_cased_once() {
        let a = job(&["A@x.net", "a@x.net", "b@x.net"], None, None);
        let mut b = job(&["a@x.net"], None, None);
        b.tenant = "other".into();
        let pair = |t: &str, a: &str| (t.to_string(), a.to_string());
        let hashed = |t: &str, a: &str| (t.to_string(), erased_address(t, a));
        assert_eq!(
            lookups(&[&a, &b]),
            vec![
                pair("acme", "a@x.net"),
                hashed("acme", "a@x.net"),
                pair("acme", "b@x.net"),
                hashed("acme", "b@x.net"),
                pair("other", "a@x.net"),
                hashed("other", "a@x.net"),
            ]
        );
    }

    #[test]
    fn an_erased_address_is_held_back_by_its_hashed_entry() {
        let list = vec![crate::events::erasure::erased_entry(
            "acme",
            "Gone@x.net",
            1_000,
        )];
        let got = screen(&job(&["GONE@x.net", "ok@x.net"], None, None), &list, 5_000);
        assert_eq!(got.rcpt_to, ["ok@x.net"]);
        assert_eq!(got.held.len(), 1);
        assert!(got.held[0].explanation().contains("erased"));
        // The lookups the edge makes find the entry as stored.
        let job = job(&["gone@x.net"], None, None);
        assert!(lookups(&[&job]).contains(&("acme".to_string(), list[0].address.clone())));
    }

    #[test]
    fn held_recipients_are_recorded_suppressed_with_their_entry() {
        let list = vec![entry("acme", "gone@x.net", Scope::All, None)];
        let got = screen(&job(&["gone@x.net", "ok@x.net"], None, None), &list, 5_000);
        let (rows, events) = held_record(&got.held);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, RecipientState::Suppressed);
        assert_eq!(rows[0].reply_code, None);
        assert!(
            rows[0].reply_text.contains("hard_bounce"),
            "{}",
            rows[0].reply_text
        );
        assert!(rows[0].reply_text.contains("scope all"));
        assert!(rows[0].reply_text.contains("msg_0"));
        assert_eq!(events[0].kind, EventKind::Suppressed);
        assert!(events[0].detail.starts_with("gone@x.net: suppressed"));
        let mut n = 0u8;
        let mut entropy = || {
            n += 1;
            [n; 16]
        };
        let j = job(&["gone@x.net", "ok@x.net"], None, None);
        let stream = email_events(&j, &got.held, 7_000, &mut entropy);
        assert_eq!(stream.len(), 1);
        let e = &stream[0];
        assert_eq!(e.event_type, EventType::Suppressed);
        assert_eq!((e.tenant.as_str(), e.message_id.as_str()), ("acme", "m1"));
        assert_eq!(e.recipient.as_deref(), Some("gone@x.net"));
        assert_eq!(e.id, format!("evt_{}", "01".repeat(16)));
        let payload = e.payload();
        assert_eq!(payload["type"], "email.suppressed");
        assert_eq!(payload["data"]["recipient"], "gone@x.net");
        assert_eq!(payload["data"]["suppression"]["reason"], "hard_bounce");
        assert_eq!(payload["data"]["suppression"]["scope"], "all");
        assert_eq!(payload["data"]["suppression"]["message_id"], "msg_0");
        assert_eq!(
            payload["data"]["suppression"]["expires_at"],
            serde_json::Value::Null
        );
    }

    /// A job none of whose recipients is left: (recorded before, status).
    #[test]
    fn a_job_with_every_recipient_held_ends_at_once() {
        use RecipientState::*;
        let list = vec![entry("acme", "gone@x.net", Scope::All, None)];
        let j = job(&["gone@x.net"], None, None);
        let held = screen(&j, &list, 5_000).held;
        let table: &[(&[(&str, RecipientState)], MessageStatus)] = &[
            (&[], MessageStatus::Suppressed),
            (&[("gone@x.net", Deferred)], MessageStatus::Suppressed),
            (
                &[("ok@x.net", Delivered), ("gone@x.net", Deferred)],
                MessageStatus::Delivered,
            ),
            (&[("bad@x.net", Failed)], MessageStatus::Failed),
        ];
        for (recorded, status) in table {
            let recorded: Vec<(String, RecipientState)> =
                recorded.iter().map(|(a, s)| (a.to_string(), *s)).collect();
            let s = settle_all_held(&j, &recorded, &held);
            let record = s.record.unwrap();
            assert_eq!(record.status, *status, "{recorded:?}");
            assert_eq!(s.follow_up, FollowUp::Ack);
            assert_eq!(s.release_body.as_deref(), Some("bodies/m1.eml"));
            assert_eq!(record.recipients[0].state, Suppressed);
            assert!(!record.counts_attempt);
            let kinds: Vec<EventKind> = record.events.iter().map(|e| e.kind).collect();
            assert_eq!(kinds[0], EventKind::Suppressed);
            assert_eq!(*kinds.last().unwrap(), EventKind::settled_as(*status));
            assert_eq!(record.events.last().unwrap().detail, ALL_HELD_DETAIL);
        }
    }
}
