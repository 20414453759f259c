//! What a key sees of its messages: the JSON of `GET /v1/messages/{id}` and
//! of a `GET /v1/messages` page (the `202` of an accepted message is
//! `http::accepted`'s).
//!
//! Owns those shapes, built from the stored rows as they come out of the
//! database (numbers as D1 hands them over). Must not: perform I/O or decide
//! anything about a message; the edge fetches the rows and hands them over.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::delivery::RecipientState;
use crate::events::time::rfc3339_ms;
use crate::queue::{DEFAULT_STREAM, EventKind};

use super::listing::Cursor;

/// One message row (D1 gives numbers as floating point).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageRow {
    pub id: String,
    pub status: String,
    pub mail_from: String,
    /// The recipients as a JSON list.
    pub rcpt_to: String,
    pub attempts: f64,
    pub last_error: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    pub next_attempt_at: Option<f64>,
    pub producer_id: Option<String>,
    /// The tags as a JSON object.
    pub tags: Option<String>,
    /// The message stream (`None` on rows from before streams).
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// When a scheduled message is due, Unix seconds.
    #[serde(default)]
    pub scheduled_at: Option<f64>,
}

/// One row of the event stream (`email_events`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EmailEventRow {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub recipient: Option<String>,
    /// Unix milliseconds.
    pub created_at: f64,
    /// The payload as delivered: `{type, created_at, data}`.
    pub payload: String,
}

/// Everything stored about one message, as the edge read it.
pub struct Stored<'a> {
    pub message: &'a MessageRow,
    pub events: &'a [EventRow],
    pub recipients: &'a [RecipientRow],
    pub email_events: &'a [EmailEventRow],
}

/// One event on a message's timeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventRow {
    pub at: f64,
    pub kind: String,
    pub detail: Option<String>,
}

/// One recipient's recorded result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecipientRow {
    pub address: String,
    pub state: String,
    pub attempts: f64,
    pub reply_code: Option<f64>,
    pub enhanced_code: Option<String>,
    pub reply_text: Option<String>,
    pub updated_at: f64,
}

/// A message as listed: its record, schedule and origin.
pub fn summary(r: &MessageRow) -> Value {
    json!({
        "id": r.id,
        "status": r.status,
        "mail_from": r.mail_from,
        "rcpt_to": serde_json::from_str::<Value>(&r.rcpt_to).unwrap_or(Value::Null),
        "attempts": r.attempts as u64,
        "last_error": r.last_error,
        "created_at": r.created_at as u64,
        "updated_at": r.updated_at as u64,
        "next_attempt_at": r.next_attempt_at.map(|t| t as u64),
        "producer": r.producer_id,
        "tags": tags(r.tags.as_deref()),
        "stream": r.stream.as_deref().unwrap_or(DEFAULT_STREAM),
        "subject": r.subject,
        "scheduled_at": r.scheduled_at.map(|t| rfc3339_ms(t as u64 * 1000)),
    })
}

/// A message in full: the summary, its operational timeline (`events`), its
/// event stream (`email_events`, what webhooks deliver) in order, and every
/// recipient.
pub fn detail(stored: &Stored<'_>) -> Value {
    let mut body = summary(stored.message);
    body["events"] = stored
        .events
        .iter()
        .map(|e| json!({"at": e.at as u64, "kind": e.kind, "detail": e.detail}))
        .collect();
    body["email_events"] = stored.email_events.iter().map(email_event).collect();
    body["warnings"] = stored
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Warning.as_str())
        .filter_map(|e| e.detail.clone())
        .collect();
    if let Some(parent) = crate::accept::send::parent_of(&stored.message.id) {
        body["parent_id"] = json!(parent);
    }
    let rcpt_to: Value = serde_json::from_str(&stored.message.rcpt_to).unwrap_or(Value::Null);
    body["recipients"] = Value::Array(recipients_view(&rcpt_to, stored.recipients));
    body
}

