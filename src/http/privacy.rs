//! `/v1/privacy` without the HTTP: the `email` query both routes take, which
//! of the candidate rows the edge found are about the address (the export),
//! and the answers of an export and an erasure.
//!
//! The edge finds candidates cheaply (the tenant's rows whose text contains
//! the address); this module keeps exactly the rows about it: messages sent
//! to or from it, its own recipient rows, those messages' timelines, events
//! naming it (or its messages as a whole), its suppression entries (plain or
//! erased) and reports naming it.
//! Must not: perform I/O, or look at another tenant's rows (the edge scopes
//! every query to the caller's tenant; this module is handed nothing else).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::accept::error::ApiError;
use crate::events::erasure::{message_names, names};
use crate::events::suppression::{address_key, erased_address};
use crate::message::EmailAddress;

use super::listing::unknown_parameter;

/// The most messages one export or erasure request takes; an answer with
/// `complete: false` says more are left (an erasure is then repeated).
pub const MAX_MESSAGES: u32 = 1000;
/// The most rows of each other table one request reads or changes.
pub const MAX_ROWS: u32 = 1000;

/// Reads the query of `GET /v1/privacy/export` and `DELETE
/// /v1/privacy/data`: one `email`, a valid address; the address as the
/// records are searched for it (trimmed, lower-cased).
pub fn parse_email_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, ApiError> {
    let mut email = None;
    for (name, value) in pairs {
        match name {
            "email" if email.is_none() => {
                let parsed = EmailAddress::parse(value.trim()).map_err(|e| {
                    ApiError::invalid_field(
                        "email",
                        e.rule(),
                        format!("must be one email address ({})", e.rule()),
                    )
                })?;
                email = Some(address_key(&parsed.to_string()));
            }
            "email" => {
                return Err(ApiError::invalid_field(
                    "email",
                    "repeated",
                    "give one email address per request",
                ));
            }
            other => return Err(unknown_parameter(other, "email")),
        }
    }
    email.ok_or_else(|| {
        ApiError::invalid_field("email", "required", "the query must name an `email`")
    })
}

/// The tenant's rows that may be about the address, as the edge read them
/// (each a JSON object of a row's columns).
#[derive(Debug, Default, Clone)]
pub struct Candidates {
    pub messages: Vec<Value>,
    /// Recipient rows of the candidate messages.
    pub recipients: Vec<Value>,
    /// Timeline events of the candidate messages.
    pub events: Vec<Value>,
    pub email_events: Vec<Value>,
    pub suppressions: Vec<Value>,
    pub inbound_reports: Vec<Value>,
    /// Whether a query reached its limit.
    pub truncated: bool,
}

fn text<'v>(row: &'v Value, field: &str) -> Option<&'v str> {
    row.get(field).and_then(Value::as_str)
}

/// A stored JSON text column shown as JSON (a list, an object), or as
/// stored when it does not parse.
fn parsed(row: &mut Value, field: &str) {
    if let Some(Value::String(s)) = row.get(field)
        && let Ok(v) = serde_json::from_str::<Value>(s)
    {
        row[field] = v;
    }
}

/// The ids of the candidate messages that are about `key`.
pub fn message_ids(messages: &[Value], key: &str) -> BTreeSet<String> {
    messages
        .iter()
        .filter(|m| {
            message_names(
                text(m, "rcpt_to").unwrap_or("[]"),
                text(m, "mail_from").unwrap_or(""),
                text(m, "sender"),
                key,
            )
        })
        .filter_map(|m| text(m, "id").map(str::to_string))
        .collect()
}

