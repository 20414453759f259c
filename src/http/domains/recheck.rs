//! Re-verification of sending domains on the cron trigger: which domains
//! are due (the oldest check first, at most `DOMAIN_RECHECK_LIMIT` a run,
//! each at most every `DOMAIN_RECHECK_MINUTES`), which records changed for
//! the worse since the last report (a record that matched and now is
//! missing or does not match), and the `domain.updated` event that says so,
//! naming each record and its problem, before mail starts failing DMARC.
//!
//! A run that could not ask DNS about a record changes nothing about it: it
//! is neither a problem nor stored as the last report. A failed
//! re-verification warns; it does not stop the domain's mail (the stored
//! status stays), since DNS answers can flap and the operator decides.
//! Must not: perform I/O or read the clock.

use serde_json::{Map, Value, json};

use crate::events::model::event_id;
use crate::events::{EmailEvent, EventType};

use super::rotation::{self, Phase};
use super::verify::{RecordReport, Report};

/// The last check a domain may have had to be due at `now_ms`.
pub fn checked_before(now_ms: u64, recheck_after_ms: u64) -> u64 {
    now_ms.saturating_sub(recheck_after_ms)
}

/// Whether DNS answered about every TXT record of `report`: only such a
/// report is compared and stored.
pub fn complete(report: &Report) -> bool {
    report
        .records
        .iter()
        .filter(|r| r.record_type == "TXT")
        .all(|r| r.found.is_some())
}

/// One record that got worse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub purpose: String,
    pub name: String,
    pub selector: Option<String>,
    pub required: bool,
    /// `missing` (it was found, now it is not) or `mismatch`.
    pub problem: &'static str,
    pub problems: Vec<String>,
}

/// `(purpose, name, selector)` of the records that matched in the stored
/// report (its JSON).
fn matched_before(previous: &str) -> Vec<(String, String, Option<String>)> {
    let Ok(value) = serde_json::from_str::<Value>(previous) else {
        return Vec::new();
    };
    let Some(records) = value.get("records").and_then(Value::as_array) else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|r| r.get("matches") == Some(&Value::Bool(true)))
        .filter_map(|r| {
            Some((
                r.get("purpose")?.as_str()?.to_string(),
                r.get("name")?.as_str()?.to_string(),
                r.get("selector")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ))
        })
        .collect()
}

/// The records that matched in `previous` (the stored report's JSON) and do
/// not in `now`.
pub fn changes(previous: Option<&str>, now: &Report) -> Vec<Change> {
    let before = previous.map(matched_before).unwrap_or_default();
    now.records
        .iter()
        .filter(|r| r.matches == Some(false))
        .filter(|r| {
            before.iter().any(|(purpose, name, selector)| {
                purpose == r.purpose.as_str()
                    && name.eq_ignore_ascii_case(&r.name)
                    && selector == &r.selector
            })
        })
        .map(change)
        .collect()
}

fn change(r: &RecordReport) -> Change {
    Change {
        purpose: r.purpose.as_str().to_string(),
        name: r.name.clone(),
        selector: r.selector.clone(),
        required: r.required,
        problem: if r.found == Some(false) {
            "missing"
        } else {
            "mismatch"
        },
        problems: r.problems.clone(),
    }
}

/// What a re-verification raises an event for.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Records that matched and no longer do.
    Records(Vec<Change>),
    /// A rotation switched to its new keys.
    KeySwitched(Phase),
}

