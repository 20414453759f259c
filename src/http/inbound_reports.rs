//! `/v1/inbound-reports` without the HTTP: the list query and its cursor,
//! and the JSON a record of something that came back is shown as.
//!
//! A record is the caller's when its tenant is the caller's tenant, or, for
//! a record no message claimed (a forged or unreadable bounce), when it came
//! back for one of the caller's sender domains; the edge scopes every query
//! so. Times in the API are Unix seconds, as in the rest of it.
//! Must not: perform I/O or read the clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accept::error::ApiError;
use crate::inbound::record::{Outcome, is_record_id};

use super::listing::{invalid_cursor, parse_limit, unknown_parameter};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// The sources a record may have, for the `source` filter.
pub const SOURCES: [&str; 5] = ["email", "mailgun", "sendgrid", "postmark", "ses"];

/// Where the previous page ended: the last record's time (ms) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub received_at_ms: u64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(json!([self.received_at_ms, self.id]).to_string())
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let (received_at_ms, id): (u64, String) = serde_json::from_slice(&bytes).ok()?;
        is_record_id(&id).then_some(Cursor { received_at_ms, id })
    }
}

/// A checked list query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only records with this verdict.
    pub outcome: Option<Outcome>,
    pub message_id: Option<String>,
    pub source: Option<String>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// Reads `GET /v1/inbound-reports`'s query pairs (already percent-decoded).
pub fn parse_list_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    for (name, value) in pairs {
        match name {
            "verdict" => {
                q.outcome = Some(Outcome::parse(value).ok_or_else(|| {
                    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    ApiError::invalid_field(
                        "verdict",
                        "invalid_verdict",
                        format!("must be one of: {}", names.join(", ")),
                    )
                })?);
            }
            "message_id" => {
                let ok = !value.is_empty()
                    && value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(ApiError::invalid_field(
                        "message_id",
                        "invalid_id",
                        "must be a message id as the send API returned it",
                    ));
                }
                q.message_id = Some(value.to_string());
            }
            "source" => {
                if !SOURCES.contains(&value) {
                    return Err(ApiError::invalid_field(
                        "source",
                        "invalid_source",
                        format!("must be one of: {}", SOURCES.join(", ")),
                    ));
                }
                q.source = Some(value.to_string());
            }
            "limit" => q.limit = parse_limit(value, MAX_LIMIT)?,
            "cursor" => q.cursor = Some(Cursor::decode(value).ok_or_else(invalid_cursor)?),
            other => {
                return Err(unknown_parameter(
                    other,
                    "verdict, message_id, source, limit, cursor",
                ));
            }
        }
    }
    Ok(q)
}

/// One record as D1 returns it (numbers come back as floats).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordRow {
    pub id: String,
    pub received_at: f64,
    pub source: String,
    pub kind: String,
    pub verdict: String,
    pub reason: Option<String>,
    pub tenant: Option<String>,
    pub domain: Option<String>,
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    pub events: Option<String>,
    pub mail_from: Option<String>,
    pub rcpt_to: Option<String>,
    pub subject: Option<String>,
    pub size: f64,
    pub body_key: Option<String>,
}

/// A record as the API shows it.
pub fn view(r: &RecordRow) -> Value {
    let events: Vec<String> = r
        .events
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    json!({
        "id": r.id,
        "object": "inbound_report",
        "received_at": (r.received_at as u64) / 1000,
        "source": r.source,
        "kind": r.kind,
        "verdict": r.verdict,
        "reason": r.reason,
        "domain": r.domain,
        "message_id": r.message_id,
        "recipient": r.recipient,
        "events": events,
        "envelope": {"mail_from": r.mail_from, "rcpt_to": r.rcpt_to},
        "subject": r.subject,
        "size": r.size as u64,
        "raw_kept": r.body_key.is_some(),
    })
}

/// A page: the records and the cursor of the next page, if any.
pub fn page(mut rows: Vec<RecordRow>, limit: u32) -> Value {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = rows.last().filter(|_| more).map(|r| {
        Cursor {
            received_at_ms: r.received_at as u64,
            id: r.id.clone(),
        }
        .encode()
    });
    let data: Vec<Value> = rows.iter().map(view).collect();
    json!({"object": "list", "data": data, "next_cursor": next_cursor})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::record::record_id;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        parse_list_query(pairs.iter().copied())
    }

    #[test]
    fn queries_are_checked_and_errors_name_the_parameter() {
        let ok = q(&[
            ("verdict", "unmatched"),
            ("source", "email"),
            ("message_id", "4f3c9a0b1d2e3f405162738495a6b7c8-2"),
            ("limit", "10"),
        ])
        .unwrap();
        assert_eq!(ok.outcome, Some(Outcome::Unmatched));
        assert_eq!(ok.limit, 10);
        assert_eq!(q(&[]).unwrap().limit, DEFAULT_LIMIT);
        for (name, value) in [
            ("verdict", "lost"),
            ("source", "smtp"),
            ("message_id", "a' OR 1=1"),
            ("limit", "0"),
            ("limit", "101"),
            ("cursor", "nope"),
            ("colour", "red"),
        ] {
            let e = q(&[(name, value)]).unwrap_err();
            assert_eq!(e.status, 422, "{name}={value}");
            assert!(
                e.body().contains(&format!("\"{name}\"")),
                "{name}: {}",
                e.body()
            );
        }
    }

    fn row(n: u8) -> RecordRow {
        RecordRow {
            id: record_id(&[n; 16]),
            received_at: 1_700_000_000_000.0 + f64::from(n),
            source: "email".into(),
            kind: "dsn".into(),
            verdict: "applied".into(),
            reason: None,
            tenant: Some("acme".into()),
            domain: Some("example.com".into()),
            message_id: Some("m".into()),
            recipient: Some("a@example.net".into()),
            events: Some(r#"["email.bounced"]"#.into()),
            mail_from: Some("".into()),
            rcpt_to: Some("b+x@rp.example.com".into()),
            subject: Some("Undelivered Mail Returned to Sender".into()),
            size: 2048.0,
            body_key: None,
        }
    }

    #[test]
    fn pages_and_cursors_round_trip() {
        let rows = vec![row(3), row(2), row(1)];
        let p = page(rows, 2);
        assert_eq!(p["data"].as_array().unwrap().len(), 2);
        assert_eq!(p["data"][0]["events"][0], "email.bounced");
        assert_eq!(p["data"][0]["received_at"], 1_700_000_000);
        assert_eq!(p["data"][0]["raw_kept"], false);
        let cursor = p["next_cursor"].as_str().unwrap();
        assert_eq!(
            Cursor::decode(cursor),
            Some(Cursor {
                received_at_ms: 1_700_000_000_002,
                id: record_id(&[2; 16])
            })
        );
        assert!(page(vec![row(1)], 2)["next_cursor"].is_null());
        // A cursor naming something that is not a record id is refused.
        let forged = URL_SAFE_NO_PAD.encode(r#"[1,"x' OR 1=1"]"#);
        assert_eq!(Cursor::decode(&forged), None);
    }
}
