//! Tests of [`super::compose`]: composed bytes are parsed back, both with a
//! minimal raw header splitter (exact header names, line lengths) and with
//! `mail-parser` (decoded values, MIME structure).

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

use super::*;
use crate::message::{Limits, SendRequest};

const DATE: i64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 +0000

fn message(value: &Value) -> Message {
    SendRequest::from_json(value.to_string().as_bytes())
        .expect("test request has a valid shape")
        .validate(&Limits::default())
        .expect("test request is valid")
}

fn render(value: Value) -> Vec<u8> {
    let message = message(&value);
    let id = new_message_id(message.from().address.domain(), &[0xab; 16]);
    let bytes = compose(
        &message,
        &ComposeContext {
            message_id: id,
            date_unix: DATE,
            feedback_loop: None,
        },
    )
    .expect("compose succeeds");
    assert_wire_format(&bytes);
    bytes
}

fn base() -> Value {
    json!({
        "from": "Ada Lovelace <ada@example.com>",
        "to": ["bob@example.com", "Carol <carol@example.com>"],
        "subject": "Hello",
        "text": "Hi Bob",
    })
}

fn with(changes: Value) -> Value {
    let mut value = base();
    if let (Value::Object(target), Value::Object(changes)) = (&mut value, changes) {
        target.extend(changes);
    }
    value
}

/// Every line ends in CRLF, none is longer than 998 octets (RFC 5322 2.1.1).
fn assert_wire_format(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "message must end with CRLF");
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        assert!(
            line.ends_with(b"\r"),
            "line {index} lacks CR: {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            !line[..line.len() - 1].contains(&b'\r'),
            "bare CR in line {index}"
        );
        assert!(
            line.len() - 1 <= 998,
            "line {index} is {} octets",
            line.len() - 1
        );
    }
}

/// Names of the top-level header fields, in order, as written on the wire.
fn header_names(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| line.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// Media types of every Content-Type header, in order: the MIME tree, flattened.
fn mime_types(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter_map(|line| line.strip_prefix("Content-Type: "))
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

const BASE_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
];

#[test]
fn text_message_has_exactly_the_intended_headers() {
    let bytes = render(base());
    let names = header_names(&bytes);
    // The single part is written with its transfer encoding, if any, last.
    let expected: Vec<&str> = BASE_HEADERS.to_vec();
    assert_eq!(&names[..expected.len()], expected.as_slice(), "{names:?}");
    assert!(
        names[expected.len()..]
            .iter()
            .all(|n| n == "Content-Transfer-Encoding")
    );

    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Ada Lovelace"));
    assert_eq!(from.address(), Some("ada@example.com"));
    let to: Vec<_> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap_or_default())
        .collect();
    assert_eq!(to, ["bob@example.com", "carol@example.com"]);
    assert_eq!(parsed.subject(), Some("Hello"));
    assert_eq!(
        parsed.message_id(),
        Some(format!("{}@example.com", "ab".repeat(16)).as_str())
    );
    assert_eq!(parsed.date().map(|d| d.to_timestamp()), Some(DATE));
    assert_eq!(
        parsed.body_text(0).as_deref().map(str::trim_end),
        Some("Hi Bob")
    );
}

#[test]
fn optional_address_headers_appear_only_when_set_and_bcc_never() {
    let bytes = render(with(json!({
        "cc": "dan@example.com",
        "bcc": ["secret@example.com"],
        "reply_to": "replies@example.com",
        "headers": {"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@example.com>"},
    })));
    let names = header_names(&bytes);
    for name in ["Cc", "Reply-To", "X-Campaign", "List-Unsubscribe"] {
        assert_eq!(
            names.iter().filter(|n| *n == name).count(),
            1,
            "{name} in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.eq_ignore_ascii_case("bcc")),
        "{names:?}"
    );
    assert!(
        !String::from_utf8_lossy(&bytes).contains("secret@"),
        "bcc address leaked"
    );
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        parsed.header_raw("X-Campaign").map(str::trim),
        Some("spring")
    );

    let no_to = render(with(json!({"to": [], "bcc": "secret@example.com"})));
    assert!(!header_names(&no_to).iter().any(|n| n == "To" || n == "Bcc"));
}

