//! Table-driven tests of the content rules in [`super`].

use serde_json::{Value, json};

use super::*;

fn request(value: Value) -> SendRequest {
    SendRequest::from_json(value.to_string().as_bytes()).expect("test request has a valid shape")
}

fn base() -> Value {
    json!({
        "from": "Ada Lovelace <ada@example.com>",
        "to": "bob@example.com",
        "subject": "Hello",
        "text": "Hi Bob",
    })
}

fn with(changes: Value) -> Value {
    let mut value = base();
    if let (Value::Object(target), Value::Object(changes)) = (&mut value, changes) {
        for (key, change) in changes {
            if change.is_null() {
                target.remove(&key);
            } else {
                target.insert(key, change);
            }
        }
    }
    value
}

fn errors_of(value: Value) -> ValidationErrors {
    match request(value.clone()).validate(&Limits::default()) {
        Ok(_) => panic!("accepted: {value}"),
        Err(errors) => errors,
    }
}

#[test]
fn minimal_request_validates() {
    let message = request(base()).validate(&Limits::default()).unwrap();
    assert_eq!(message.from().name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(message.envelope_from().to_string(), "ada@example.com");
    assert_eq!(message.subject(), "Hello");
    assert_eq!(message.text(), Some("Hi Bob"));
    assert!(!message.requires_smtputf8());
}

#[test]
fn every_rule_reports_its_field() {
    let b64 = "aGVsbG8=";
    for (changes, field, rule) in [
        (json!({"from": null}), "from", "required"),
        (json!({"from": "not-an-address"}), "from", "invalid_address"),
        (
            json!({"from": "Ada\r\nBcc: x@evil.com <ada@example.com>"}),
            "from",
            "header_injection",
        ),
        (
            json!({"from": {"email": "ada@example.com", "name": "Ada\nBcc: x@evil.com"}}),
            "from",
            "header_injection",
        ),
        (json!({"to": null}), "to", "required"),
        (json!({"to": []}), "to", "required"),
        (
            json!({"to": ["bob@example.com", "bad@"]}),
            "to[1]",
            "invalid_address",
        ),
        (
            json!({"cc": "carol@example.com\r\nBcc: x@evil.com"}),
            "cc",
            "header_injection",
        ),
        (
            json!({"bcc": ["\"quoted\"@example.com"]}),
            "bcc[0]",
            "invalid_address",
        ),
        (
            json!({"reply_to": ["ok@example.com", "x"]}),
            "reply_to[1]",
            "invalid_address",
        ),
        (json!({"subject": null}), "subject", "required"),
        (
            json!({"subject": "Hi\r\nBcc: x@evil.com"}),
            "subject",
            "header_injection",
        ),
        (
            json!({"subject": "Hi\nthere"}),
            "subject",
            "header_injection",
        ),
        (json!({"subject": "Hi\u{0}"}), "subject", "header_injection"),
        (
            json!({"subject": "Hi\u{7}"}),
            "subject",
            "invalid_characters",
        ),
        (json!({"subject": "x".repeat(999)}), "subject", "too_long"),
        (json!({"text": null}), "text", "required"),
        (
            json!({"headers": {"X-Ok": "1", "Bad Name": "v"}}),
            "headers.Bad Name",
            "invalid_header_name",
        ),
        (
            json!({"headers": {"X-Colon:": "v"}}),
            "headers.X-Colon:",
            "invalid_header_name",
        ),
        (
            json!({"headers": {"X-A\r\nBcc": "v"}}),
            "headers.X-A\r\nBcc",
            "header_injection",
        ),
        (
            json!({"headers": {"X-A": "v\r\nBcc: x@evil.com"}}),
            "headers.X-A",
            "header_injection",
        ),
        (
            json!({"headers": {"bcc": "x@evil.com"}}),
            "headers.bcc",
            "forbidden_header",
        ),
        (
            json!({"headers": {"DKIM-Signature": "v=1"}}),
            "headers.DKIM-Signature",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Reply-To": "x@example.com"}}),
            "headers.Reply-To",
            "forbidden_header",
        ),
        (
            json!({"headers": {"content-transfer-encoding": "7bit"}}),
            "headers.content-transfer-encoding",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Content-Disposition": "v"}}),
            "headers.Content-Disposition",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Content-ID": "v"}}),
            "headers.Content-ID",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Resent-From": "v"}}),
            "headers.Resent-From",
            "forbidden_header",
        ),
        (
            json!({"headers": {"ARC-Seal": "v"}}),
            "headers.ARC-Seal",
            "forbidden_header",
        ),
        (
            json!({"headers": {"ARC-Authentication-Results": "v"}}),
            "headers.ARC-Authentication-Results",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Authentication-Results": "v"}}),
            "headers.Authentication-Results",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Received-SPF": "v"}}),
            "headers.Received-SPF",
            "forbidden_header",
        ),
        (
            json!({"headers": {"MIME-Version": "v"}}),
            "headers.MIME-Version",
            "forbidden_header",
        ),
        (
            json!({"headers": {"Content-Type": "v"}}),
            "headers.Content-Type",
            "forbidden_header",
        ),
        (
            json!({"headers": {"X-Dup": "1", "x-dup": "2"}}),
            "headers.x-dup",
            "duplicate_header",
        ),
        (
            json!({"headers": {"X-Long": "v".repeat(999)}}),
            "headers.X-Long",
            "too_long",
        ),
        (
            json!({"attachments": [{"content": b64}]}),
            "attachments[0].filename",
            "required",
        ),
        (
            json!({"attachments": [{"filename": "a\r\nContent-Type: text/html", "content": b64}]}),
            "attachments[0].filename",
            "header_injection",
        ),
        (
            json!({"attachments": [{"filename": "../etc/passwd", "content": b64}]}),
            "attachments[0].filename",
            "invalid_filename",
        ),
        (
            json!({"attachments": [{"filename": "a\\b.txt", "content": b64}]}),
            "attachments[0].filename",
            "invalid_filename",
        ),
        (
            json!({"attachments": [{"filename": "a.txt", "content": "not base64!"}]}),
            "attachments[0].content",
            "invalid_base64",
        ),
        (
            json!({"attachments": [{"filename": "a.txt", "content": b64, "content_type": "text/plain\r\nX: y"}]}),
            "attachments[0].content_type",
            "invalid_content_type",
        ),
        (
            json!({"attachments": [{"filename": "a.txt", "content": b64, "content_type": "multipart/mixed"}]}),
            "attachments[0].content_type",
            "invalid_content_type",
        ),
        (
            json!({"attachments": [{"content": b64, "disposition": "inline"}]}),
            "attachments[0].content_id",
            "required",
        ),
        (
            json!({"attachments": [{"content": b64, "content_id": "a>b"}]}),
            "attachments[0].content_id",
            "invalid_content_id",
        ),
        (
            json!({"attachments": [{"content": b64, "content_id": "a\r\nb"}]}),
            "attachments[0].content_id",
            "header_injection",
        ),
        (
            json!({"attachments": [{"content": b64, "content_id": "logo"}, {"content": b64, "content_id": "LOGO"}]}),
            "attachments[1].content_id",
            "duplicate_content_id",
        ),
        (
            json!({"tags": [{"name": "bad name", "value": "v"}]}),
            "tags[0]",
            "invalid_tag",
        ),
        (
            json!({"tags": {"kind": "a\nb"}}),
            "tags.kind",
            "invalid_tag",
        ),
        (json!({"stream": ""}), "stream", "invalid_stream"),
        (json!({"stream": "Marketing"}), "stream", "invalid_stream"),
        (json!({"stream": "-news"}), "stream", "invalid_stream"),
        (json!({"stream": "a b"}), "stream", "invalid_stream"),
        (
            json!({"stream": "x".repeat(65)}),
            "stream",
            "invalid_stream",
        ),
        (json!({"topic": "weekly:digest"}), "topic", "invalid_topic"),
        (json!({"topic": "caf\u{e9}"}), "topic", "invalid_topic"),
    ] {
        let errors = errors_of(with(changes.clone()));
        assert!(
            errors
                .errors
                .iter()
                .any(|e| e.field == field && e.rule == rule),
            "{changes}: expected {field}/{rule}, got {errors:?}"
        );
        assert_eq!(errors.status_hint(), 422, "{changes}");
    }
}

#[test]
fn streams_and_topics_are_carried_as_given() {
    let message = request(with(json!({
        "stream": "news-2026_a",
        "topic": "9lives",
        "unsubscribe": true
    })))
    .validate(&Limits::default())
    .unwrap();
    assert_eq!(message.stream(), Some("news-2026_a"));
    assert_eq!(message.topic(), Some("9lives"));
    assert_eq!(message.unsubscribe(), Some(true));
    let message = request(base()).validate(&Limits::default()).unwrap();
    assert_eq!(
        (message.stream(), message.topic(), message.unsubscribe()),
        (None, None, None)
    );
    let longest = "x".repeat(64);
    let message = request(with(json!({ "stream": longest })))
        .validate(&Limits::default())
        .unwrap();
    assert_eq!(message.stream(), Some(longest.as_str()));
}

#[test]
fn all_problems_are_reported_together() {
    let errors = errors_of(json!({"from": "bad", "to": ["also bad"], "subject": "a\r\nb"}));
    let mut fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["from", "subject", "text", "to[0]"]);
}

