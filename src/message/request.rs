//! The wire shape of a send request (HTTP body or queue payload).
//!
//! Owns the serde types that mirror the public JSON API and the decoding of a
//! request body into them, separating "not JSON" (400) from "JSON with the
//! wrong shape" (422, with the offending field named). Must not: judge
//! content (addresses, header names, sizes): that is [`super::validate`],
//! which turns a [`SendRequest`] into a [`super::Message`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{FieldError, RequestError, ValidationErrors};

/// A send request exactly as the API accepts it. Unknown fields are rejected
/// so that typos (`"hmtl"`) fail loudly instead of sending a message without
/// the intended part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<MailboxInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<OneOrMany<MailboxInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<OneOrMany<MailboxInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcc: Option<OneOrMany<MailboxInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<OneOrMany<MailboxInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<AttachmentInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagsInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The message stream: `transactional` (the default), `marketing`, or
    /// one of the sending key's named streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The topic within the stream that a recipient may leave on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// One-click unsubscribe for this message: `true` asks for it outside the
    /// marketing stream; marketing mail always has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<bool>,
    /// Which delivery status notifications to ask for beyond failures and
    /// delays: `{"delivery": true}` asks for proof of delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyInput>,
    /// Open and click tracking for this message: off unless asked, for
    /// every stream (see [`super::tracking`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<TrackingInput>,
    /// Send later: an ISO 8601 time with an offset, a relative time
    /// (`in 1 hour`), or Unix seconds (see `accept::schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<ScheduledAt>,
}

/// `"scheduled_at"`: text (`2026-12-01T09:00:00Z`, `in 1 hour`) or Unix
/// seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScheduledAt {
    Unix(i64),
    Text(String),
}

/// `"tracking": {"opens": true, "clicks": true, "mode": "recipient",
/// "consent": true}`. `consent` is `true` (every recipient agreed to
/// per-recipient tracking), `false`, or the list of recipients who agreed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicks: Option<bool>,
    /// `recipient` (the default) or `aggregate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentInput>,
}

/// `consent`: everyone or no one, or the recipients who agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConsentInput {
    All(bool),
    Recipients(Vec<String>),
}

/// The fields of `tracking`.
const TRACKING_FIELDS: &[&str] = &["opens", "clicks", "mode", "consent"];

/// `"notify": {"delivery": true}`: ask the receiving systems for a success
/// notification (RFC 3461 `NOTIFY=SUCCESS`) as well as failures and delays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<bool>,
}

/// The fields of `notify`.
const NOTIFY_FIELDS: &[&str] = &["delivery"];

/// Top-level field names, used to name unknown fields precisely.
const KNOWN_FIELDS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply_to",
    "subject",
    "text",
    "html",
    "headers",
    "attachments",
    "tags",
    "metadata",
    "stream",
    "topic",
    "unsubscribe",
    "notify",
    "tracking",
    "scheduled_at",
];

/// `"Ada <ada@example.com>"` or `{"email": "ada@example.com", "name": "Ada"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MailboxInput {
    Text(String),
    Object(MailboxObject),
}

