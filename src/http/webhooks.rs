//! What `/v1/webhooks` reads and answers: the create and test requests with
//! their validation, the attempts list's query, and the JSON of an endpoint,
//! of a new or rotated secret, and of an attempt.
//!
//! The secret is shown twice only: in the answer that creates the endpoint
//! and in the answer of a rotation. Listing or reading an endpoint never
//! shows it.
//! Must not: perform I/O or decide who may see an endpoint (the edge reads
//! only the caller's tenant's rows).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accept::ApiError;
use crate::accept::error::FieldProblem;
use crate::events::EventType;
use crate::events::webhooks::endpoint::{EndpointRow, parse_filter};
use crate::events::webhooks::url_policy;

use super::listing::{invalid_cursor, parse_limit, unknown_parameter};

/// The longest description an endpoint may have, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// The most endpoints one tenant may have.
pub const MAX_ENDPOINTS_PER_TENANT: usize = 20;

/// Attempts listed per page, by default and at most.
const DEFAULT_ATTEMPTS_LIMIT: u32 = 50;
const MAX_ATTEMPTS_LIMIT: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    url: Option<Value>,
    events: Option<Value>,
    description: Option<Value>,
}

/// A checked request to create an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Normalised.
    pub url: String,
    /// Empty: every event type.
    pub events: Vec<EventType>,
    pub description: Option<String>,
}

impl NewEndpoint {
    /// The filter as stored: a JSON list of type names.
    pub fn events_json(&self) -> String {
        let names: Vec<&str> = self.events.iter().map(|t| t.as_str()).collect();
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    }
}

fn problem(field: &str, rule: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        rule: rule.to_string(),
        message: message.into(),
    }
}

/// Reads `POST /v1/webhooks`: `url` (required, see `url_policy`), `events`
/// (a list of event types; omitted or empty means every type) and an
/// optional `description`. Every problem found is reported at once.
pub fn parse_create(body: &[u8], allow_local_urls: bool) -> Result<NewEndpoint, ApiError> {
    let request: CreateRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not a webhook endpoint: {e}")))?;
    let mut problems = Vec::new();
    let url = match request.url {
        Some(Value::String(text)) => match url_policy::check(&text, allow_local_urls) {
            Ok(url) => Some(url.to_string()),
            Err(refused) => {
                problems.push(problem("url", refused.rule, refused.message));
                None
            }
        },
        None | Some(Value::Null) => {
            problems.push(problem("url", "required", "the endpoint's URL is required"));
            None
        }
        Some(_) => {
            problems.push(problem("url", "invalid_type", "must be a string"));
            None
        }
    };
    let events = match request.events {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let names: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            match names.map(|names| parse_filter(&names)) {
                Some(Ok(types)) => types,
                Some(Err(message)) => {
                    problems.push(problem("events", "unknown_event_type", message));
                    Vec::new()
                }
                None => {
                    problems.push(problem(
                        "events",
                        "invalid_type",
                        "must be a list of strings",
                    ));
                    Vec::new()
                }
            }
        }
        Some(_) => {
            problems.push(problem(
                "events",
                "invalid_type",
                "must be a list of event types",
            ));
            Vec::new()
        }
    };
    let description = match request.description {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => {
            problems.push(problem(
                "description",
                "too_long",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
            None
        }
        Some(Value::String(text)) if text.chars().any(char::is_control) => {
            problems.push(problem(
                "description",
                "control_characters",
                "must not contain control characters",
            ));
            None
        }
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            problems.push(problem("description", "invalid_type", "must be a string"));
            None
        }
    };
    match (url, problems.is_empty()) {
        (Some(url), true) => Ok(NewEndpoint {
            url,
            events,
            description,
        }),
        _ => Err(ApiError::invalid(problems)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// Reads `POST /v1/webhooks/{id}/test`: an optional `type` (default
/// `email.sent`). An empty body is the default.
pub fn parse_test(body: &[u8]) -> Result<EventType, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EventType::Sent);
    }
    let request: TestRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not a test request: {e}")))?;
    match request.event_type {
        None => Ok(EventType::Sent),
        Some(name) => EventType::parse(&name).ok_or_else(|| {
            ApiError::invalid_field(
                "type",
                "unknown_event_type",
                format!("unknown event type {name:?}"),
            )
        }),
    }
}

