//! Property tests of the request JSON -> prepare path: any request body,
//! hostile fields included, is answered without a panic, and whatever is
//! accepted becomes a message whose header section is well formed and
//! whose envelope can go into SMTP commands untouched: nothing a caller
//! sends can smuggle CR, LF or NUL into a header or an SMTP command, and
//! neither can any value of a template's variables (rendered into the
//! subject, then through the same path).
//!
//! `cargo test` runs proptest's default number of cases; `make proptest`
//! runs many more (`PROPTEST_CASES`).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::message::DkimAlgorithm;

/// An Ed25519 seed (RFC 8032's first test key).
const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

fn settings() -> SendSettings {
    SendSettings {
        dkim_keys: vec![
            DkimKey::from_config("example.com", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
        ],
        // Exempt from the RSA rule (tested in send/tests.rs): these tests
        // are not about which keys sign, and native RSA is slow unoptimised.
        unsigned_domains: vec!["example.net".to_string(), "example.com".to_string()],
        max_message_bytes: 256 * 1024,
        ..Default::default()
    }
}

fn caller() -> AuthenticatedKey {
    AuthenticatedKey {
        id: "backend".to_string(),
        domains: vec!["example.com".to_string(), "example.net".to_string()],
        tenant: "acme".to_string(),
        streams: Default::default(),
        unsubscribe_base_url: None,
        scopes: crate::accept::Scope::ALL.to_vec(),
        limits: Default::default(),
    }
}

/// Text with the characters that break headers and commands mixed in.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[ -~]{0,12}",
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\0".to_string()),
        Just("\r\nBcc: victim@example.org".to_string()),
        Just("\r\n.\r\n".to_string()),
        Just(":".to_string()),
        Just("=?utf-8?b?".to_string()),
        "[\\u{80}-\\u{10ffff}]{1,3}",
        Just("x".repeat(300)),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// Text a caller may well send: printable, any script, quotes, commas,
/// encoded-word look-alikes, long runs without spaces.
fn fair_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[ -~]{1,20}",
        "[\\u{a0}-\\u{1fff}]{1,8}",
        Just("\"".to_string()),
        Just(",".to_string()),
        Just("=?utf-8?q?x?=".to_string()),
        Just("\u{1F600}".to_string()),
        Just("y".repeat(200)),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|pieces| pieces.concat())
}

/// Mostly fair text, sometimes hostile.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![9 => fair_text(), 1 => hostile_text()]
}

/// Addresses: mostly valid ones the caller may use, some hostile.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z][a-z0-9.+_-]{0,8}[a-z]@example\\.(com|net|org)",
        3 => (fair_text(), "[a-z]{1,8}@example\\.(com|net)")
            .prop_map(|(name, a)| format!("\"{}\" <{a}>", name.replace(['"', '\\'], ""))),
        1 => ("[A-Za-z ]{0,10}", "[a-z]{1,8}@example\\.com")
            .prop_map(|(name, a)| format!("{name} <{a}>")),
        1 => ("[a-z]{1,8}", hostile_text()).prop_map(|(a, b)| format!("{a}{b}@example.com")),
        1 => (hostile_text(), "[a-z]{1,8}@example\\.com")
            .prop_map(|(name, a)| format!("{name} <{a}>")),
    ]
}

fn string_or_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        address().prop_map(Value::String),
        prop::collection::vec(address(), 1..4)
            .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect())),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "X-[A-Za-z0-9-]{1,12}",
        1 => Just("List-Unsubscribe".to_string()),
        1 => Just("Bcc".to_string()),
        1 => Just("Content-Type".to_string()),
        1 => Just("X-Bad\r\nBcc".to_string()),
        1 => "[ -~]{0,10}",
    ]
}

/// A send request: the usual fields, each present or not, mostly fair and
/// sometimes hostile, so that many are accepted and reach the composer.
fn request() -> impl Strategy<Value = Value> {
    (
        address(),
        string_or_list(),
        prop::option::weighted(0.3, string_or_list()),
        prop::option::weighted(0.3, address()),
        prop::option::weighted(0.9, field_text()),
        prop::option::weighted(0.9, prop_oneof![fair_text(), any::<String>()]),
        prop::option::weighted(0.3, prop_oneof![fair_text(), any::<String>()]),
        prop::collection::vec((header_name(), field_text()), 0..3),
        prop::option::weighted(0.2, ("[a-z]{1,8}\\.(txt|pdf)", "([A-Za-z0-9+/]{4}){0,8}")),
    )
        .prop_map(
            |(from, to, cc, reply_to, subject, text, html, headers, attachment)| {
                let mut m = Map::new();
                m.insert("from".into(), Value::String(from));
                m.insert("to".into(), to);
                if let Some(cc) = cc {
                    m.insert("cc".into(), cc);
                }
                if let Some(r) = reply_to {
                    m.insert("reply_to".into(), Value::String(r));
                }
                if let Some(s) = subject {
                    m.insert("subject".into(), Value::String(s));
                }
                if let Some(t) = text {
                    m.insert("text".into(), Value::String(t));
                }
                if let Some(h) = html {
                    m.insert("html".into(), Value::String(h));
                }
                if !headers.is_empty() {
                    let h: Map<String, Value> = headers
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect();
                    m.insert("headers".into(), Value::Object(h));
                }
                if let Some((filename, content)) = attachment {
                    m.insert(
                        "attachments".into(),
                        json!([{"filename": filename, "content": content}]),
                    );
                }
                Value::Object(m)
            },
        )
}