/// One event of the stream: its id, type and time, and the payload's data.
fn email_event(e: &EmailEventRow) -> Value {
    let payload: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
    json!({
        "id": e.id,
        "type": e.event_type,
        "created_at": payload.get("created_at").cloned().unwrap_or(Value::Null),
        "recipient": e.recipient,
        "data": payload.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// One page of a list: at most `limit` messages, and the cursor of the next
/// page when the query returned one row more than that.
pub fn page(mut rows: Vec<MessageRow>, limit: u32) -> Value {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = rows.last().filter(|_| more).map(|r| {
        Cursor {
            created_at: r.created_at as u64,
            id: r.id.clone(),
        }
        .encode()
    });
    let data: Vec<Value> = rows.iter().map(summary).collect();
    json!({"data": data, "next_cursor": next_cursor})
}

/// Recipients with no attempt yet (pending) first, then the recorded ones.
fn recipients_view(rcpt_to: &Value, rows: &[RecipientRow]) -> Vec<Value> {
    let pending = rcpt_to
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|address| !rows.iter().any(|r| r.address.eq_ignore_ascii_case(address)))
        .map(|address| {
            json!({"address": address, "state": RecipientState::Pending.as_str(), "attempts": 0,
                   "reply_code": null, "enhanced_code": null, "reply_text": null})
        });
    let recorded = rows.iter().map(|r| {
        json!({
            "address": r.address,
            "state": r.state,
            "attempts": r.attempts as u64,
            "reply_code": r.reply_code.map(|c| c as u64),
            "enhanced_code": r.enhanced_code,
            "reply_text": r.reply_text,
            "updated_at": r.updated_at as u64,
        })
    });
    pending.chain(recorded).collect()
}

fn tags(stored: Option<&str>) -> Value {
    stored
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Object(Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created_at: f64) -> MessageRow {
        MessageRow {
            id: id.into(),
            status: "deferred".into(),
            mail_from: "a@example.com".into(),
            rcpt_to: r#"["b@x.net","c@x.net"]"#.into(),
            attempts: 1.0,
            last_error: Some("451 busy".into()),
            created_at,
            updated_at: created_at + 5.0,
            next_attempt_at: Some(created_at + 60.0),
            producer_id: None,
            tags: Some(r#"{"kind":"welcome"}"#.into()),
            stream: Some("marketing".into()),
            scheduled_at: None,
            subject: Some("Welcome".into()),
        }
    }

    #[test]
    fn a_message_in_full() {
        let events = [
            EventRow {
                at: 1_700_000_000_123.0,
                kind: "accepted".into(),
                detail: None,
            },
            EventRow {
                at: 1_700_000_000_124.0,
                kind: "warning".into(),
                detail: Some("unsubscribe_base_url_missing: ...".into()),
            },
            EventRow {
                at: 1_700_000_001_000.0,
                kind: "deferred".into(),
                detail: Some("451 busy".into()),
            },
        ];
        let recipients = [RecipientRow {
            address: "B@x.net".into(),
            state: "deferred".into(),
            attempts: 1.0,
            reply_code: Some(451.0),
            enhanced_code: Some("4.3.0".into()),
            reply_text: Some("busy".into()),
            updated_at: 1_700_000_001_000.0,
        }];
        let email_events = [EmailEventRow {
            id: "evt_1".into(),
            event_type: "email.delivery_delayed".into(),
            recipient: Some("B@x.net".into()),
            created_at: 1_700_000_001_000.0,
            payload: json!({"type": "email.delivery_delayed",
                            "created_at": "2023-11-14T22:13:21.000Z",
                            "data": {"email_id": "m1", "recipient": "B@x.net"}})
            .to_string(),
        }];
        let got = detail(&Stored {
            message: &row("m1", 1_700_000_000.0),
            events: &events,
            recipients: &recipients,
            email_events: &email_events,
        });
        let want = json!({
            "id": "m1",
            "status": "deferred",
            "mail_from": "a@example.com",
            "rcpt_to": ["b@x.net", "c@x.net"],
            "attempts": 1,
            "last_error": "451 busy",
            "created_at": 1_700_000_000u64,
            "updated_at": 1_700_000_005u64,
            "next_attempt_at": 1_700_000_060u64,
            "producer": null,
            "tags": {"kind": "welcome"},
            "stream": "marketing",
            "subject": "Welcome",
            "scheduled_at": null,
            "email_events": [
                {"id": "evt_1", "type": "email.delivery_delayed",
                 "created_at": "2023-11-14T22:13:21.000Z", "recipient": "B@x.net",
                 "data": {"email_id": "m1", "recipient": "B@x.net"}},
            ],
            "events": [
                {"at": 1_700_000_000_123u64, "kind": "accepted", "detail": null},
                {"at": 1_700_000_000_124u64, "kind": "warning",
                 "detail": "unsubscribe_base_url_missing: ..."},
                {"at": 1_700_000_001_000u64, "kind": "deferred", "detail": "451 busy"},
            ],
            "warnings": ["unsubscribe_base_url_missing: ..."],
            "recipients": [
                // Not attempted yet; the recorded one matches without regard to case.
                {"address": "c@x.net", "state": "pending", "attempts": 0,
                 "reply_code": null, "enhanced_code": null, "reply_text": null},
                {"address": "B@x.net", "state": "deferred", "attempts": 1, "reply_code": 451,
                 "enhanced_code": "4.3.0", "reply_text": "busy",
                 "updated_at": 1_700_000_001_000u64},
            ],
        });
        assert_eq!(got, want);
        // A copy of a message sent one copy per recipient names its parent.
        let parent = "0123456789abcdef0123456789abcdef";
        let got = detail(&Stored {
            message: &row(&format!("{parent}-2"), 1.0),
            events: &[],
            recipients: &[],
            email_events: &[],
        });
        assert_eq!(got["parent_id"], parent);
        assert_eq!(got["warnings"], json!([]));
    }

    #[test]
    fn unreadable_stored_json_shows_as_empty() {
        let mut r = row("m1", 1.0);
        r.rcpt_to = "not json".into();
        r.tags = None;
        r.stream = None;
        let got = detail(&Stored {
            message: &r,
            events: &[],
            recipients: &[],
            email_events: &[],
        });
        assert_eq!(got["stream"], "transactional");
        assert_eq!(got["rcpt_to"], Value::Null);
        assert_eq!(got["tags"], json!({}));
        assert_eq!(got["recipients"], json!([]));
    }

    #[test]
    fn pages_and_cursors() {
        let rows = |n: usize| -> Vec<MessageRow> {
            (0..n)
                .map(|i| row(&format!("m{i}"), 1_000.0 - i as f64))
                .collect()
        };
        // (rows the query returned, limit) -> (listed, a next page)
        for (returned, limit, listed, more) in
            [(3, 2, 2, true), (2, 2, 2, false), (0, 20, 0, false)]
        {
            let got = page(rows(returned), limit);
            let data = got["data"].as_array().unwrap();
            assert_eq!(data.len(), listed, "{returned} rows, limit {limit}");
            match (more, got["next_cursor"].as_str()) {
                (true, Some(cursor)) => {
                    let last = &data[listed - 1];
                    let c = Cursor::decode(cursor).unwrap();
                    assert_eq!(c.id, last["id"].as_str().unwrap());
                    assert_eq!(c.created_at, last["created_at"].as_u64().unwrap());
                }
                (false, None) => assert_eq!(got["next_cursor"], Value::Null),
                other => panic!("{returned} rows, limit {limit}: {other:?}"),
            }
        }
        assert_eq!(page(rows(1), 5)["data"][0], summary(&rows(1)[0]));
    }
}