/// The `domain.updated` event of `update`: about a domain, not a message
/// (its `message_id` is empty).
pub fn updated_event(
    tenant: &str,
    domain: &str,
    update: &Update,
    at_ms: u64,
    entropy: &[u8; 16],
) -> EmailEvent {
    let mut data = Map::new();
    data.insert("domain".into(), json!(domain));
    match update {
        Update::Records(changes) => {
            data.insert("reason".into(), json!("records_changed"));
            let records: Vec<Value> = changes
                .iter()
                .map(|c| {
                    json!({
                        "purpose": c.purpose,
                        "name": c.name,
                        "selector": c.selector,
                        "required": c.required,
                        "problem": c.problem,
                        "problems": c.problems,
                    })
                })
                .collect();
            data.insert("records".into(), json!(records));
        }
        Update::KeySwitched(phase) => {
            data.insert("reason".into(), json!("key_switched"));
            data.insert("records".into(), json!([]));
            data.insert("rotation".into(), rotation::to_json(*phase));
        }
    }
    EmailEvent {
        id: event_id(entropy),
        tenant: tenant.to_string(),
        message_id: String::new(),
        recipient: None,
        event_type: EventType::DomainUpdated,
        created_at_ms: at_ms,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::domains::records::Purpose;

    fn record(
        purpose: Purpose,
        name: &str,
        found: Option<bool>,
        matches: Option<bool>,
    ) -> RecordReport {
        RecordReport {
            purpose,
            record_type: "TXT",
            name: name.to_string(),
            selector: (purpose == Purpose::Dkim).then(|| "er1-rsa".to_string()),
            required: purpose == Purpose::Dkim,
            found,
            matches,
            problems: if matches == Some(false) {
                vec!["it is wrong".to_string()]
            } else {
                Vec::new()
            },
            published: Vec::new(),
        }
    }

    fn report(records: Vec<RecordReport>) -> Report {
        Report {
            verified: false,
            records,
        }
    }

    #[test]
    fn only_records_that_matched_and_no_longer_do_are_changes() {
        let ok = report(vec![
            record(
                Purpose::Dkim,
                "er1-rsa._domainkey.a.example",
                Some(true),
                Some(true),
            ),
            record(Purpose::Spf, "a.example", Some(true), Some(true)),
            record(Purpose::Dmarc, "_dmarc.a.example", Some(false), Some(false)),
        ]);
        let previous = ok.to_json().to_string();
        let now = report(vec![
            // Gone.
            record(
                Purpose::Dkim,
                "er1-rsa._domainkey.a.example",
                Some(false),
                Some(false),
            ),
            // Still fine.
            record(Purpose::Spf, "a.example", Some(true), Some(true)),
            // Never matched: not news.
            record(Purpose::Dmarc, "_dmarc.a.example", Some(false), Some(false)),
        ]);
        let got = changes(Some(&previous), &now);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].purpose.as_str(), got[0].problem, got[0].required),
            ("dkim", "missing", true)
        );
        let mismatch = report(vec![record(
            Purpose::Spf,
            "a.example",
            Some(true),
            Some(false),
        )]);
        assert_eq!(changes(Some(&previous), &mismatch)[0].problem, "mismatch");
        // No stored report, or an unreadable one: nothing to compare with.
        assert!(changes(None, &now).is_empty());
        assert!(changes(Some("{not json"), &now).is_empty());
        assert!(changes(Some(&previous), &ok).is_empty());
    }

    #[test]
    fn a_report_dns_did_not_answer_is_not_complete() {
        let answered = report(vec![record(
            Purpose::Spf,
            "a.example",
            Some(false),
            Some(false),
        )]);
        assert!(complete(&answered));
        let unanswered = report(vec![
            record(Purpose::Spf, "a.example", Some(true), Some(true)),
            record(Purpose::Dmarc, "_dmarc.a.example", None, None),
        ]);
        assert!(!complete(&unanswered));
    }

    #[test]
    fn due_domains_and_their_event() {
        assert_eq!(checked_before(10_000, 3_000), 7_000);
        assert_eq!(checked_before(1_000, 3_000), 0);
        let now = report(vec![record(
            Purpose::Dkim,
            "er1-rsa._domainkey.a.example",
            Some(false),
            Some(false),
        )]);
        let previous = report(vec![record(
            Purpose::Dkim,
            "er1-rsa._domainkey.a.example",
            Some(true),
            Some(true),
        )])
        .to_json()
        .to_string();
        let update = Update::Records(changes(Some(&previous), &now));
        let event = updated_event("acme", "a.example", &update, 5, &[1; 16]);
        assert_eq!(event.event_type, EventType::DomainUpdated);
        assert!(event.message_id.is_empty());
        assert_eq!(event.data["domain"], "a.example");
        assert_eq!(event.data["reason"], "records_changed");
        assert_eq!(
            event.data["records"][0]["name"],
            "er1-rsa._domainkey.a.example"
        );
        assert_eq!(event.data["records"][0]["problem"], "missing");
        assert_eq!(event.data["records"][0]["problems"][0], "it is wrong");
        let switched = updated_event(
            "acme",
            "a.example",
            &Update::KeySwitched(Phase::Steady { signing: 2 }),
            5,
            &[1; 16],
        );
        assert_eq!(switched.data["reason"], "key_switched");
        assert_eq!(switched.data["rotation"]["signing_generation"], 2);
    }
}
