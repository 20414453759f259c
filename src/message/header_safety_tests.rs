//! One table per header-injection vector: subject, display name, address,
//! custom header name and value, attachment filename and content id.
//!
//! For each vector, text with CR, LF or NUL is refused with
//! `header_injection` at its field, and hostile text that is valid (header
//! lookalikes, quotes, semicolons, Unicode line separators, encoded-word
//! lookalikes) is composed, parsed back with `mail-parser`, and must yield
//! exactly the intended header set and the caller's value unchanged.

use mail_parser::{HeaderName, MessageParser, MimeHeaders};
use serde_json::{Value, json};

use super::{ComposeContext, Limits, Message, SendRequest, compose, new_message_id};

const INTENDED: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

fn base() -> Value {
    json!({"from": "Ada <ada@example.com>", "to": "bob@example.net", "subject": "Hi", "text": "body"})
}

fn with(changes: Value) -> Value {
    let mut value = base();
    if let (Value::Object(target), Value::Object(changes)) = (&mut value, changes) {
        target.extend(changes);
    }
    value
}

fn validate(value: &Value) -> Result<Message, crate::message::ValidationErrors> {
    SendRequest::from_json(value.to_string().as_bytes())
        .expect("shape")
        .validate(&Limits::default())
}

fn render(value: &Value) -> Vec<u8> {
    let message = validate(value).unwrap_or_else(|e| panic!("{value}: {e}"));
    let id = new_message_id(message.from().address.domain(), &[7; 16]);
    compose(
        &message,
        &ComposeContext {
            message_id: id,
            date_unix: 1_700_000_000,
            feedback_loop: None,
        },
    )
    .expect("compose")
}

/// Top-level header names as parsed back, in order.
fn header_names(bytes: &[u8]) -> Vec<String> {
    let parsed = MessageParser::default().parse(bytes).expect("parses");
    parsed
        .headers_raw()
        .map(|(name, _)| name.to_string())
        .collect()
}

fn assert_refused(changes: Value, field: &str) {
    let errors = validate(&with(changes.clone())).expect_err("accepted");
    assert!(
        errors
            .errors
            .iter()
            .any(|e| e.field == field && e.rule == "header_injection"),
        "{changes}: expected {field}/header_injection, got {errors}"
    );
}

const LINE_BREAKS: &[&str] = &["\r\n", "\n", "\r", "\0"];

#[test]
fn subject() {
    for brk in LINE_BREAKS {
        assert_refused(
            json!({"subject": format!("Hi{brk}Bcc: victim@example.net")}),
            "subject",
        );
    }
    for subject in [
        "Hi Bcc: victim@example.net",
        "Hi\u{2028}Bcc: victim@example.net",
        "=?utf-8?Q?Bcc=3A_victim?=",
        "tab\there: and: colons;",
        "Grüße — 東京 ✓",
    ] {
        let bytes = render(&with(json!({"subject": subject})));
        assert_eq!(header_names(&bytes), INTENDED, "{subject:?}");
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        if !subject.starts_with("=?") {
            assert_eq!(parsed.subject(), Some(subject));
        }
    }
}

#[test]
fn display_name() {
    for brk in LINE_BREAKS {
        let name = format!("Ada{brk}Bcc: victim@example.net");
        assert_refused(
            json!({"from": {"email": "ada@example.com", "name": name}}),
            "from",
        );
        assert_refused(json!({"to": format!("{name} <bob@example.net>")}), "to");
    }
    // A Unicode line separator is no line break on the wire, but a name
    // holding one is refused all the same.
    let errors = validate(&with(
        json!({"from": {"email": "ada@example.com", "name": "Zoë\u{2028}Bcc: x@example.net"}}),
    ))
    .expect_err("accepted a line separator");
    assert!(errors.errors.iter().any(|e| e.field == "from"), "{errors}");
    for name in [
        "Evil, Inc. <ceo@bank.example>",
        "\"quoted\"; Bcc: victim@example.net",
        "back\\slash (comment) @ at",
    ] {
        let bytes = render(&with(
            json!({"from": {"email": "ada@example.com", "name": name}}),
        ));
        assert_eq!(header_names(&bytes), INTENDED, "{name:?}");
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        let from = parsed.from().unwrap();
        assert_eq!(from.iter().count(), 1, "{name:?} split the From header");
        assert_eq!(from.first().unwrap().name(), Some(name));
        assert_eq!(from.first().unwrap().address(), Some("ada@example.com"));
    }
}

