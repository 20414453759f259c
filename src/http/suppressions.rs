//! `/v1/suppressions` without the HTTP: the list query and its cursor, the
//! body of an add (a batch of entries, all or nothing), the address and
//! scope of a removal, and the JSON an entry is shown as.
//!
//! A tenant's list is shared by all its keys: the edge scopes every query to
//! the caller's tenant, and nothing here ever names another. Times in the
//! API are Unix seconds, as in the rest of it (the list stores milliseconds).
//! Must not: perform I/O or read the clock; the edge passes the time in.

pub mod import;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accept::error::{ApiError, FieldProblem};
use crate::events::suppression::{Entry, Reason, Scope, address_key};
use crate::message::EmailAddress;

use super::listing::{invalid_cursor, parse_limit, unknown_parameter};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;
/// Most entries one add may carry (they are written in one statement).
pub const MAX_ADD: usize = 1000;
/// The longest `detail` an add may carry.
pub const MAX_DETAIL_CHARS: usize = 500;

/// Where the previous page ended: the last entry's creation time (ms),
/// address and scope. Pages run newest first, then by address and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: u64,
    pub address: String,
    pub scope: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(json!([self.created_at_ms, self.address, self.scope]).to_string())
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let (created_at_ms, address, scope): (u64, String, String) =
            serde_json::from_slice(&bytes).ok()?;
        Scope::parse(&scope).ok()?;
        Some(Cursor {
            created_at_ms,
            address,
            scope,
        })
    }
}

/// A checked list query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only this address (as the list keeps it).
    pub address: Option<String>,
    pub reason: Option<Reason>,
    /// Only this scope, in its stored form.
    pub scope: Option<String>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// Reads `GET /v1/suppressions`'s query pairs (already percent-decoded).
pub fn parse_list_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    for (name, value) in pairs {
        match name {
            "address" => {
                let parsed = EmailAddress::parse(value.trim()).map_err(|e| {
                    ApiError::invalid_field("address", e.rule(), format!("not an address: {e}"))
                })?;
                q.address = Some(address_key(&parsed.to_string()));
            }
            "reason" => {
                q.reason = Some(Reason::parse(value).ok_or_else(|| {
                    ApiError::invalid_field("reason", "invalid_reason", reasons_rule())
                })?);
            }
            "scope" => {
                let scope = Scope::parse(value)
                    .map_err(|rule| ApiError::invalid_field("scope", "invalid_scope", rule))?;
                q.scope = Some(scope.as_stored());
            }
            "limit" => q.limit = parse_limit(value, MAX_LIMIT)?,
            "cursor" => q.cursor = Some(Cursor::decode(value).ok_or_else(invalid_cursor)?),
            other => {
                return Err(unknown_parameter(
                    other,
                    "address, reason, scope, limit, cursor",
                ));
            }
        }
    }
    Ok(q)
}

fn reasons_rule() -> String {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    format!("must be one of: {}", names.join(", "))
}

/// The latest `expires_at`: the end of the year 9999, Unix seconds.
pub const MAX_EXPIRES_AT: u64 = 253_402_300_799;

/// A JSON number that is a whole, non-negative number of seconds (`5` or
/// `5.0`; JSON Schema calls both integers).
fn whole_seconds(n: &serde_json::Number) -> Option<u64> {
    if let Some(s) = n.as_u64() {
        return Some(s);
    }
    let f = n.as_f64()?;
    // Any larger is out of range anyway; the cast is exact below 2^53.
    (f >= 0.0 && f.fract() == 0.0 && f < 9.0e15).then_some(f as u64)
}

/// The fields an entry of an add may have.
const ADD_FIELDS: [&str; 5] = ["address", "scope", "reason", "expires_at", "detail"];