#[test]
fn limits_are_enforced_with_their_own_rules() {
    let many: Vec<String> = (0..30).map(|i| format!("r{i}@example.com")).collect();
    let errors = errors_of(with(json!({"to": many, "cc": many})));
    assert!(errors.has_rule("too_many_recipients"));

    let headers: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    assert!(errors_of(with(json!({"headers": headers}))).has_rule("too_many_headers"));

    let limits = Limits {
        max_message_bytes: 1000,
        ..Limits::default()
    };
    let big = request(with(json!({"text": "x".repeat(1001)})));
    let errors = big.validate(&limits).unwrap_err();
    assert!(errors.has_rule("too_large"));
    assert_eq!(errors.status_hint(), 413);
    let attachment = json!([{"filename": "a.bin", "content": "QUFB".repeat(300)}]);
    let errors = request(with(json!({"attachments": attachment})))
        .validate(&limits)
        .unwrap_err();
    assert_eq!(errors.status_hint(), 413);
}

#[test]
fn recipients_are_deduplicated_across_lists_in_order() {
    let message = request(with(json!({
        "to": ["bob@example.com", "Carol <carol@example.com>"],
        "cc": ["BOB@Example.com", "dan@example.com"],
        "bcc": "carol@example.com",
    })))
    .validate(&Limits::default())
    .unwrap();
    let recipients: Vec<String> = message.recipients().iter().map(|a| a.to_string()).collect();
    assert_eq!(
        recipients,
        ["bob@example.com", "carol@example.com", "dan@example.com"]
    );
    assert_eq!(message.bcc().len(), 1);
}