/// Checks a composed message's header section: CRLF line endings only, no
/// NUL, lines within RFC 5322's 998, every line a field (`name:` with a
/// printable name) or a folded continuation of one, and one From.
fn well_formed_headers(mime: &str) -> Result<(), String> {
    let end = mime
        .find("\r\n\r\n")
        .ok_or("no end of the header section")?;
    let section = &mime[..end + 2];
    if section.contains('\0') {
        return Err("NUL in the headers".into());
    }
    let mut froms = 0;
    for (i, line) in section.split_inclusive('\n').enumerate() {
        let Some(content) = line.strip_suffix("\r\n") else {
            return Err(format!("line {i} does not end in CRLF: {line:?}"));
        };
        if content.contains(['\r', '\n']) {
            return Err(format!("bare CR or LF in line {i}: {line:?}"));
        }
        if content.len() > 998 {
            return Err(format!("line {i} is {} bytes", content.len()));
        }
        if content.starts_with([' ', '\t']) {
            if i == 0 {
                return Err("the first line is a continuation".into());
            }
            continue;
        }
        let (name, _) = content
            .split_once(':')
            .ok_or_else(|| format!("line {i} is not a field: {line:?}"))?;
        if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(format!("bad field name in line {i}: {name:?}"));
        }
        if name.eq_ignore_ascii_case("from") {
            froms += 1;
        }
        if name.eq_ignore_ascii_case("bcc") {
            return Err("a Bcc header was written".into());
        }
    }
    if froms != 1 {
        return Err(format!("{froms} From headers"));
    }
    Ok(())
}

/// An envelope address that can go into `MAIL FROM:<…>` / `RCPT TO:<…>`.
fn safe_in_a_command(address: &str) -> bool {
    !address.is_empty()
        && !address.contains(['\r', '\n', '\0', '<', '>', ' '])
        && address.len() <= 254
}

proptest! {
    #[test]
    fn any_bytes_are_answered_without_a_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = prepare(&body, &caller(), &settings(), 1_700_000_000, &[7; 32]);
    }

    #[test]
    fn accepted_requests_compose_well_formed_messages(request in request()) {
        let body = request.to_string();
        let settings = settings();
        let Ok(prepared) = prepare(body.as_bytes(), &caller(), &settings, 1_700_000_000, &[7; 32])
        else {
            return Ok(());
        };
        let job = sign_natively(prepared, &settings)
            .map_err(|e| TestCaseError::fail(format!("signing failed: {e:?}")))?;
        well_formed_headers(&job.mime).map_err(TestCaseError::fail)?;
        prop_assert!(safe_in_a_command(&job.mail_from), "{:?}", job.mail_from);
        prop_assert!(!job.rcpt_to.is_empty());
        for rcpt in &job.rcpt_to {
            prop_assert!(safe_in_a_command(rcpt), "{rcpt:?}");
        }
    }
}

/// A template subject: fair literal text around the variables, escaped
/// (`{{a}}`) or not (`{{{b}}}`), and a block.
fn subject_template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[ -z|~]{1,10}",
        Just("{{a}}".to_string()),
        Just("{{{b}}}".to_string()),
        Just("{{#if c}}[{{a}}]{{else}}-{{/if}}".to_string()),
    ];
    // A template's subject is never blank (checked when it is saved).
    prop::collection::vec(piece, 1..6).prop_map(|pieces| format!("Re {}", pieces.concat()))
}

proptest! {
    /// No value of a template variable can add a header: a rendered
    /// subject with CR, LF or NUL is refused, and any other is composed
    /// into exactly one Subject header that reads back as rendered.
    #[test]
    fn template_variables_cannot_inject_headers(
        subject in subject_template(),
        a in field_text(),
        b in field_text(),
        c in any::<bool>(),
    ) {
        use crate::accept::templates::{Template, expand, render};
        let template: Template = serde_json::from_value(json!({
            "name": "t",
            "subject": subject,
            "text": "Hi {{a}} {{{b}}}",
            "variables": [
                {"name": "a", "type": "string"},
                {"name": "b", "type": "string"},
                {"name": "c", "type": "boolean", "fallback": false}
            ]
        }))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        crate::accept::templates::check(&template)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let Value::Object(vars) = json!({"a": a, "b": b, "c": c}) else {
            unreachable!()
        };
        let rendered = render(&template, &vars)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let wanted = rendered.subject.clone();
        let body = json!({"from": "a@example.com", "to": "b@example.net",
                          "template": {"id": "tpl_1"}}).to_string();
        let body = expand(body.as_bytes(), rendered)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let settings = settings();
        let prepared = prepare(&body, &caller(), &settings, 1_700_000_000, &[7; 32]);
        let hostile = wanted.contains(['\r', '\n', '\0']);
        let prepared = match prepared {
            Err(e) => {
                // Refused: for a reason, never silently sent without it.
                prop_assert!(e.status == 422 || e.status == 413, "{e:?}");
                return Ok(());
            }
            Ok(p) => p,
        };
        prop_assert!(!hostile, "a subject with a line break was accepted: {wanted:?}");
        let job = sign_natively(prepared, &settings)
            .map_err(|e| TestCaseError::fail(format!("signing failed: {e:?}")))?;
        well_formed_headers(&job.mime).map_err(TestCaseError::fail)?;
        let parsed = mail_parser::MessageParser::default()
            .parse(job.mime.as_bytes())
            .ok_or_else(|| TestCaseError::fail("does not parse"))?;
        let subjects = parsed
            .headers()
            .iter()
            .filter(|h| h.name() == "Subject")
            .count();
        prop_assert_eq!(subjects, 1);
        // Text that is itself an encoded word (`=?utf-8?q?x?=`) is written
        // as given and a reader decodes it: still one Subject, no header.
        // Folding may change runs of white space, never the words.
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        if !wanted.contains("=?") {
            prop_assert_eq!(words(parsed.subject().unwrap_or("")), words(&wanted));
        }
    }
}