/// Reads `POST /v1/suppressions`: `{"suppressions": [{"address", "scope"
/// (default `all`), "reason" (default `manual`), "expires_at" (Unix seconds,
/// in the future; absent: never), "detail"}]}`. Every problem of every
/// entry is reported, each naming its field (`suppressions[2].scope`); one
/// invalid entry refuses the whole add, so nothing is half added.
pub fn parse_add(body: &[u8], tenant: &str, now_ms: u64) -> Result<Vec<Entry>, ApiError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut body) = body else {
        return Err(ApiError::invalid_field(
            "",
            "invalid_type",
            "the body is an object: {\"suppressions\": [...]}",
        ));
    };
    if let Some(other) = body.keys().find(|k| *k != "suppressions") {
        return Err(ApiError::invalid_field(
            other,
            "unknown_field",
            "the body has only `suppressions`",
        ));
    }
    let items = match body.remove("suppressions") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "suppressions",
                "invalid_type",
                "must be a list of entries",
            ));
        }
        None => {
            return Err(ApiError::invalid_field(
                "suppressions",
                "required",
                "a list of 1 or more entries to add",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid_field(
            "suppressions",
            "required",
            "a list of 1 or more entries to add",
        ));
    }
    if items.len() > MAX_ADD {
        return Err(ApiError::too_large(
            "suppressions",
            format!(
                "{} entries; at most {MAX_ADD} are added at once, send the rest in another request",
                items.len()
            ),
        ));
    }
    let mut problems = Vec::new();
    let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = |name: &str| format!("suppressions[{i}].{name}");
        let mut problem = |name: &str, rule: &str, message: String| {
            problems.push(FieldProblem {
                field: field(name),
                rule: rule.to_string(),
                message,
            })
        };
        let Value::Object(mut item) = item else {
            problems.push(FieldProblem {
                field: format!("suppressions[{i}]"),
                rule: "invalid_type".into(),
                message: "must be an object of address, scope, reason, expires_at, detail".into(),
            });
            continue;
        };
        if let Some(other) = item.keys().find(|k| !ADD_FIELDS.contains(&k.as_str())) {
            let other = other.clone();
            problem(
                &other,
                "unknown_field",
                format!("an entry has only: {}", ADD_FIELDS.join(", ")),
            );
            continue;
        }
        let mut take = |name: &str| item.remove(name);
        let address = match take("address") {
            Some(Value::String(a)) => match EmailAddress::parse(a.trim()) {
                Ok(parsed) => Some(address_key(&parsed.to_string())),
                Err(e) => {
                    problem("address", e.rule(), format!("not an address: {e}"));
                    None
                }
            },
            None => {
                problem("address", "required", "the address to suppress".into());
                None
            }
            Some(_) => {
                problem("address", "invalid_type", "must be a string".into());
                None
            }
        };
        let scope = match take("scope") {
            None => Some(Scope::All),
            Some(Value::String(s)) => match Scope::parse(&s) {
                Ok(scope) => Some(scope),
                Err(rule) => {
                    problem("scope", "invalid_scope", rule.to_string());
                    None
                }
            },
            Some(_) => {
                problem("scope", "invalid_type", "must be a string".into());
                None
            }
        };
        let reason = match take("reason") {
            None => Some(Reason::Manual),
            Some(Value::String(s)) => match Reason::parse(&s) {
                Some(r) => Some(r),
                None => {
                    problem("reason", "invalid_reason", reasons_rule());
                    None
                }
            },
            Some(_) => {
                problem("reason", "invalid_type", "must be a string".into());
                None
            }
        };
        let expires_at_ms = match take("expires_at") {
            None | Some(Value::Null) => Some(None),
            Some(Value::Number(n)) => match whole_seconds(&n) {
                Some(s) if s > MAX_EXPIRES_AT => {
                    problem(
                        "expires_at",
                        "out_of_range",
                        format!("must be at most {MAX_EXPIRES_AT} (the end of the year 9999)"),
                    );
                    None
                }
                Some(s) if s * 1000 > now_ms => Some(Some(s * 1000)),
                Some(_) => {
                    problem(
                        "expires_at",
                        "in_the_past",
                        "must be a Unix time in seconds after now".into(),
                    );
                    None
                }
                None => {
                    problem(
                        "expires_at",
                        "invalid_time",
                        "must be a whole Unix time in seconds".into(),
                    );
                    None
                }
            },
            Some(_) => {
                problem(
                    "expires_at",
                    "invalid_type",
                    "must be a Unix time in seconds, or null for never".into(),
                );
                None
            }
        };
        let detail = match take("detail") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(d)) if d.chars().count() <= MAX_DETAIL_CHARS => Some(Some(d)),
            Some(Value::String(_)) => {
                problem(
                    "detail",
                    "too_long",
                    format!("at most {MAX_DETAIL_CHARS} characters"),
                );
                None
            }
            Some(_) => {
                problem("detail", "invalid_type", "must be a string".into());
                None
            }
        };
        let (Some(address), Some(scope), Some(reason), Some(expires_at_ms), Some(detail)) =
            (address, scope, reason, expires_at_ms, detail)
        else {
            continue;
        };
        if entries
            .iter()
            .any(|e| e.address == address && e.scope == scope)
        {
            problem(
                "address",
                "duplicate_entry",
                format!(
                    "{address} with scope {} is already in this request",
                    scope.as_stored()
                ),
            );
            continue;
        }
        entries.push(Entry {
            tenant: tenant.to_string(),
            address,
            scope,
            reason,
            message_id: None,
            detail,
            created_at_ms: now_ms,
            expires_at_ms,
        });
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    Ok(entries)
}