/// The attempts list's query: `limit` and `before` (the `next_cursor` of
/// the previous page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptsQuery {
    pub limit: u32,
    /// Only attempts older than this sequence number.
    pub before: Option<u64>,
}

pub fn parse_attempts_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<AttemptsQuery, ApiError> {
    let mut q = AttemptsQuery {
        limit: DEFAULT_ATTEMPTS_LIMIT,
        before: None,
    };
    for (name, value) in pairs {
        match name {
            "limit" => q.limit = parse_limit(value, MAX_ATTEMPTS_LIMIT)?,
            "cursor" => q.before = Some(value.parse().map_err(|_| invalid_cursor())?),
            other => return Err(unknown_parameter(other, "limit, cursor")),
        }
    }
    Ok(q)
}

/// An endpoint as listed and read: never its secret.
pub fn endpoint_view(row: &EndpointRow) -> Value {
    json!({
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "events": row.filter(),
        "status": row.status,
        "disabled_reason": row.disabled_reason,
        "created_at": row.created_at as u64,
        "updated_at": row.updated_at as u64,
    })
}

/// The answer that creates an endpoint: the view and, this once, the secret.
pub fn created_view(row: &EndpointRow) -> Value {
    let mut view = endpoint_view(row);
    view["secret"] = Value::String(row.secret.clone());
    view
}

/// The answer of a rotation: the new secret, and until when the old one
/// still signs beside it.
pub fn rotated_view(id: &str, secret: &str, previous_expires_at_ms: u64) -> Value {
    json!({
        "id": id,
        "secret": secret,
        "previous_secret_expires_at": previous_expires_at_ms,
    })
}

/// One row of `webhook_attempts` as D1 hands it over.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AttemptRow {
    pub seq: f64,
    pub event_id: String,
    pub event_type: String,
    pub attempt: f64,
    pub at: f64,
    pub status_code: Option<f64>,
    pub outcome: String,
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub next_attempt_at: Option<f64>,
}