/// Hand-written because a derived struct also accepts a JSON array
/// (`["a@x", "b@x"]` would become one mailbox named "b@x"); only a string or
/// an object is a mailbox.
impl<'de> Deserialize<'de> for MailboxInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MailboxVisitor;

        impl<'de> serde::de::Visitor<'de> for MailboxVisitor {
            type Value = MailboxInput;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address string or an object {\"email\", \"name\"}")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<MailboxInput, E> {
                Ok(MailboxInput::Text(value.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MailboxInput, A::Error> {
                MailboxObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(MailboxInput::Object)
            }
        }

        deserializer.deserialize_any(MailboxVisitor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxObject {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A single value or a list of them; `"to": "a@x"` and `"to": ["a@x"]` mean
/// the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    // Tried first: a list must never be mistaken for a single item.
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    pub fn len(&self) -> usize {
        match self {
            OneOrMany::One(_) => 1,
            OneOrMany::Many(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items with their JSON path under `field`: `to` for a single value,
    /// `to[i]` for list items, so errors point at the exact element.
    pub fn with_paths(&self, field: &str) -> Vec<(String, &T)> {
        match self {
            OneOrMany::One(item) => vec![(field.to_string(), item)],
            OneOrMany::Many(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{field}[{i}]"), item))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    Attachment,
    Inline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Base64 (standard alphabet); whitespace is ignored.
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Referenced from HTML as `cid:<content_id>`; implies inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
}

/// Tags for delivery events, as `[{"name": .., "value": ..}]` or `{"name": "value"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TagsInput {
    List(Vec<Tag>),
    Map(BTreeMap<String, String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl SendRequest {
    /// Decodes an HTTP request body.
    ///
    /// Syntax errors give [`RequestError::MalformedJson`]; a JSON value of the
    /// wrong shape gives [`RequestError::Invalid`] listing every unknown field
    /// and every field of the wrong type with its path.
    pub fn from_json(body: &[u8]) -> Result<SendRequest, RequestError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| RequestError::MalformedJson {
                message: e.to_string(),
                line: e.line(),
                column: e.column(),
            })?;
        let Value::Object(fields) = &value else {
            return Err(invalid(vec![FieldError::new(
                "",
                "invalid_type",
                "request body must be a JSON object",
            )]));
        };
        let mut errors = Vec::new();
        for (key, field_value) in fields {
            if KNOWN_FIELDS.contains(&key.as_str()) {
                errors.extend(shape_errors(key, field_value));
            } else {
                errors.push(FieldError::new(
                    key.clone(),
                    "unknown_field",
                    format!(
                        "unknown field {key:?}; known fields are {}",
                        KNOWN_FIELDS.join(", ")
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        // The per-field checks above cover every way this can fail; the map
        // keeps a message should a new field slip past them.
        SendRequest::deserialize(&value)
            .map_err(|e| invalid(vec![FieldError::new("", "invalid_type", e.to_string())]))
    }
}

fn invalid(errors: Vec<FieldError>) -> RequestError {
    RequestError::Invalid(ValidationErrors { errors })
}

/// Type errors of one known top-level field, with element paths for lists.
fn shape_errors(key: &str, value: &Value) -> Vec<FieldError> {
    if value.is_null() {
        return Vec::new();
    }
    match key {
        "from" => mailbox_shape(key, value).into_iter().collect(),
        "to" | "cc" | "bcc" | "reply_to" => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| mailbox_shape(&format!("{key}[{i}]"), item))
                .collect(),
            _ => mailbox_shape(key, value).into_iter().collect(),
        },
        "subject" | "text" | "html" | "stream" | "topic" => {
            type_error::<String>(key, value, "a string")
        }
        "unsubscribe" => type_error::<bool>(key, value, "true or false"),
        "headers" => type_error::<BTreeMap<String, String>>(
            key,
            value,
            "an object of header names to string values",
        ),
        "attachments" => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    AttachmentInput::deserialize(item)
                        .err()
                        .map(|e| serde_error(format!("{key}[{i}]"), &e))
                })
                .collect(),
            _ => vec![FieldError::new(
                key,
                "invalid_type",
                "expected a list of attachments",
            )],
        },
        "tags" => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    Tag::deserialize(item)
                        .err()
                        .map(|e| serde_error(format!("{key}[{i}]"), &e))
                })
                .collect(),
            _ => type_error::<BTreeMap<String, String>>(
                key,
                value,
                "a list of {\"name\", \"value\"} objects or an object of names to string values",
            ),
        },
        "metadata" => type_error::<Map<String, Value>>(key, value, "an object"),
        "notify" => notify_shape(key, value),
        "tracking" => tracking_shape(key, value),
        "scheduled_at" => type_error::<ScheduledAt>(
            key,
            value,
            "text (an ISO 8601 time with an offset, or `in 1 hour`) or Unix seconds",
        ),
        _ => Vec::new(),
    }
}

/// `notify` is an object of known flags, each true, false or null; every
/// problem is named by its path (`notify.delivery`).
fn notify_shape(key: &str, value: &Value) -> Vec<FieldError> {
    let Value::Object(fields) = value else {
        return vec![FieldError::new(
            key,
            "invalid_type",
            "expected an object such as {\"delivery\": true}",
        )];
    };
    let mut errors = Vec::new();
    for (name, flag) in fields {
        let path = format!("{key}.{name}");
        if !NOTIFY_FIELDS.contains(&name.as_str()) {
            errors.push(FieldError::new(
                path,
                "unknown_field",
                format!(
                    "unknown field {name:?}; known fields are {}",
                    NOTIFY_FIELDS.join(", ")
                ),
            ));
        } else if !(flag.is_boolean() || flag.is_null()) {
            errors.push(FieldError::new(
                path,
                "invalid_type",
                "expected true or false",
            ));
        }
    }
    errors
}

/// `tracking` is an object of known fields, each of its type or null;
/// every problem is named by its path (`tracking.consent[1]`).
fn tracking_shape(key: &str, value: &Value) -> Vec<FieldError> {
    let Value::Object(fields) = value else {
        return vec![FieldError::new(
            key,
            "invalid_type",
            "expected an object such as {\"opens\": true, \"clicks\": true}",
        )];
    };
    let mut errors = Vec::new();
    for (name, field) in fields {
        let path = format!("{key}.{name}");
        if field.is_null() {
            continue;
        }
        match name.as_str() {
            "opens" | "clicks" if !field.is_boolean() => errors.push(FieldError::new(
                path,
                "invalid_type",
                "expected true or false",
            )),
            "mode" if !field.is_string() => errors.push(FieldError::new(
                path,
                "invalid_type",
                "expected \"recipient\" or \"aggregate\"",
            )),
            "consent" => match field {
                Value::Bool(_) => {}
                Value::Array(items) => errors.extend(
                    items
                        .iter()
                        .enumerate()
                        .filter(|(_, item)| !item.is_string())
                        .map(|(i, _)| {
                            FieldError::new(
                                format!("{path}[{i}]"),
                                "invalid_type",
                                "expected an address string",
                            )
                        }),
                ),
                _ => errors.push(FieldError::new(
                    path,
                    "invalid_type",
                    "expected true, false or a list of recipient addresses",
                )),
            },
            known if TRACKING_FIELDS.contains(&known) => {}
            _ => errors.push(FieldError::new(
                path,
                "unknown_field",
                format!(
                    "unknown field {name:?}; known fields are {}",
                    TRACKING_FIELDS.join(", ")
                ),
            )),
        }
    }
    errors
}

fn mailbox_shape(path: &str, value: &Value) -> Option<FieldError> {
    match value {
        Value::String(_) => None,
        Value::Object(_) => MailboxObject::deserialize(value)
            .err()
            .map(|e| serde_error(path.to_string(), &e)),
        _ => Some(FieldError::new(
            path,
            "invalid_type",
            "expected an address string or an object {\"email\": .., \"name\": ..}",
        )),
    }
}

fn type_error<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &Value,
    expected: &str,
) -> Vec<FieldError> {
    match T::deserialize(value) {
        Ok(_) => Vec::new(),
        Err(_) => vec![FieldError::new(
            key,
            "invalid_type",
            format!("expected {expected}"),
        )],
    }
}

/// serde's own message names unknown and missing fields; keep it and pick
/// the stable rule from its wording.
fn serde_error(path: String, error: &serde_json::Error) -> FieldError {
    let message = error.to_string();
    let rule = if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "required"
    } else {
        "invalid_type"
    };
    FieldError::new(path, rule, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_rules(body: &str) -> Vec<(String, &'static str)> {
        match SendRequest::from_json(body.as_bytes()) {
            Err(RequestError::Invalid(errors)) => errors
                .errors
                .into_iter()
                .map(|e| (e.field, e.rule))
                .collect(),
            other => panic!("expected Invalid for {body}, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_distinguished_from_invalid_content() {
        for body in ["", "{", "{\"from\": }", "not json", "{\"to\": [1,]}"] {
            let error = SendRequest::from_json(body.as_bytes()).unwrap_err();
            assert!(
                matches!(error, RequestError::MalformedJson { .. }),
                "{body}: {error:?}"
            );
            assert_eq!(error.status_hint(), 400);
        }
        let error = SendRequest::from_json(b"{\"hmtl\": \"<p>\"}").unwrap_err();
        assert_eq!(error.status_hint(), 422);
    }

    #[test]
    fn shape_errors_name_the_offending_field() {
        for (body, expected) in [
            ("[]", vec![("", "invalid_type")]),
            ("{\"hmtl\": \"x\"}", vec![("hmtl", "unknown_field")]),
            (
                "{\"subject\": 5, \"bogus\": 1}",
                vec![("bogus", "unknown_field"), ("subject", "invalid_type")],
            ),
            (
                "{\"to\": [\"a@example.com\", 5]}",
                vec![("to[1]", "invalid_type")],
            ),
            (
                "{\"to\": {\"email\": \"a@example.com\", \"nmae\": \"A\"}}",
                vec![("to", "unknown_field")],
            ),
            ("{\"cc\": [{\"name\": \"A\"}]}", vec![("cc[0]", "required")]),
            (
                "{\"headers\": {\"X-A\": 1}}",
                vec![("headers", "invalid_type")],
            ),
            (
                "{\"attachments\": [{\"content\": \"\", \"size\": 1}]}",
                vec![("attachments[0]", "unknown_field")],
            ),
            (
                "{\"attachments\": [{\"filename\": \"a\"}]}",
                vec![("attachments[0]", "required")],
            ),
            (
                "{\"attachments\": [{\"content\": \"\", \"disposition\": \"hidden\"}]}",
                vec![("attachments[0]", "invalid_type")],
            ),
            (
                "{\"tags\": [{\"name\": \"a\"}]}",
                vec![("tags[0]", "required")],
            ),
            ("{\"tags\": \"a\"}", vec![("tags", "invalid_type")]),
            ("{\"metadata\": []}", vec![("metadata", "invalid_type")]),
            ("{\"stream\": 1}", vec![("stream", "invalid_type")]),
            ("{\"topic\": [\"a\"]}", vec![("topic", "invalid_type")]),
            (
                "{\"unsubscribe\": \"yes\"}",
                vec![("unsubscribe", "invalid_type")],
            ),
            ("{\"notify\": true}", vec![("notify", "invalid_type")]),
            (
                "{\"notify\": [\"delivery\"]}",
                vec![("notify", "invalid_type")],
            ),
            (
                "{\"notify\": {\"delivery\": \"yes\"}}",
                vec![("notify.delivery", "invalid_type")],
            ),
            (
                "{\"notify\": {\"delivery\": 1}}",
                vec![("notify.delivery", "invalid_type")],
            ),
            ("{\"tracking\": true}", vec![("tracking", "invalid_type")]),
            (
                "{\"scheduled_at\": true}",
                vec![("scheduled_at", "invalid_type")],
            ),
            (
                "{\"scheduled_at\": 1.5}",
                vec![("scheduled_at", "invalid_type")],
            ),
            (
                "{\"tracking\": {\"opens\": \"yes\", \"click\": true}}",
                vec![
                    ("tracking.opens", "invalid_type"),
                    ("tracking.click", "unknown_field"),
                ],
            ),
            (
                "{\"tracking\": {\"mode\": 1, \"consent\": [\"a@example.com\", 2]}}",
                vec![
                    ("tracking.mode", "invalid_type"),
                    ("tracking.consent[1]", "invalid_type"),
                ],
            ),
            (
                "{\"tracking\": {\"consent\": \"yes\"}}",
                vec![("tracking.consent", "invalid_type")],
            ),
            (
                "{\"notify\": {\"success\": true, \"delay\": false}}",
                vec![
                    ("notify.success", "unknown_field"),
                    ("notify.delay", "unknown_field"),
                ],
            ),
        ] {
            let mut got = field_rules(body);
            got.sort();
            let mut expected: Vec<(String, &str)> = expected
                .into_iter()
                .map(|(f, r)| (f.to_string(), r))
                .collect();
            expected.sort();
            assert_eq!(got, expected, "{body}");
        }
    }

    #[test]
    fn accepts_every_documented_shape() {
        let body = r#"{
            "from": {"email": "ada@example.com", "name": "Ada"},
            "to": "bob@example.com",
            "cc": ["Carol <carol@example.com>", {"email": "dan@example.com"}],
            "bcc": [],
            "reply_to": "replies@example.com",
            "subject": "Hi",
            "text": "Hello",
            "html": null,
            "headers": {"X-Campaign": "spring"},
            "attachments": [{"filename": "a.txt", "content": "aGk=", "content_type": "text/plain", "disposition": "attachment"}],
            "tags": {"kind": "welcome"},
            "metadata": {"user_id": 42},
            "stream": "marketing",
            "topic": "weekly",
            "unsubscribe": true,
            "notify": {"delivery": true},
            "tracking": {"opens": true, "clicks": false, "mode": "recipient", "consent": ["bob@example.com"]}
        }"#;
        let request = SendRequest::from_json(body.as_bytes()).unwrap();
        assert_eq!(
            request.cc.as_ref().map(|cc| cc.with_paths("cc").len()),
            Some(2)
        );
        assert_eq!(
            request.tags,
            Some(TagsInput::Map(BTreeMap::from([(
                "kind".to_string(),
                "welcome".to_string()
            )])))
        );
        // The queue carries the same shape: it must survive a serde round trip.
        let encoded = serde_json::to_vec(&request).unwrap();
        assert_eq!(SendRequest::from_json(&encoded).unwrap(), request);
    }
}
