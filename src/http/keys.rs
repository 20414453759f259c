//! What `/v1/keys` reads and answers: the create and rotate requests with
//! their validation (422 naming the field and rule), and the JSON of a key.
//!
//! A key's secret is shown once: in the answer that creates it and in the
//! answer of a rotation. Listing or reading a key shows its id, name,
//! display prefix and what it may do, never the secret or its digest. Keys
//! of `API_KEYS` are listed beside issued ones with `"source": "settings"`.
//! Must not: perform I/O, or decide what a key may be given
//! (`accept::issued_keys` compares a request with the key that makes it).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accept::error::FieldProblem;
use crate::accept::issued_keys::{GrantRequest, IssuedKeyRow, MAX_GRACE_SECONDS};
use crate::accept::{ApiError, ApiKeyRecord, KeyLimits, Scope};
use crate::events::unsubscribe::settings::check_base;
use crate::events::unsubscribe::{StreamKind, stream};
use crate::message::validate::is_stream_name;

/// The longest name a key may have, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The most sender domains one key may list.
pub const MAX_DOMAINS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: Option<Value>,
    scopes: Option<Value>,
    domains: Option<Value>,
    streams: Option<Value>,
    unsubscribe_base_url: Option<Value>,
    limits: Option<Value>,
}

fn problem(field: &str, rule: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        rule: rule.to_string(),
        message: message.into(),
    }
}

fn is_domain(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_name(value: Option<Value>, problems: &mut Vec<FieldProblem>) -> String {
    match value {
        Some(Value::String(text)) => {
            // The length as sent (as the published schema counts it), then
            // kept without surrounding white space.
            let name = text.trim();
            if text.is_empty() || text.chars().count() > MAX_NAME_CHARS {
                problems.push(problem(
                    "name",
                    "invalid_length",
                    format!("must be 1 to {MAX_NAME_CHARS} characters"),
                ));
            } else if name.is_empty() {
                problems.push(problem("name", "blank", "must not be only white space"));
            } else if name.chars().any(char::is_control) {
                problems.push(problem(
                    "name",
                    "control_characters",
                    "must not contain control characters",
                ));
            }
            name.to_string()
        }
        None | Some(Value::Null) => {
            problems.push(problem(
                "name",
                "required",
                "a name for the key is required",
            ));
            String::new()
        }
        Some(_) => {
            problems.push(problem("name", "invalid_type", "must be a string"));
            String::new()
        }
    }
}

fn parse_scopes(value: Option<Value>, problems: &mut Vec<FieldProblem>) -> Vec<Scope> {
    let items = match value {
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push(problem(
                "scopes",
                "empty",
                "list at least one of send, read, admin",
            ));
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            problems.push(problem(
                "scopes",
                "required",
                "list what the key may do: send, read, admin",
            ));
            return Vec::new();
        }
        Some(_) => {
            problems.push(problem("scopes", "invalid_type", "must be a list"));
            return Vec::new();
        }
    };
    let mut scopes = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<Scope>(item) {
            Ok(scope) => scopes.push(scope),
            Err(_) => problems.push(problem(
                &format!("scopes[{i}]"),
                "unknown_scope",
                "must be send, read or admin",
            )),
        }
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

fn parse_domains(value: Option<Value>, problems: &mut Vec<FieldProblem>) -> Vec<String> {
    let items = match value {
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push(problem(
                "domains",
                "empty",
                "list at least one sender domain",
            ));
            return Vec::new();
        }
        Some(Value::Array(items)) if items.len() > MAX_DOMAINS => {
            problems.push(problem(
                "domains",
                "too_many",
                format!("at most {MAX_DOMAINS} domains"),
            ));
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            problems.push(problem(
                "domains",
                "required",
                "list the sender domains the key may use",
            ));
            return Vec::new();
        }
        Some(_) => {
            problems.push(problem("domains", "invalid_type", "must be a list"));
            return Vec::new();
        }
    };
    let mut domains: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().map(str::to_ascii_lowercase) {
            Some(d) if is_domain(&d) => {
                if !domains.contains(&d) {
                    domains.push(d);
                }
            }
            _ => problems.push(problem(
                &format!("domains[{i}]"),
                "invalid_domain",
                "must be a domain name",
            )),
        }
    }
    domains
}