/// One page of attempts, newest first; `rows` holds one more than `limit`
/// when there is a next page.
pub fn attempts_page(mut rows: Vec<AttemptRow>, limit: u32) -> Value {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = rows
        .last()
        .filter(|_| more)
        .map(|r| (r.seq as u64).to_string());
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "event_id": r.event_id,
                "event_type": r.event_type,
                "attempt": r.attempt as u64,
                "at": r.at as u64,
                "status_code": r.status_code.map(|c| c as u64),
                "outcome": r.outcome,
                "error": r.error,
                "duration_ms": r.duration_ms.map(|d| d as u64),
                "next_attempt_at": r.next_attempt_at.map(|t| t as u64),
            })
        })
        .collect();
    json!({"data": data, "next_cursor": next_cursor})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(body: &str, allow_local: bool) -> Vec<(String, String)> {
        match parse_create(body.as_bytes(), allow_local) {
            Ok(_) => Vec::new(),
            Err(e) => {
                assert!(e.status == 422 || e.status == 400, "{body}: {}", e.status);
                if e.status == 400 {
                    return vec![("body".into(), "malformed".into())];
                }
                e.details.into_iter().map(|p| (p.field, p.rule)).collect()
            }
        }
    }

    #[test]
    fn create_requests() {
        let ok = parse_create(
            br#"{"url": "https://hooks.example.com/in", "events": ["email.sent", "email.bounced", "email.sent"], "description": "prod"}"#,
            false,
        )
        .unwrap();
        assert_eq!(ok.url, "https://hooks.example.com/in");
        assert_eq!(ok.events, [EventType::Sent, EventType::Bounced]);
        assert_eq!(ok.events_json(), r#"["email.sent","email.bounced"]"#);
        assert_eq!(ok.description.as_deref(), Some("prod"));
        let all = parse_create(br#"{"url": "https://hooks.example.com"}"#, false).unwrap();
        assert!(all.events.is_empty());
        assert_eq!(all.url, "https://hooks.example.com/");

        let long = format!(
            r#"{{"url": "https://h.example.com", "description": "{}"}}"#,
            "d".repeat(201)
        );
        // (body, local URLs allowed, the problems: field and rule)
        type Row<'a> = (&'a str, bool, &'a [(&'a str, &'a str)]);
        let table: &[Row] = &[
            (r#"{}"#, false, &[("url", "required")]),
            (r#"{"url": 5}"#, false, &[("url", "invalid_type")]),
            (
                r#"{"url": "http://h.example.com"}"#,
                false,
                &[("url", "https_required")],
            ),
            (
                r#"{"url": "https://127.0.0.1/x"}"#,
                false,
                &[("url", "private_address")],
            ),
            (r#"{"url": "http://127.0.0.1:9/x"}"#, true, &[]),
            (
                r#"{"url": "https://h.example.com", "events": ["email.nope"]}"#,
                false,
                &[("events", "unknown_event_type")],
            ),
            (
                r#"{"url": "https://h.example.com", "events": "email.sent"}"#,
                false,
                &[("events", "invalid_type")],
            ),
            (
                r#"{"url": "https://h.example.com", "events": [1]}"#,
                false,
                &[("events", "invalid_type")],
            ),
            (&long, false, &[("description", "too_long")]),
            (
                r#"{"url": "https://h.example.com", "description": "a\nb"}"#,
                false,
                &[("description", "control_characters")],
            ),
            (
                r#"{"events": ["x"], "description": 3}"#,
                false,
                &[
                    ("url", "required"),
                    ("events", "unknown_event_type"),
                    ("description", "invalid_type"),
                ],
            ),
            (
                r#"{"url": "https://h.example.com", "secret": "x"}"#,
                false,
                &[("body", "malformed")],
            ),
            ("not json", false, &[("body", "malformed")]),
        ];
        for (body, allow_local, want) in table {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(f, r)| (f.to_string(), r.to_string()))
                .collect();
            assert_eq!(rules(body, *allow_local), want, "{body}");
        }
    }

    #[test]
    fn test_requests() {
        assert_eq!(parse_test(b"").unwrap(), EventType::Sent);
        assert_eq!(parse_test(b"{}").unwrap(), EventType::Sent);
        assert_eq!(
            parse_test(br#"{"type": "email.bounced"}"#).unwrap(),
            EventType::Bounced
        );
        assert_eq!(parse_test(br#"{"type": "nope"}"#).unwrap_err().status, 422);
        assert_eq!(parse_test(br#"{"kind": "x"}"#).unwrap_err().status, 400);
    }

    #[test]
    fn attempts_queries_and_pages() {
        assert_eq!(
            parse_attempts_query([("limit", "2"), ("cursor", "17")]).unwrap(),
            AttemptsQuery {
                limit: 2,
                before: Some(17)
            }
        );
        for (name, value) in [
            ("limit", "0"),
            ("limit", "101"),
            ("cursor", "x"),
            ("since", "1"),
        ] {
            assert_eq!(
                parse_attempts_query([(name, value)]).unwrap_err().status,
                422,
                "{name}={value}"
            );
        }
        let row = |seq: f64| AttemptRow {
            seq,
            event_id: "evt".into(),
            event_type: "email.sent".into(),
            attempt: 1.0,
            at: 5.0,
            status_code: Some(500.0),
            outcome: "retrying".into(),
            error: None,
            duration_ms: Some(3.0),
            next_attempt_at: Some(10.0),
        };
        let page = attempts_page(vec![row(9.0), row(8.0), row(7.0)], 2);
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["next_cursor"], "8");
        assert_eq!(page["data"][0]["status_code"], 500);
        let last = attempts_page(vec![row(9.0)], 2);
        assert_eq!(last["next_cursor"], Value::Null);
    }

    #[test]
    fn views_never_show_the_secret_except_at_creation() {
        let row = EndpointRow {
            id: "wh_1".into(),
            tenant: "acme".into(),
            url: "https://h.example.com/".into(),
            description: None,
            events: r#"["email.sent"]"#.into(),
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vj".into(),
            previous_secret: Some("whsec_old".into()),
            previous_secret_expires_at: Some(1.0),
            status: "enabled".into(),
            disabled_reason: None,
            created_at: 1.0,
            updated_at: 2.0,
        };
        let view = endpoint_view(&row).to_string();
        assert!(!view.contains("whsec_"), "{view}");
        assert!(!view.contains("acme"), "{view}");
        assert_eq!(endpoint_view(&row)["events"], json!(["email.sent"]));
        assert_eq!(created_view(&row)["secret"], row.secret.as_str());
    }
}