#[test]
fn smtputf8_is_required_only_for_non_ascii_local_parts() {
    for (changes, expected) in [
        (json!({}), false),
        (json!({"to": "user@bücher.example"}), false),
        (
            json!({"from": {"email": "ada@example.com", "name": "Adä"}}),
            false,
        ),
        (json!({"to": "josé@example.com"}), true),
        (json!({"bcc": "josé@example.com"}), true),
        (json!({"reply_to": "josé@example.com"}), true),
    ] {
        let message = request(with(changes.clone()))
            .validate(&Limits::default())
            .unwrap();
        assert_eq!(message.requires_smtputf8(), expected, "{changes}");
    }
}

#[test]
fn attachments_decode_and_default_sensibly() {
    let message = request(with(json!({
        "html": "<img src=\"cid:logo\">",
        "attachments": [
            {"filename": "report.pdf", "content": "JVBE\nRi0x", "content_type": "application/pdf"},
            {"content": "iVBORw==", "content_type": "image/png", "content_id": "logo"},
            {"filename": "x", "content": ""},
        ],
        "tags": [{"name": "kind", "value": "welcome"}],
    })))
    .validate(&Limits::default())
    .unwrap();
    let attachments = message.attachments();
    assert_eq!(attachments[0].content, b"%PDF-1");
    assert_eq!(attachments[0].disposition, Disposition::Attachment);
    assert_eq!(attachments[1].disposition, Disposition::Inline);
    assert_eq!(attachments[2].content_type, "application/octet-stream");
    assert_eq!(message.tags()[0].name, "kind");
}