fn parse_streams(
    value: Option<Value>,
    problems: &mut Vec<FieldProblem>,
) -> BTreeMap<String, StreamKind> {
    let entries = match value {
        None | Some(Value::Null) => return BTreeMap::new(),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            problems.push(problem(
                "streams",
                "invalid_type",
                "must be an object of stream names and kinds",
            ));
            return BTreeMap::new();
        }
    };
    let mut streams = BTreeMap::new();
    for (name, kind) in entries {
        let field = format!("streams.{name}");
        if !is_stream_name(&name) || name == stream::TRANSACTIONAL || name == stream::MARKETING {
            problems.push(problem(
                &field,
                "invalid_stream",
                "a stream name is 1-64 lower-case letters, digits, '_' or '-', and not transactional or marketing",
            ));
            continue;
        }
        match serde_json::from_value::<StreamKind>(kind) {
            Ok(kind) => {
                streams.insert(name, kind);
            }
            Err(_) => problems.push(problem(
                &field,
                "invalid_stream",
                "a stream's kind is transactional or marketing",
            )),
        }
    }
    streams
}

fn parse_base(value: Option<Value>, problems: &mut Vec<FieldProblem>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match check_base(text.trim()) {
            Ok(base) => Some(base),
            Err(message) => {
                problems.push(problem("unsubscribe_base_url", "invalid_url", message));
                None
            }
        },
        Some(_) => {
            problems.push(problem(
                "unsubscribe_base_url",
                "invalid_type",
                "must be a string",
            ));
            None
        }
    }
}

fn parse_limits(value: Option<Value>, problems: &mut Vec<FieldProblem>) -> KeyLimits {
    let mut limits = KeyLimits::default();
    let entries = match value {
        None | Some(Value::Null) => return limits,
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            problems.push(problem(
                "limits",
                "invalid_type",
                "must be an object: {\"per_second\"?, \"per_day\"?}",
            ));
            return limits;
        }
    };
    for (name, value) in entries {
        let field = format!("limits.{name}");
        let slot = match name.as_str() {
            "per_second" => &mut limits.per_second,
            "per_day" => &mut limits.per_day,
            _ => {
                problems.push(problem(
                    &field,
                    "unknown_field",
                    "limits are per_second and per_day",
                ));
                continue;
            }
        };
        match value {
            Value::Null => {}
            value => match whole_number(&value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => *slot = Some(n),
                _ => problems.push(problem(
                    &field,
                    "invalid_limit",
                    "must be a whole number from 1 to 4294967295 (leave it out for the creating key's)",
                )),
            },
        }
    }
    limits
}

/// Reads `POST /v1/keys`: `name`, `scopes` and `domains` (required),
/// `streams`, `unsubscribe_base_url` and `limits` (optional). Every problem
/// found is reported at once. The tenant is always the creating key's.
pub fn parse_create(body: &[u8]) -> Result<GrantRequest, ApiError> {
    let request: CreateRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not a key request: {e}")))?;
    let mut problems = Vec::new();
    let grant = GrantRequest {
        name: parse_name(request.name, &mut problems),
        scopes: parse_scopes(request.scopes, &mut problems),
        domains: parse_domains(request.domains, &mut problems),
        streams: parse_streams(request.streams, &mut problems),
        unsubscribe_base_url: parse_base(request.unsubscribe_base_url, &mut problems),
        limits: parse_limits(request.limits, &mut problems),
    };
    if problems.is_empty() {
        Ok(grant)
    } else {
        Err(ApiError::invalid(problems))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    grace_seconds: Option<Value>,
}

/// A JSON number with no fraction (`60` or `60.0`), if not negative.
fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
            .map(|f| f as u64)
    })
}

/// Reads `POST /v1/keys/{id}/rotate`: an optional `grace_seconds` (0 to
/// [`MAX_GRACE_SECONDS`], default 0: the old key is refused at once). An
/// empty body is the default.
pub fn parse_rotate(body: &[u8]) -> Result<u64, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let request: RotateRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not a rotate request: {e}")))?;
    match request.grace_seconds {
        None | Some(Value::Null) => Ok(0),
        Some(value) => match whole_number(&value) {
            Some(n) if n <= MAX_GRACE_SECONDS => Ok(n),
            _ => Err(ApiError::invalid_field(
                "grace_seconds",
                "out_of_range",
                format!("must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}"),
            )),
        },
    }
}

