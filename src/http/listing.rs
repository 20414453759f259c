//! `GET /v1/messages?status=&tag=&since=&limit=&cursor=`: the query's rules
//! and the cursor format.
//!
//! Messages are listed newest first. The cursor is opaque to callers: it
//! names the last message of the previous page (its creation time and id), so
//! pages stay stable while new messages arrive.
//! Must not: perform I/O; the edge runs the query this describes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::accept::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// Statuses a message can have, as the API shows them.
pub const STATUSES: [&str; 10] = [
    "queued",
    "deferred",
    "delivered",
    "partially_delivered",
    "failed",
    "unknown",
    "suppressed",
    "held",
    "scheduled",
    "canceled",
];

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: u64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_at, self.id))
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, id) = text.split_once('.')?;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return None;
        }
        Some(Cursor {
            created_at: at.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// A checked list query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub status: Option<String>,
    /// `name:value`; matches messages sent with that tag.
    pub tag: Option<(String, String)>,
    /// Only messages created at or after this Unix time (seconds).
    pub since: Option<u64>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// Reads the query string's pairs (already percent-decoded).
pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    for (name, value) in pairs {
        match name {
            "status" => {
                if !STATUSES.contains(&value) {
                    return Err(ApiError::invalid_field(
                        "status",
                        "invalid_status",
                        format!("must be one of: {}", STATUSES.join(", ")),
                    ));
                }
                q.status = Some(value.to_string());
            }
            "tag" => match value.split_once(':') {
                Some((n, v)) if !n.is_empty() => q.tag = Some((n.to_string(), v.to_string())),
                _ => {
                    return Err(ApiError::invalid_field(
                        "tag",
                        "invalid_tag",
                        "must be name:value",
                    ));
                }
            },
            "since" => {
                q.since = Some(value.parse().map_err(|_| {
                    ApiError::invalid_field(
                        "since",
                        "invalid_time",
                        "must be a Unix time in seconds",
                    )
                })?);
            }
            "limit" => q.limit = parse_limit(value, MAX_LIMIT)?,
            "cursor" => q.cursor = Some(parse_cursor(value)?),
            other => {
                return Err(unknown_parameter(
                    other,
                    "status, tag, since, limit, cursor",
                ));
            }
        }
    }
    Ok(q)
}

/// A send request's `tags` (an object, or a list of `{name, value}`) as the
/// JSON object stored with the message, for the `tag=` filter. The request
/// itself is validated elsewhere; anything unexpected here is simply untagged.
/// The stored form of a validated message's tags (`{"name": "value"}`), or
/// `None` when it has none.
pub fn tags_json(tags: &[crate::message::Tag]) -> Option<String> {
    if tags.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|t| (t.name.clone(), serde_json::Value::String(t.value.clone())))
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

#[cfg(test)]
fn tags_object(tags: &serde_json::Value) -> Option<String> {
    use serde_json::{Map, Value};
    let mut out = Map::new();
    match tags {
        Value::Object(map) => {
            for (name, value) in map {
                out.insert(name.clone(), Value::String(value.as_str()?.to_string()));
            }
        }
        Value::Array(list) => {
            for tag in list {
                let name = tag.get("name")?.as_str()?;
                let value = tag.get("value")?.as_str()?;
                out.insert(name.to_string(), Value::String(value.to_string()));
            }
        }
        _ => return None,
    }
    Some(Value::Object(out).to_string())
}

/// The one value of query parameter `name` among `pairs`, if given; given
/// twice, the error naming it with `rule`.
pub fn single_parameter<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    name: &str,
    rule: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    let mut values = pairs
        .into_iter()
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::invalid_field(
            name,
            rule,
            format!("give `{name}` at most once"),
        ));
    }
    Ok(first)
}

/// A page size from 1 to `max`, or the error naming `limit`.
pub fn parse_limit(value: &str, max: u32) -> Result<u32, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "limit",
                "out_of_range",
                format!("must be a whole number from 1 to {max}"),
            )
        })
}

