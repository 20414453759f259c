//! Message streams: which stream a send belongs to, whether its copies carry
//! a one-click unsubscribe, and what an unsubscribe from it suppresses.
//!
//! `transactional` (the default) and `marketing` always exist; a key may name
//! more streams, each of one of those two kinds. Marketing mail always
//! carries the unsubscribe; other mail carries it when the request asks
//! (`"unsubscribe": true`). An unsubscribe leaves the message's topic when it
//! has one, else its stream; leaving the default transactional stream as a
//! whole is never offered (it holds password resets and receipts), so a
//! transactional message that asks for an unsubscribe must name a topic.
//! Owns: those rules and their errors. Must not: make tokens or links, or
//! know where the key's streams are configured.

use std::collections::BTreeMap;

use crate::message::unsubscribe::{LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, PLACEHOLDER};
use crate::message::{FieldError, Message};

/// The stream every message belongs to unless it names another.
pub const TRANSACTIONAL: &str = "transactional";
/// The built-in stream for bulk and promotional mail.
pub const MARKETING: &str = "marketing";

/// What kind of mail a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Transactional,
    Marketing,
}

/// A send's stream as the rules settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChoice {
    /// `transactional`, `marketing` or a named stream.
    pub name: String,
    pub kind: StreamKind,
    pub topic: Option<String>,
    /// Each recipient's copy carries its own one-click unsubscribe link.
    pub one_click: bool,
}

impl StreamChoice {
    /// The stream of a message that names none and asks for nothing.
    pub fn transactional() -> Self {
        StreamChoice {
            name: TRANSACTIONAL.to_string(),
            kind: StreamKind::Transactional,
            topic: None,
            one_click: false,
        }
    }

    /// `None` for the default stream, which is stored as no stream at all.
    pub fn stored_name(&self) -> Option<&str> {
        (self.name != TRANSACTIONAL).then_some(self.name.as_str())
    }

    /// The suppression scope an unsubscribe from this message records:
    /// `topic:<name>` when it has a topic, else `stream:<name>`.
    pub fn unsubscribe_scope(&self) -> String {
        scope(&self.name, self.topic.as_deref())
    }
}

/// The suppression scope for leaving `topic` (when given) or `stream`.
pub fn scope(stream: &str, topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("topic:{topic}"),
        None => format!("stream:{stream}"),
    }
}