#[test]
fn mime_structure_follows_the_parts_present() {
    let png = "iVBORw0KGgo=";
    let pdf = "JVBERi0xLjQK";
    let inline = json!({"content": png, "content_type": "image/png", "content_id": "logo"});
    let attached = json!({"filename": "r.pdf", "content": pdf, "content_type": "application/pdf"});
    for (changes, expected) in [
        (json!({}), vec!["text/plain"]),
        (
            json!({"text": null, "html": "<p>Hi</p>"}),
            vec!["text/html"],
        ),
        (
            json!({"html": "<p>Hi</p>"}),
            vec!["multipart/alternative", "text/plain", "text/html"],
        ),
        (
            json!({"text": null, "html": "<img src=cid:logo>", "attachments": [inline]}),
            vec!["multipart/related", "text/html", "image/png"],
        ),
        (
            json!({"html": "<img src=cid:logo>", "attachments": [inline]}),
            vec![
                "multipart/alternative",
                "text/plain",
                "multipart/related",
                "text/html",
                "image/png",
            ],
        ),
        (
            json!({"attachments": [attached]}),
            vec!["multipart/mixed", "text/plain", "application/pdf"],
        ),
        (
            json!({"html": "<img src=cid:logo>", "attachments": [attached, inline]}),
            vec![
                "multipart/mixed",
                "multipart/alternative",
                "text/plain",
                "multipart/related",
                "text/html",
                "image/png",
                "application/pdf",
            ],
        ),
        (
            json!({"attachments": [inline]}),
            vec!["multipart/mixed", "text/plain", "image/png"],
        ),
    ] {
        let mut value = with(changes.clone());
        if let Value::Object(map) = &mut value {
            map.retain(|_, v| !v.is_null());
        }
        let bytes = render(value);
        assert_eq!(mime_types(&bytes), expected, "{changes}");
    }
}

#[test]
fn attachments_round_trip_with_names_and_content_ids() {
    let content: Vec<u8> = (0..=255).collect();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &content);
    let bytes = render(with(json!({
        "html": "<img src=\"cid:logo@x\">",
        "attachments": [
            {"filename": "données.bin", "content": encoded},
            {"filename": "logo.png", "content": "iVBORw0KGgo=", "content_type": "image/png", "content_id": "logo@x"},
        ],
    })));
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let binary = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("données.bin"))
        .unwrap();
    assert_eq!(binary.contents(), content.as_slice());
    let logo = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("logo.png"))
        .unwrap();
    assert_eq!(logo.content_id(), Some("logo@x"));
}

#[test]
fn odd_but_valid_values_are_encoded_not_injected() {
    let long_word = "x".repeat(990);
    let long_words = "word ".repeat(199);
    for subject in [
        "Grüße aus Köln — 東京",
        long_word.as_str(),
        long_words.trim_end(),
        "Looks like a header: Bcc: x@evil.com",
        "=?utf-8?B?aGk=?= literal encoded-word lookalike",
    ] {
        let bytes = render(with(json!({
            "subject": subject,
            "from": {"email": "ada@example.com", "name": "Lovelace, Ada \"The Countess\" <admin@evil.com>"},
            "headers": {"X-Note": format!("ünïcödé {}", subject.chars().take(300).collect::<String>())},
        })));
        let names = header_names(&bytes);
        assert_eq!(
            names.iter().filter(|n| *n == "Subject").count(),
            1,
            "{subject}"
        );
        assert!(!names.iter().any(|n| n == "Bcc"), "{subject}: {names:?}");
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        if !subject.starts_with("=?") {
            assert_eq!(parsed.subject(), Some(subject), "subject round trip");
        }
        let from = parsed.from().unwrap();
        assert_eq!(
            from.iter().count(),
            1,
            "{subject}: display name split the From header"
        );
        assert_eq!(from.first().unwrap().address(), Some("ada@example.com"));
        assert_eq!(
            from.first().unwrap().name(),
            Some("Lovelace, Ada \"The Countess\" <admin@evil.com>")
        );
    }
}