/// A cursor handed back from a previous page, or the error naming `cursor`.
pub fn parse_cursor(value: &str) -> Result<Cursor, ApiError> {
    Cursor::decode(value).ok_or_else(invalid_cursor)
}

/// The error of a cursor that is not one edgerelay handed out.
pub fn invalid_cursor() -> ApiError {
    ApiError::invalid_field(
        "cursor",
        "invalid_cursor",
        "pass back the next_cursor of a previous page unchanged",
    )
}

/// The error of a query parameter a list does not take; `known` lists
/// the ones it does.
pub fn unknown_parameter(name: &str, known: &str) -> ApiError {
    ApiError::invalid_field(
        name,
        "unknown_parameter",
        format!("known parameters: {known}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_table() {
        let ok: Vec<(&[(&str, &str)], ListQuery)> = vec![
            (
                &[],
                ListQuery {
                    limit: 20,
                    ..Default::default()
                },
            ),
            (
                &[
                    ("status", "failed"),
                    ("limit", "100"),
                    ("since", "1700000000"),
                ],
                ListQuery {
                    status: Some("failed".into()),
                    since: Some(1_700_000_000),
                    limit: 100,
                    ..Default::default()
                },
            ),
            (
                &[("tag", "kind:welcome:v2")],
                ListQuery {
                    tag: Some(("kind".into(), "welcome:v2".into())),
                    limit: 20,
                    ..Default::default()
                },
            ),
        ];
        for (pairs, expected) in ok {
            assert_eq!(
                parse_query(pairs.iter().copied()).unwrap(),
                expected,
                "{pairs:?}"
            );
        }
        type Bad<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let bad: &[Bad] = &[
            (&[("status", "sent")], "status", "invalid_status"),
            (&[("limit", "0")], "limit", "out_of_range"),
            (&[("limit", "101")], "limit", "out_of_range"),
            (&[("limit", "ten")], "limit", "out_of_range"),
            (&[("since", "-1")], "since", "invalid_time"),
            (&[("tag", "novalue")], "tag", "invalid_tag"),
            (&[("tag", ":v")], "tag", "invalid_tag"),
            (&[("cursor", "!!")], "cursor", "invalid_cursor"),
            (&[("order", "asc")], "order", "unknown_parameter"),
        ];
        for (pairs, field, rule) in bad {
            let e = parse_query(pairs.iter().copied()).unwrap_err();
            assert_eq!(e.status, 422, "{pairs:?}");
            assert_eq!(e.field.as_deref(), Some(*field), "{pairs:?}");
            assert_eq!(e.details[0].rule, *rule, "{pairs:?}");
        }
    }

    #[test]
    fn tags_are_stored_as_one_object() {
        let table = [
            (r#"{"kind":"welcome"}"#, Some(r#"{"kind":"welcome"}"#)),
            (
                r#"[{"name":"kind","value":"welcome"}]"#,
                Some(r#"{"kind":"welcome"}"#),
            ),
            (r#"[{"name":"kind"}]"#, None),
            (r#""kind""#, None),
            (r#"{"n":1}"#, None),
        ];
        for (input, expected) in table {
            let v: serde_json::Value = serde_json::from_str(input).unwrap();
            assert_eq!(tags_object(&v).as_deref(), expected, "{input}");
            // Validated tags store the same object as the raw request's.
            if let Some(list) = v.as_array().filter(|l| !l.is_empty()) {
                let tags: Option<Vec<crate::message::Tag>> = list
                    .iter()
                    .map(|t| serde_json::from_value(t.clone()).ok())
                    .collect();
                if let Some(tags) = tags {
                    assert_eq!(tags_json(&tags).as_deref(), expected, "{input}");
                }
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let c = Cursor {
            created_at: 1_700_000_123,
            id: "AbC_12-x".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        let forged = URL_SAFE_NO_PAD.encode("1.x' OR 1=1 --");
        assert_eq!(Cursor::decode(&forged), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("nan.abc")), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("12.")), None);
    }
}