/// An issued key, without its secret. `None` when its row does not read.
pub fn key_view(row: &IssuedKeyRow) -> Option<Value> {
    let grant = row.grant()?;
    Some(json!({
        "id": row.id,
        "source": "api",
        "name": grant.name,
        "prefix": row.prefix,
        "tenant": row.tenant,
        "scopes": grant.scopes,
        "domains": grant.domains,
        "streams": grant.streams,
        "unsubscribe_base_url": grant.unsubscribe_base_url,
        "limits": grant.limits,
        "created_at": row.created_at as u64,
        "created_by": row.created_by,
        "revoked_at": row.revoked_at.map(|at| at as u64),
        "rotated_from": row.rotated_from,
    }))
}

/// A new or rotated key: its view and, this once, the key itself.
pub fn created_view(row: &IssuedKeyRow, secret: &str) -> Option<Value> {
    let mut view = key_view(row)?;
    if let Value::Object(fields) = &mut view {
        fields.insert("key".into(), Value::String(secret.to_string()));
    }
    Some(view)
}

/// A key of `API_KEYS`: read-only here, changed by editing the secret.
pub fn settings_key_view(record: &ApiKeyRecord) -> Value {
    let scopes = record.scopes.clone().unwrap_or_else(|| Scope::ALL.to_vec());
    json!({
        "id": record.id,
        "source": "settings",
        "name": record.id,
        "prefix": null,
        "tenant": record.tenant(),
        "scopes": scopes,
        "domains": record.domains,
        "streams": record.streams,
        "unsubscribe_base_url": record.unsubscribe_base_url,
        "limits": record.limits,
        "created_at": null,
        "created_by": null,
        "revoked_at": null,
        "rotated_from": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &ApiError) -> Vec<(String, String)> {
        e.details
            .iter()
            .map(|p| (p.field.clone(), p.rule.clone()))
            .collect()
    }

    #[test]
    fn a_create_request_is_read_with_every_problem_named() {
        let ok = parse_create(
            br#"{"name":" ci ","scopes":["send","read","send"],"domains":["Example.COM","example.com"],
                 "streams":{"news":"marketing"},"unsubscribe_base_url":"https://mail.example.com/",
                 "limits":{"per_second":5.0,"per_day":null}}"#,
        )
        .unwrap();
        assert_eq!(ok.name, "ci");
        assert_eq!(ok.scopes, vec![Scope::Send, Scope::Read]);
        assert_eq!(ok.domains, vec!["example.com".to_string()]);
        assert_eq!(ok.streams.get("news"), Some(&StreamKind::Marketing));
        assert_eq!(
            ok.unsubscribe_base_url.as_deref(),
            Some("https://mail.example.com")
        );
        assert_eq!(ok.limits.per_second, Some(5));
        assert_eq!(ok.limits.per_day, None);

        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let table: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                "{}".into(),
                vec![
                    ("name", "required"),
                    ("scopes", "required"),
                    ("domains", "required"),
                ],
            ),
            (
                format!(r#"{{"name":"{long}","scopes":[],"domains":[]}}"#),
                vec![
                    ("name", "invalid_length"),
                    ("scopes", "empty"),
                    ("domains", "empty"),
                ],
            ),
            (
                r#"{"name":"a\u0007","scopes":["root","send"],"domains":["ex ample.com", 5]}"#
                    .into(),
                vec![
                    ("name", "control_characters"),
                    ("scopes[0]", "unknown_scope"),
                    ("domains[0]", "invalid_domain"),
                    ("domains[1]", "invalid_domain"),
                ],
            ),
            (
                r#"{"name":5,"scopes":"send","domains":"example.com","streams":[],"limits":3,"unsubscribe_base_url":1}"#
                    .into(),
                vec![
                    ("name", "invalid_type"),
                    ("scopes", "invalid_type"),
                    ("domains", "invalid_type"),
                    ("streams", "invalid_type"),
                    ("unsubscribe_base_url", "invalid_type"),
                    ("limits", "invalid_type"),
                ],
            ),
            (
                r#"{"name":"a","scopes":["send"],"domains":["example.com"],
                    "streams":{"marketing":"marketing","Bad":"transactional","x":"bulk"},
                    "limits":{"per_second":0,"per_day":-1,"per_hour":1},
                    "unsubscribe_base_url":"https://mail.example.com/path"}"#
                    .into(),
                vec![
                    ("streams.Bad", "invalid_stream"),
                    ("streams.marketing", "invalid_stream"),
                    ("streams.x", "invalid_stream"),
                    ("unsubscribe_base_url", "invalid_url"),
                    ("limits.per_day", "invalid_limit"),
                    ("limits.per_hour", "unknown_field"),
                    ("limits.per_second", "invalid_limit"),
                ],
            ),
            (
                r#"{"name":"a","scopes":["send"],"domains":["example.com"],"limits":{"per_day":4294967296}}"#
                    .into(),
                vec![("limits.per_day", "invalid_limit")],
            ),
            (
                r#"{"name":"   ","scopes":["send"],"domains":[" example.com",""]}"#.into(),
                vec![
                    ("name", "blank"),
                    ("domains[0]", "invalid_domain"),
                    ("domains[1]", "invalid_domain"),
                ],
            ),
            (
                format!(r#"{{"name":" {} ","scopes":["send"],"domains":["example.com"]}}"#, "x".repeat(MAX_NAME_CHARS - 1)),
                vec![("name", "invalid_length")],
            ),
        ];
        for (body, want) in table {
            let e = parse_create(body.as_bytes()).unwrap_err();
            assert_eq!(e.status, 422, "{body}");
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(f, r)| (f.to_string(), r.to_string()))
                .collect();
            assert_eq!(fields(&e), want, "{body}");
        }
        // Not the shape of a request: 400.
        for body in [&b"[]"[..], b"not json", br#"{"name":"a","tenant":"other"}"#] {
            assert_eq!(parse_create(body).unwrap_err().status, 400);
        }
    }

    #[test]
    fn a_rotate_request_takes_a_bounded_grace() {
        assert_eq!(parse_rotate(b"").unwrap(), 0);
        assert_eq!(parse_rotate(b" {} ").unwrap(), 0);
        assert_eq!(parse_rotate(br#"{"grace_seconds":60}"#).unwrap(), 60);
        assert_eq!(parse_rotate(br#"{"grace_seconds":60.0}"#).unwrap(), 60);
        assert_eq!(
            parse_rotate(format!(r#"{{"grace_seconds":{MAX_GRACE_SECONDS}}}"#).as_bytes()).unwrap(),
            MAX_GRACE_SECONDS
        );
        for body in [
            format!(r#"{{"grace_seconds":{}}}"#, MAX_GRACE_SECONDS + 1),
            r#"{"grace_seconds":-1}"#.into(),
            r#"{"grace_seconds":"60"}"#.into(),
            r#"{"grace_seconds":1.5}"#.into(),
        ] {
            let e = parse_rotate(body.as_bytes()).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (422, Some("grace_seconds")));
        }
        assert_eq!(parse_rotate(br#"{"grace":1}"#).unwrap_err().status, 400);
    }

    #[test]
    fn views_never_carry_a_secret_but_the_answer_that_makes_it() {
        let row = IssuedKeyRow {
            id: "key_1".into(),
            tenant: "acme".into(),
            name: "ci".into(),
            prefix: "er_abcde".into(),
            scopes: r#"["send"]"#.into(),
            domains: r#"["example.com"]"#.into(),
            streams: "{}".into(),
            unsubscribe_base_url: None,
            limits: r#"{"per_day":5}"#.into(),
            created_at: 0.0,
            created_by: "ops".into(),
            revoked_at: Some(1_000.0),
            rotated_from: None,
        };
        let view = key_view(&row).unwrap();
        assert_eq!(view["source"], "api");
        assert_eq!(view["prefix"], "er_abcde");
        assert_eq!(view["scopes"], json!(["send"]));
        assert_eq!(view["limits"], json!({"per_day": 5}));
        assert_eq!(view["created_at"], 0);
        assert_eq!(view["revoked_at"], 1_000);
        assert!(view.get("key").is_none() && view.get("sha256").is_none());
        let created = created_view(&row, "er_secret").unwrap();
        assert_eq!(created["key"], "er_secret");
        let record = ApiKeyRecord {
            id: "backend".into(),
            sha256: "ab".repeat(32),
            domains: vec!["example.com".into()],
            tenant: Some("acme".into()),
            streams: BTreeMap::new(),
            unsubscribe_base_url: None,
            scopes: None,
            limits: KeyLimits::default(),
        };
        let view = settings_key_view(&record);
        assert_eq!(view["source"], "settings");
        assert_eq!(view["scopes"], json!(["send", "read", "admin"]));
        assert_eq!(view["tenant"], "acme");
        assert!(!view.to_string().contains(&record.sha256));
    }
}