/// What `DELETE /v1/suppressions/{address}` removes: the address as the
/// list keeps it, and one scope (`?scope=`) or, without it, every scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub address: String,
    pub scope: Option<String>,
}

/// Reads a removal: the path's address segment (still percent-encoded, as
/// the path arrives) and the query pairs.
pub fn parse_removal<'a>(
    segment: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Removal, ApiError> {
    let decoded = percent_decoded(segment).ok_or_else(|| {
        ApiError::invalid_field(
            "address",
            "invalid_encoding",
            "the path's address must be UTF-8, percent-encoded",
        )
    })?;
    let address = EmailAddress::parse(decoded.trim()).map_err(|e| {
        ApiError::invalid_field("address", e.rule(), format!("not an address: {e}"))
    })?;
    let mut scope = None;
    for (name, value) in pairs {
        match name {
            "scope" => {
                let parsed = Scope::parse(value)
                    .map_err(|rule| ApiError::invalid_field("scope", "invalid_scope", rule))?;
                scope = Some(parsed.as_stored());
            }
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown_parameter",
                    "known parameters: scope",
                ));
            }
        }
    }
    Ok(Removal {
        address: address_key(&address.to_string()),
        scope,
    })
}

/// `%XX` sequences decoded; `None` for a broken one or bytes that are not UTF-8.
pub(crate) fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One stored row of `suppressions` (D1 gives numbers as floating point).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EntryRow {
    pub address: String,
    pub scope: String,
    pub reason: String,
    pub message_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: f64,
    pub expires_at: Option<f64>,
}

impl EntryRow {
    /// The entry, for the tenant it was read for; `None` for a row whose
    /// scope or reason this build does not know (never applied).
    pub fn entry(&self, tenant: &str) -> Option<Entry> {
        Some(Entry {
            tenant: tenant.to_string(),
            address: self.address.clone(),
            scope: Scope::parse(&self.scope).ok()?,
            reason: Reason::parse(&self.reason)?,
            message_id: self.message_id.clone(),
            detail: self.detail.clone(),
            created_at_ms: self.created_at as u64,
            expires_at_ms: self.expires_at.map(|v| v as u64),
        })
    }
}

/// An entry as the API shows it; `active` is false once it has expired.
pub fn view(row: &EntryRow, now_ms: u64) -> Value {
    let expires_at_ms = row.expires_at.map(|v| v as u64);
    json!({
        "address": row.address,
        "scope": row.scope,
        "reason": row.reason,
        "message_id": row.message_id,
        "detail": row.detail,
        "created_at": (row.created_at as u64) / 1000,
        "expires_at": expires_at_ms.map(|v| v / 1000),
        "active": expires_at_ms.is_none_or(|at| now_ms < at),
    })
}