/// The export of `key` for `tenant`: exactly the candidates about it.
pub fn export(tenant: &str, key: &str, c: Candidates) -> Value {
    let ids = message_ids(&c.messages, key);
    let of_message = |row: &Value| text(row, "message_id").is_some_and(|id| ids.contains(id));
    let messages: Vec<Value> = c
        .messages
        .into_iter()
        .filter(|m| text(m, "id").is_some_and(|id| ids.contains(id)))
        .map(|mut m| {
            for field in ["rcpt_to", "tags", "metadata"] {
                parsed(&mut m, field);
            }
            m
        })
        .collect();
    let recipients: Vec<Value> = c
        .recipients
        .into_iter()
        .filter(|r| of_message(r) && text(r, "address").is_some_and(|a| names(a, key)))
        .collect();
    let events: Vec<Value> = c.events.into_iter().filter(of_message).collect();
    let email_events: Vec<Value> = c
        .email_events
        .into_iter()
        .filter(|e| match text(e, "recipient") {
            Some(r) => names(r, key),
            None => of_message(e),
        })
        .map(|mut e| {
            parsed(&mut e, "payload");
            e
        })
        .collect();
    let hashed = erased_address(tenant, key);
    let suppressions: Vec<Value> = c
        .suppressions
        .into_iter()
        .filter(|s| text(s, "address").is_some_and(|a| a == key || a == hashed))
        .collect();
    let inbound_reports: Vec<Value> = c
        .inbound_reports
        .into_iter()
        .filter(|r| {
            ["recipient", "rcpt_to", "mail_from"]
                .iter()
                .any(|f| text(r, f).is_some_and(|a| names(a, key)))
        })
        .map(|mut r| {
            parsed(&mut r, "events");
            r
        })
        .collect();
    json!({
        "email": key,
        "messages": messages,
        "recipients": recipients,
        "events": events,
        "email_events": email_events,
        "suppressions": suppressions,
        "inbound_reports": inbound_reports,
        "complete": !c.truncated,
    })
}

/// What an erasure did, per table, for its answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erased {
    /// Rows deleted, per table.
    pub deleted: Map<String, Value>,
    /// Rows kept with the address replaced, per table.
    pub anonymised: Map<String, Value>,
    /// Stored bodies deleted from the bucket.
    pub objects: u64,
    /// Whether every row was reached (no limit met).
    pub complete: bool,
}

impl Erased {
    pub fn deleted(&mut self, table: &str, n: u64) {
        add(&mut self.deleted, table, n);
    }

    pub fn anonymised(&mut self, table: &str, n: u64) {
        add(&mut self.anonymised, table, n);
    }
}

fn add(map: &mut Map<String, Value>, table: &str, n: u64) {
    if n == 0 {
        return;
    }
    let now = map.get(table).and_then(Value::as_u64).unwrap_or(0);
    map.insert(table.to_string(), (now + n).into());
}