#[test]
fn long_bodies_stay_within_line_limits() {
    let long_line = "y".repeat(5000);
    let bytes = render(with(
        json!({"text": long_line, "html": format!("<p>{}</p>", "ü".repeat(3000))}),
    ));
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(parsed.body_text(0).as_deref(), Some(long_line.as_str()));
}

#[test]
fn utf8_local_parts_are_written_raw_for_smtputf8() {
    let bytes = render(with(json!({"to": "josé@bücher.example"})));
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some("josé@xn--bcher-kva.example")
    );
}

#[test]
fn message_ids_are_checked_and_generated_deterministically() {
    let domain = Domain::parse("Example.com").unwrap();
    assert_eq!(new_message_id(&domain, &[0x01, 0xfe]), "01fe@example.com");
    let message = message(&base());
    for bad in [
        "",
        "no-at",
        "@example.com",
        "a@",
        "a b@example.com",
        "a@example.com>\r\nBcc: x",
        "<a@b>",
        "a@b@c",
    ] {
        let result = compose(
            &message,
            &ComposeContext {
                message_id: bad.to_string(),
                date_unix: DATE,
                feedback_loop: None,
            },
        );
        assert!(
            matches!(result, Err(ComposeError::InvalidMessageId(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_one_click_copy_carries_both_headers_and_its_link_in_the_bodies() {
    let message = message(&with(json!({
        "text": "Leave: {{unsubscribe_url}}",
        "html": "<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>",
        "headers": {"X-Campaign": "spring"}
    })));
    let link = OneClick::new("https://mail.example.com/unsubscribe/tok-_1").unwrap();
    let id = "4f3c9a0b1d2e3f405162738495a6b7c8-1.0123456789abcdef";
    let context = ComposeContext {
        message_id: new_message_id(message.from().address.domain(), &[0xab; 16]),
        date_unix: DATE,
        feedback_loop: FeedbackLoop::new("fbl@rp.example.com", id),
    };
    let bytes = compose_with(&message, &context, Some(&link)).unwrap();
    assert_wire_format(&bytes);
    let names = header_names(&bytes);
    let campaign = names.iter().position(|n| n == "X-Campaign").unwrap();
    let list = names.iter().position(|n| n == "List-Unsubscribe").unwrap();
    let post = names
        .iter()
        .position(|n| n == "List-Unsubscribe-Post")
        .unwrap();
    let cfbl = names.iter().position(|n| n == "CFBL-Address").unwrap();
    let feedback_id = names.iter().position(|n| n == "CFBL-Feedback-ID").unwrap();
    assert!(
        campaign < list && list < post && post < cfbl && cfbl < feedback_id,
        "{names:?}"
    );
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    // Written raw, each one unfolded line.
    assert_eq!(
        parsed.header_raw("CFBL-Address"),
        Some(" fbl@rp.example.com; report=arf\r\n")
    );
    assert_eq!(
        parsed.header_raw("CFBL-Feedback-ID"),
        Some(&*format!(" {id}\r\n"))
    );
    let context = ComposeContext {
        feedback_loop: None,
        ..context
    };
    assert_eq!(
        parsed.header_raw("List-Unsubscribe").map(str::trim),
        Some("<https://mail.example.com/unsubscribe/tok-_1>")
    );
    assert_eq!(
        parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Leave: https://mail.example.com/unsubscribe/tok-_1")
    );
    assert_eq!(
        parsed.body_html(0).as_deref(),
        Some("<a href=\"https://mail.example.com/unsubscribe/tok-_1\">Unsubscribe</a>")
    );
    // Without a link nothing is added and the bodies are as given.
    let plain = compose(&message, &context).unwrap();
    assert!(!header_names(&plain).iter().any(|n| n.starts_with("List-")));
    assert!(String::from_utf8_lossy(&plain).contains("{{unsubscribe_url}}"));
}