#[test]
fn address() {
    for brk in LINE_BREAKS {
        for field in ["to", "cc", "bcc", "reply_to", "from"] {
            assert_refused(
                json!({field: format!("bob@example.net{brk}Bcc: victim@example.net")}),
                field,
            );
        }
    }
    for (to, written) in [
        ("o'brien+tag=x@example.net", "o'brien+tag=x@example.net"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("USER@Example.NET", "USER@example.net"),
    ] {
        let bytes = render(&with(json!({"to": to})));
        assert_eq!(header_names(&bytes), INTENDED, "{to:?}");
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        let list = parsed.to().unwrap();
        assert_eq!(list.iter().count(), 1);
        assert_eq!(list.first().unwrap().address(), Some(written));
    }
}

#[test]
fn custom_header_name_and_value() {
    for brk in LINE_BREAKS {
        assert_refused(
            json!({"headers": {format!("X-A{brk}Bcc"): "v"}}),
            &format!("headers.X-A{brk}Bcc"),
        );
        assert_refused(
            json!({"headers": {"X-A": format!("v{brk}Bcc: victim@example.net")}}),
            "headers.X-A",
        );
    }
    let long = "word ".repeat(180);
    for value in [
        "v; Bcc: victim@example.net",
        "ünïcödé\u{2028}Bcc: victim@example.net",
        long.trim_end(),
        "<mailto:unsubscribe@example.com>",
    ] {
        let bytes = render(&with(
            json!({"headers": {"X-Bcc": value, "List-Unsubscribe": "<https://example.com/u>"}}),
        ));
        let mut expected: Vec<&str> = INTENDED.to_vec();
        // Custom headers follow MIME-Version, before the body's Content-Type.
        expected.splice(6..6, ["List-Unsubscribe", "X-Bcc"]);
        assert_eq!(header_names(&bytes), expected, "{value:?}");
        let parsed = MessageParser::default()
            .header_text(HeaderName::Other("X-Bcc".into()))
            .parse(&bytes)
            .unwrap();
        let got = parsed.header("X-Bcc").and_then(|h| h.as_text()).unwrap();
        // Folding may turn a run of spaces into one; nothing else changes.
        assert_eq!(
            got.split_whitespace().collect::<Vec<_>>(),
            value.split_whitespace().collect::<Vec<_>>()
        );
    }
}

#[test]
fn attachment_filename_and_content_id() {
    for brk in LINE_BREAKS {
        assert_refused(
            json!({"attachments": [{"filename": format!("a.txt{brk}Content-Type: text/html"), "content": "aGk="}]}),
            "attachments[0].filename",
        );
        assert_refused(
            json!({"attachments": [{"content_id": format!("x{brk}y"), "content": "aGk="}]}),
            "attachments[0].content_id",
        );
    }
    for filename in [
        "evil\"; name=\"x.exe",
        "a;b=c.txt",
        "März ✓ Rechnung.pdf",
        "Content-Type: text html.txt",
    ] {
        let bytes = render(&with(
            json!({"attachments": [{"filename": filename, "content": "aGk=", "content_type": "text/plain"}]}),
        ));
        let mut expected: Vec<&str> = INTENDED.to_vec();
        expected.truncate(7);
        assert_eq!(header_names(&bytes), expected, "{filename:?}");
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        let parts: Vec<_> = parsed.attachments().collect();
        assert_eq!(parts.len(), 1, "{filename:?}");
        assert_eq!(parts[0].attachment_name(), Some(filename));
        assert_eq!(parts[0].contents(), b"hi");
        let part_headers: Vec<String> = parts[0]
            .headers()
            .iter()
            .map(|h| h.name().to_ascii_lowercase())
            .collect();
        for name in &part_headers {
            assert!(
                [
                    "content-type",
                    "content-disposition",
                    "content-transfer-encoding"
                ]
                .contains(&name.as_str()),
                "{filename:?}: unexpected part header {name}"
            );
        }
    }
}