/// The answer of `DELETE /v1/privacy/data`: what was removed and changed,
/// and the one entry kept (its address only as the hash).
pub fn erased(tenant: &str, key: &str, e: &Erased) -> Value {
    json!({
        "erased": true,
        "deleted": e.deleted,
        "anonymised": e.anonymised,
        "objects_deleted": e.objects,
        "suppression": {
            "address": erased_address(tenant, key),
            "scope": "all",
            "reason": "erased",
        },
        "complete": e.complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_query_table() {
        type Row<'a> = (
            &'a [(&'a str, &'a str)],
            Result<&'a str, (&'a str, &'a str)>,
        );
        let cases: &[Row<'_>] = &[
            (&[("email", "Bob@Example.com")], Ok("bob@example.com")),
            (&[("email", " bob@example.com ")], Ok("bob@example.com")),
            (&[], Err(("email", "required"))),
            (&[("email", "")], Err(("email", "empty"))),
            (
                &[("email", "not an address")],
                Err(("email", "forbidden_character")),
            ),
            (&[("email", "bob")], Err(("email", "missing_at"))),
            (
                &[("email", "bob@x.net\r\nBcc: a@b.c")],
                Err(("email", "header_injection")),
            ),
            (
                &[("email", "a@x.net"), ("email", "b@x.net")],
                Err(("email", "repeated")),
            ),
            (
                &[("address", "a@x.net")],
                Err(("address", "unknown_parameter")),
            ),
        ];
        for (pairs, want) in cases {
            let got = parse_email_query(pairs.iter().copied());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{pairs:?}"),
                (Err(e), Err((field, rule))) => {
                    assert_eq!(e.status, 422, "{pairs:?}");
                    let f = e.fields();
                    assert_eq!(f.field, Some(*field), "{pairs:?}");
                    assert_eq!(f.details[0].rule, *rule, "{pairs:?}");
                    // The address is never echoed.
                    assert!(!e.body().contains("x.net"), "{pairs:?}: {}", e.body());
                }
                (got, want) => panic!("{pairs:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn message(id: &str, rcpt: &str, from: &str) -> Value {
        json!({"id": id, "rcpt_to": rcpt, "mail_from": from, "sender": null,
               "status": "delivered", "tags": null, "metadata": "{\"a\":1}"})
    }

    #[test]
    fn export_keeps_exactly_the_address_records() {
        let key = "bob@x.net";
        let c = Candidates {
            messages: vec![
                message("m1", r#"["bob@x.net","amy@x.net"]"#, "app@ex.com"),
                message("m2", r#"["jimbob@x.net"]"#, "app@ex.com"),
                message("m3", r#"["amy@x.net"]"#, "Bob@X.net"),
            ],
            recipients: vec![
                json!({"message_id": "m1", "address": "bob@x.net", "state": "delivered"}),
                json!({"message_id": "m1", "address": "amy@x.net", "state": "delivered"}),
                json!({"message_id": "m2", "address": "jimbob@x.net", "state": "delivered"}),
            ],
            events: vec![
                json!({"message_id": "m1", "kind": "accepted"}),
                json!({"message_id": "m2", "kind": "accepted"}),
                json!({"message_id": "m3", "kind": "accepted"}),
            ],
            email_events: vec![
                json!({"id": "e1", "message_id": "m1", "recipient": "bob@x.net", "payload": "{\"type\":\"email.delivered\"}"}),
                json!({"id": "e2", "message_id": "m1", "recipient": "amy@x.net", "payload": "{}"}),
                json!({"id": "e3", "message_id": "m1", "recipient": null, "payload": "{}"}),
                json!({"id": "e4", "message_id": "m2", "recipient": null, "payload": "{}"}),
            ],
            suppressions: vec![
                json!({"address": "bob@x.net", "scope": "all"}),
                json!({"address": erased_address("acme", "bob@x.net"), "scope": "all"}),
                json!({"address": erased_address("globex", "bob@x.net"), "scope": "all"}),
                json!({"address": "jimbob@x.net", "scope": "all"}),
            ],
            inbound_reports: vec![
                json!({"id": "r1", "recipient": "BOB@x.net", "events": "[\"email.bounced\"]"}),
                json!({"id": "r2", "recipient": "jimbob@x.net"}),
            ],
            truncated: false,
        };
        let out = export("acme", key, c);
        let ids = |field: &str, id: &str| -> Vec<String> {
            out[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[id].as_str().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(ids("messages", "id"), ["m1", "m3"]);
        assert_eq!(out["messages"][0]["rcpt_to"][1], "amy@x.net");
        assert_eq!(out["messages"][0]["metadata"]["a"], 1);
        assert_eq!(ids("recipients", "address"), ["bob@x.net"]);
        assert_eq!(ids("events", "message_id"), ["m1", "m3"]);
        assert_eq!(ids("email_events", "id"), ["e1", "e3"]);
        assert_eq!(out["email_events"][0]["payload"]["type"], "email.delivered");
        assert_eq!(out["suppressions"].as_array().unwrap().len(), 2);
        assert_eq!(ids("inbound_reports", "id"), ["r1"]);
        assert_eq!(out["inbound_reports"][0]["events"][0], "email.bounced");
        assert_eq!(out["complete"], true);
    }

    #[test]
    fn erasure_answer_names_the_hash_never_the_address() {
        let mut e = Erased {
            complete: true,
            ..Erased::default()
        };
        e.deleted("messages", 2);
        e.deleted("messages", 1);
        e.deleted("events", 0);
        e.anonymised("recipients", 4);
        let out = erased("acme", "bob@x.net", &e);
        assert_eq!(out["deleted"]["messages"], 3);
        assert!(out["deleted"].get("events").is_none());
        assert_eq!(out["anonymised"]["recipients"], 4);
        assert_eq!(out["suppression"]["reason"], "erased");
        assert!(!out.to_string().contains("bob@"), "{out}");
    }
}