/// Settles the stream of `message` for a key with the named streams
/// `named`; every problem is reported with its field.
pub fn choose(
    message: &Message,
    named: &BTreeMap<String, StreamKind>,
) -> Result<StreamChoice, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = message.stream().unwrap_or(TRANSACTIONAL);
    let kind = match name {
        TRANSACTIONAL => StreamKind::Transactional,
        MARKETING => StreamKind::Marketing,
        other => match named.get(other) {
            Some(kind) => *kind,
            None => {
                let mut known = vec![TRANSACTIONAL, MARKETING];
                known.extend(named.keys().map(String::as_str));
                errors.push(FieldError::new(
                    "stream",
                    "unknown_stream",
                    format!(
                        "this API key has no stream {other:?}; its streams are: {}",
                        known.join(", ")
                    ),
                ));
                StreamKind::Transactional
            }
        },
    };
    let one_click = match (kind, message.unsubscribe()) {
        (StreamKind::Marketing, Some(false)) => {
            errors.push(FieldError::new(
                "unsubscribe",
                "unsubscribe_required",
                format!(
                    "{name} is a marketing stream: its mail always carries a one-click unsubscribe"
                ),
            ));
            true
        }
        (StreamKind::Marketing, _) => true,
        (StreamKind::Transactional, asked) => asked == Some(true),
    };
    let topic = message.topic().map(str::to_string);
    if name == TRANSACTIONAL && one_click && topic.is_none() {
        errors.push(FieldError::new(
            "topic",
            "topic_required",
            "an unsubscribe from the transactional stream must name the topic it leaves, so it never stops password resets or receipts",
        ));
    }
    if topic.is_some() && !one_click {
        errors.push(FieldError::new(
            "topic",
            "topic_without_unsubscribe",
            "a topic is what a recipient unsubscribes from: send it in the marketing stream or with \"unsubscribe\": true",
        ));
    }
    for (field, body) in [("text", message.text()), ("html", message.html())] {
        if !one_click && body.is_some_and(|b| b.contains(PLACEHOLDER)) {
            errors.push(FieldError::new(
                field,
                "unsubscribe_url_without_unsubscribe",
                format!(
                    "{PLACEHOLDER} is only filled in for mail with a one-click unsubscribe: send it in the marketing stream or with \"unsubscribe\": true"
                ),
            ));
        }
    }
    if one_click {
        for header in message.headers() {
            let lower = header.name.to_ascii_lowercase();
            if lower == LIST_UNSUBSCRIBE.to_ascii_lowercase()
                || lower == LIST_UNSUBSCRIBE_POST.to_ascii_lowercase()
            {
                errors.push(FieldError::new(
                    format!("headers.{}", header.name),
                    "forbidden_header",
                    format!(
                        "{} is written by edgerelay for mail with a one-click unsubscribe",
                        header.name
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(StreamChoice {
            name: name.to_string(),
            kind,
            topic,
            one_click,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::message::{Limits, SendRequest};

    fn message(changes: Value) -> Message {
        let mut value = json!({
            "from": "ada@example.com",
            "to": "bob@example.com",
            "subject": "Hi",
            "text": "Hello"
        });
        if let (Value::Object(target), Value::Object(changes)) = (&mut value, changes) {
            target.extend(changes);
        }
        SendRequest::from_json(value.to_string().as_bytes())
            .unwrap()
            .validate(&Limits::default())
            .unwrap()
    }

    fn named() -> BTreeMap<String, StreamKind> {
        BTreeMap::from([
            ("newsletter".to_string(), StreamKind::Marketing),
            ("alerts".to_string(), StreamKind::Transactional),
        ])
    }

    /// (request fields, the choice or each error's field and rule).
    type Row = (
        Value,
        Result<StreamChoice, Vec<(&'static str, &'static str)>>,
    );

    #[test]
    fn streams_settle_by_table() {
        let ok = |name: &str, kind, topic: Option<&str>, one_click| {
            Ok(StreamChoice {
                name: name.to_string(),
                kind,
                topic: topic.map(str::to_string),
                one_click,
            })
        };
        use StreamKind::{Marketing as M, Transactional as T};
        let table: Vec<Row> = vec![
            (json!({}), ok("transactional", T, None, false)),
            (
                json!({"stream": "transactional"}),
                ok("transactional", T, None, false),
            ),
            (
                json!({"stream": "marketing"}),
                ok("marketing", M, None, true),
            ),
            (
                json!({"stream": "marketing", "unsubscribe": true, "topic": "weekly"}),
                ok("marketing", M, Some("weekly"), true),
            ),
            (
                json!({"stream": "newsletter"}),
                ok("newsletter", M, None, true),
            ),
            (json!({"stream": "alerts"}), ok("alerts", T, None, false)),
            (
                json!({"stream": "alerts", "unsubscribe": true}),
                ok("alerts", T, None, true),
            ),
            (
                json!({"unsubscribe": true, "topic": "product-news"}),
                ok("transactional", T, Some("product-news"), true),
            ),
            (
                json!({"stream": "marketing", "text": "Leave: {{unsubscribe_url}}"}),
                ok("marketing", M, None, true),
            ),
            (
                json!({"unsubscribe": false}),
                ok("transactional", T, None, false),
            ),
            (
                json!({"headers": {"List-Unsubscribe": "<mailto:u@example.com>"}}),
                ok("transactional", T, None, false),
            ),
            (
                json!({"stream": "promo"}),
                Err(vec![("stream", "unknown_stream")]),
            ),
            (
                json!({"stream": "marketing", "unsubscribe": false}),
                Err(vec![("unsubscribe", "unsubscribe_required")]),
            ),
            (
                json!({"stream": "newsletter", "unsubscribe": false}),
                Err(vec![("unsubscribe", "unsubscribe_required")]),
            ),
            (
                json!({"unsubscribe": true}),
                Err(vec![("topic", "topic_required")]),
            ),
            (
                json!({"topic": "weekly"}),
                Err(vec![("topic", "topic_without_unsubscribe")]),
            ),
            (
                json!({"text": "{{unsubscribe_url}}", "html": "<a href=\"{{unsubscribe_url}}\">x</a>"}),
                Err(vec![
                    ("text", "unsubscribe_url_without_unsubscribe"),
                    ("html", "unsubscribe_url_without_unsubscribe"),
                ]),
            ),
            (
                json!({"stream": "marketing", "headers": {"list-unsubscribe": "<https://x.example/u>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}),
                Err(vec![
                    ("headers.List-Unsubscribe-Post", "forbidden_header"),
                    ("headers.list-unsubscribe", "forbidden_header"),
                ]),
            ),
        ];
        for (row, (changes, expected)) in table.into_iter().enumerate() {
            let got = choose(&message(changes.clone()), &named()).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| (e.field.clone(), e.rule))
                    .collect::<Vec<_>>()
            });
            let expected = expected.map_err(|errors| {
                errors
                    .into_iter()
                    .map(|(f, r)| (f.to_string(), r))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, expected, "row {row}: {changes}");
        }
    }

    #[test]
    fn unknown_streams_name_the_keys_streams() {
        let errors = choose(&message(json!({"stream": "promo"})), &named()).unwrap_err();
        assert_eq!(
            errors[0].message,
            "this API key has no stream \"promo\"; its streams are: transactional, marketing, alerts, newsletter"
        );
    }

    #[test]
    fn scopes_and_stored_names() {
        let mut choice = StreamChoice::transactional();
        assert_eq!(choice.stored_name(), None);
        choice.name = "newsletter".into();
        assert_eq!(choice.stored_name(), Some("newsletter"));
        assert_eq!(choice.unsubscribe_scope(), "stream:newsletter");
        choice.topic = Some("weekly".into());
        assert_eq!(choice.unsubscribe_scope(), "topic:weekly");
    }
}