/// A page of entries: `rows` holds up to `limit + 1` (one more says there is
/// a next page).
pub fn page(mut rows: Vec<EntryRow>, limit: u32, now_ms: u64) -> Value {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = rows.last().filter(|_| more).map(|r| {
        Cursor {
            created_at_ms: r.created_at as u64,
            address: r.address.clone(),
            scope: r.scope.clone(),
        }
        .encode()
    });
    let data: Vec<Value> = rows.iter().map(|r| view(r, now_ms)).collect();
    json!({"data": data, "next_cursor": next_cursor})
}

/// The answer to an add: how many entries and the entries as stored.
pub fn added(entries: &[Entry], now_ms: u64) -> Value {
    let data: Vec<Value> = entries
        .iter()
        .map(|e| {
            view(
                &EntryRow {
                    address: e.address.clone(),
                    scope: e.scope.as_stored(),
                    reason: e.reason.as_str().to_string(),
                    message_id: e.message_id.clone(),
                    detail: e.detail.clone(),
                    created_at: e.created_at_ms as f64,
                    expires_at: e.expires_at_ms.map(|v| v as f64),
                },
                now_ms,
            )
        })
        .collect();
    json!({"added": entries.len(), "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn problems(e: &ApiError) -> Vec<(String, String)> {
        e.details
            .iter()
            .map(|p| (p.field.clone(), p.rule.clone()))
            .collect()
    }

    #[test]
    fn list_query_table() {
        let ok = parse_list_query([
            ("address", "Bob@Example.NET"),
            ("reason", "hard_bounce"),
            ("scope", "stream:marketing"),
            ("limit", "7"),
        ])
        .unwrap();
        assert_eq!(ok.address.as_deref(), Some("bob@example.net"));
        assert_eq!(ok.reason, Some(Reason::HardBounce));
        assert_eq!(ok.scope.as_deref(), Some("stream:marketing"));
        assert_eq!(ok.limit, 7);
        assert_eq!(parse_list_query([]).unwrap().limit, DEFAULT_LIMIT);
        let table: &[(&str, &str, &str)] = &[
            ("address", "not-an-address", "missing_at"),
            ("reason", "bounce", "invalid_reason"),
            ("scope", "everything", "invalid_scope"),
            ("limit", "0", "out_of_range"),
            ("limit", "101", "out_of_range"),
            ("limit", "x", "out_of_range"),
            ("cursor", "!!", "invalid_cursor"),
            ("status", "x", "unknown_parameter"),
        ];
        for (name, value, rule) in table {
            let e = parse_list_query([(*name, *value)]).unwrap_err();
            assert_eq!(e.status, 422, "{name}={value}");
            assert_eq!(problems(&e), vec![(name.to_string(), rule.to_string())]);
        }
    }

    #[test]
    fn cursors_round_trip_and_forged_ones_are_refused() {
        let c = Cursor {
            created_at_ms: 1_700_000_000_123,
            address: "a.b@x.net".into(),
            scope: "topic:news.weekly".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            URL_SAFE_NO_PAD.encode("[1, \"a@x.net\", \"nowhere\"]"),
            URL_SAFE_NO_PAD.encode("[-1, \"a@x.net\", \"all\"]"),
            URL_SAFE_NO_PAD.encode("{}"),
            "%%%".to_string(),
        ] {
            assert_eq!(Cursor::decode(&bad), None, "{bad}");
        }
    }

    fn add(body: Value) -> Result<Vec<Entry>, ApiError> {
        parse_add(body.to_string().as_bytes(), "acme", NOW)
    }

    #[test]
    fn an_add_with_defaults() {
        let later = NOW / 1000 + 3600;
        let entries = add(json!({"suppressions": [
            {"address": "Bob@Example.NET"},
            {"address": "bob@example.net", "scope": "topic:news", "reason": "unsubscribe",
             "expires_at": later, "detail": "asked by phone"},
        ]}))
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].address, "bob@example.net");
        assert_eq!(entries[0].scope, Scope::All);
        assert_eq!(entries[0].reason, Reason::Manual);
        assert_eq!(entries[0].expires_at_ms, None);
        assert_eq!(entries[0].tenant, "acme");
        assert_eq!(entries[0].created_at_ms, NOW);
        assert_eq!(entries[1].scope, Scope::Topic("news".into()));
        assert_eq!(entries[1].reason, Reason::Unsubscribe);
        assert_eq!(entries[1].expires_at_ms, Some(later * 1000));
        assert_eq!(entries[1].detail.as_deref(), Some("asked by phone"));
        let shown = added(&entries, NOW);
        assert_eq!(shown["added"], 2);
        assert_eq!(shown["data"][1]["expires_at"], later);
        assert_eq!(shown["data"][1]["active"], true);
        assert_eq!(shown["data"][0]["created_at"], NOW / 1000);
    }

    /// Each invalid body, and every (field, rule) it must be refused with.
    #[test]
    fn invalid_adds_name_each_field_and_rule() {
        let past = NOW / 1000 - 1;
        let table: Vec<(Value, Vec<(&str, &str)>)> = vec![
            (json!({}), vec![("suppressions", "required")]),
            (
                json!({"suppressions": [{"address": "a@x.net"}], "dry_run": true}),
                vec![("dry_run", "unknown_field")],
            ),
            (
                json!([[{"address": "a@x.net"}]]),
                vec![("", "invalid_type")],
            ),
            (
                json!({"suppressions": [{"address": null, "scope": null, "reason": null}]}),
                vec![
                    ("suppressions[0].address", "invalid_type"),
                    ("suppressions[0].scope", "invalid_type"),
                    ("suppressions[0].reason", "invalid_type"),
                ],
            ),
            (
                json!({"suppressions": []}),
                vec![("suppressions", "required")],
            ),
            (
                json!({"suppressions": "a@x.net"}),
                vec![("suppressions", "invalid_type")],
            ),
            (
                json!({"suppressions": [{}]}),
                vec![("suppressions[0].address", "required")],
            ),
            (
                json!({"suppressions": ["a@x.net"]}),
                vec![("suppressions[0]", "invalid_type")],
            ),
            (
                json!({"suppressions": [{"address": "a@x.net", "colour": "red"}]}),
                vec![("suppressions[0].colour", "unknown_field")],
            ),
            (
                json!({"suppressions": [
                    {"address": "a@x.net"},
                    {"address": "nobody", "scope": "stream:", "reason": "bored",
                     "expires_at": past, "detail": 5},
                ]}),
                vec![
                    ("suppressions[1].address", "missing_at"),
                    ("suppressions[1].scope", "invalid_scope"),
                    ("suppressions[1].reason", "invalid_reason"),
                    ("suppressions[1].expires_at", "in_the_past"),
                    ("suppressions[1].detail", "invalid_type"),
                ],
            ),
            (
                json!({"suppressions": [{"address": 7, "expires_at": "tomorrow"}]}),
                vec![
                    ("suppressions[0].address", "invalid_type"),
                    ("suppressions[0].expires_at", "invalid_type"),
                ],
            ),
            (
                json!({"suppressions": [{"address": "a@x.net", "expires_at": 1.5}]}),
                vec![("suppressions[0].expires_at", "invalid_time")],
            ),
            (
                json!({"suppressions": [{"address": "a@x.net", "expires_at": -1}]}),
                vec![("suppressions[0].expires_at", "invalid_time")],
            ),
            (
                json!({"suppressions": [{"address": "a@x.net", "expires_at": MAX_EXPIRES_AT + 1}]}),
                vec![("suppressions[0].expires_at", "out_of_range")],
            ),
            (
                json!({"suppressions": [{"address": "a@x.net", "detail": "d".repeat(501)}]}),
                vec![("suppressions[0].detail", "too_long")],
            ),
            (
                json!({"suppressions": [{"address": "A@x.net"}, {"address": "a@X.net", "scope": "all"}]}),
                vec![("suppressions[1].address", "duplicate_entry")],
            ),
            (
                json!({"suppressions": [{"address": "a@x.net\r\nBcc: b@x.net"}]}),
                vec![("suppressions[0].address", "header_injection")],
            ),
        ];
        for (body, want) in table {
            let e = add(body.clone()).unwrap_err();
            assert_eq!(e.status, 422, "{body}");
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(f, r)| (f.to_string(), r.to_string()))
                .collect();
            assert_eq!(problems(&e), want, "{body}");
            assert_eq!(e.field.as_deref(), Some(want[0].0.as_str()));
        }
        let e = parse_add(b"not json", "acme", NOW).unwrap_err();
        assert_eq!((e.status, e.rule), (400, "malformed_json"));
        let e = parse_add(b"[1]", "acme", NOW).unwrap_err();
        assert_eq!(e.status, 422);
        let spaced = add(json!({"suppressions": [{"address": " a@x.net\t"}]})).unwrap();
        assert_eq!(spaced[0].address, "a@x.net");
        // `5.0` is a whole number, as JSON Schema says.
        let later = (NOW / 1000 + 60) as f64;
        let whole = add(json!({"suppressions": [{"address": "a@x.net", "expires_at": later}]}));
        assert_eq!(whole.unwrap()[0].expires_at_ms, Some(NOW + 60_000));
        let many: Vec<Value> = (0..=MAX_ADD)
            .map(|i| json!({"address": format!("u{i}@x.net")}))
            .collect();
        let e = add(json!({"suppressions": many})).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (413, Some("suppressions")));
    }

    #[test]
    fn removals_decode_the_path_and_check_the_scope() {
        let r = parse_removal("Bob%40Example.net", []).unwrap();
        assert_eq!(
            r,
            Removal {
                address: "bob@example.net".into(),
                scope: None
            }
        );
        let r = parse_removal("bob@example.net", [("scope", "topic:news")]).unwrap();
        assert_eq!(r.scope.as_deref(), Some("topic:news"));
        let table: &[(&str, &str, &str, &str)] = &[
            ("bob%4", "", "address", "invalid_encoding"),
            ("%ff%fe", "", "address", "invalid_encoding"),
            ("bob", "", "address", "missing_at"),
            ("bob%0D%0A@x.net", "", "address", "header_injection"),
            ("bob@x.net", "scope=any", "scope", "invalid_scope"),
            ("bob@x.net", "reason=manual", "reason", "unknown_parameter"),
        ];
        for (segment, query, field, rule) in table {
            let pairs: Vec<(&str, &str)> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .collect();
            let e = parse_removal(segment, pairs).unwrap_err();
            assert_eq!(
                problems(&e),
                vec![(field.to_string(), rule.to_string())],
                "{segment}?{query}"
            );
        }
    }

    #[test]
    fn pages_show_entries_with_their_state_and_a_cursor_when_more_follow() {
        let row = |address: &str, created: u64, expires: Option<u64>| EntryRow {
            address: address.into(),
            scope: "all".into(),
            reason: "hard_bounce".into(),
            message_id: Some("m1".into()),
            detail: Some("550 5.1.1 No such user".into()),
            created_at: created as f64,
            expires_at: expires.map(|v| v as f64),
        };
        let rows = vec![
            row("a@x.net", NOW - 1, None),
            row("b@x.net", NOW - 2, Some(NOW - 1)),
            row("c@x.net", NOW - 3, Some(NOW + 1)),
        ];
        let p = page(rows.clone(), 2, NOW);
        assert_eq!(p["data"].as_array().unwrap().len(), 2);
        assert_eq!(p["data"][0]["active"], true);
        assert_eq!(p["data"][1]["active"], false);
        assert_eq!(p["data"][0]["reason"], "hard_bounce");
        assert_eq!(p["data"][0]["message_id"], "m1");
        let cursor = Cursor::decode(p["next_cursor"].as_str().unwrap()).unwrap();
        assert_eq!(cursor.address, "b@x.net");
        assert_eq!(cursor.created_at_ms, NOW - 2);
        let last = page(rows, 3, NOW);
        assert_eq!(last["next_cursor"], Value::Null);
        assert_eq!(last["data"][2]["active"], true);
        let e = row("a@x.net", 5, None).entry("acme").unwrap();
        assert_eq!(
            (e.scope, e.reason, e.created_at_ms),
            (Scope::All, Reason::HardBounce, 5)
        );
        let mut unknown = row("a@x.net", 5, None);
        unknown.scope = "list:x".into();
        assert_eq!(unknown.entry("acme"), None);
    }
}
