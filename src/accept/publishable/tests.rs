//! Publishable keys as a hostile page would use them: what a valid submission
//! becomes, every field a page cannot set, the honeypot, recipient domains
//! and Turnstile, origins, bad configurations named by form, templates, and
//! the rate-limit keys per form and per client.

use serde_json::json;

use super::*;
use crate::message::{ComposeContext, Limits, SendRequest, compose};

fn config_json() -> Value {
    json!([{
        "id": "contact",
        "key": "pk_test_0123456789abcdef",
        "origins": ["https://www.example.com", "http://127.0.0.1:8000"],
        "from": "Example site <forms@example.com>",
        "to": ["owner@example.com"],
        "subject": "Contact form: {{name}}",
        "text": "From {{name}} <{{email}}>\n\n{{message}}",
        "fields": {
            "name": {"required": true, "max_length": 100},
            "email": {"kind": "email", "required": true},
            "message": {"kind": "multiline", "required": true, "max_length": 2000}
        },
        "reply_to_field": "email"
    }, {
        "id": "share",
        "key": "pk_test_share_0123456789",
        "origins": ["https://app.example.com"],
        "from": "App <share@example.com>",
        "to_domains": ["example.org"],
        "subject": "Something for you",
        "text": "{{note}}",
        "fields": {"note": {"kind": "multiline", "max_length": 200}},
        "turnstile": true
    }])
}

fn keys() -> PublishableKeys {
    PublishableKeys::parse(&config_json().to_string()).unwrap()
}

fn contact() -> FormConfig {
    keys()
        .authenticate(Some("Bearer pk_test_0123456789abcdef"))
        .unwrap()
        .clone()
}

fn submit(form: &FormConfig, body: Value) -> Result<FormOutcome, ApiError> {
    form.submission(body.to_string().as_bytes())
}

fn good_fields() -> Value {
    json!({"name": "Ada Lovelace", "email": "ada@example.net", "message": "Hello\nthere"})
}

#[test]
fn a_valid_submission_becomes_a_fixed_request() {
    let outcome = submit(&contact(), json!({"fields": good_fields()})).unwrap();
    let FormOutcome::Send {
        request,
        turnstile_token,
    } = outcome
    else {
        panic!("expected Send");
    };
    assert_eq!(turnstile_token, None);
    assert_eq!(request["from"], "Example site <forms@example.com>");
    assert_eq!(request["to"], json!(["owner@example.com"]));
    assert_eq!(request["reply_to"], "ada@example.net");
    assert_eq!(request["subject"], "Contact form: Ada Lovelace");
    assert_eq!(
        request["text"],
        "From Ada Lovelace <ada@example.net>\n\nHello\nthere"
    );
    // The request passes the ordinary pipeline, and the visitor is only Reply-To.
    let message = SendRequest::from_json(request.to_string().as_bytes())
        .unwrap()
        .validate(&Limits::default())
        .unwrap();
    let raw = compose(
        &message,
        &ComposeContext {
            message_id: "abc@example.com".into(),
            date_unix: 0,
            feedback_loop: None,
        },
    )
    .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let headers = &text[..text.find("\r\n\r\n").unwrap()];
    assert!(
        headers.contains("From: \"Example site\" <forms@example.com>"),
        "{headers}"
    );
    assert!(headers.contains("Reply-To: <ada@example.net>"), "{headers}");
    assert!(!headers.contains("From: <ada@example.net>"));
}

#[test]
fn what_a_page_cannot_do() {
    let form = contact();
    // (body, expected status, expected field, expected rule)
    let table: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"fields": good_fields(), "to": "someone@evil.test"}),
            422,
            "to",
            "not_allowed",
        ),
        (
            json!({"fields": good_fields(), "from": "ceo@example.com"}),
            422,
            "",
            "invalid_form",
        ),
        (
            json!({"fields": good_fields(), "headers": {"X-A": "b"}}),
            422,
            "",
            "invalid_form",
        ),
        (
            json!({"fields": good_fields(), "attachments": []}),
            422,
            "",
            "invalid_form",
        ),
        (
            json!({"fields": good_fields(), "html": "<b>x</b>"}),
            422,
            "",
            "invalid_form",
        ),
        (
            json!({"fields": good_fields(), "bcc": "x@evil.test"}),
            422,
            "",
            "invalid_form",
        ),
        (
            json!({"fields": {"name": "A", "email": "a@example.net", "message": "m", "cc": "x@evil.test"}}),
            422,
            "fields.cc",
            "unknown_field",
        ),
        (
            json!({"fields": {"name": "A\r\nBcc: x@evil.test", "email": "a@example.net", "message": "m"}}),
            422,
            "fields.name",
            "header_injection",
        ),
        (
            json!({"fields": {"name": "A", "email": "a@example.net\r\nBcc: x@evil.test", "message": "m"}}),
            422,
            "fields.email",
            "header_injection",
        ),
        (
            json!({"fields": {"name": "A", "email": "not an address", "message": "m"}}),
            422,
            "fields.email",
            "invalid_address",
        ),
        (
            json!({"fields": {"email": "a@example.net", "message": "m"}}),
            422,
            "fields.name",
            "required",
        ),
        (
            json!({"fields": {"name": "x".repeat(101), "email": "a@example.net", "message": "m"}}),
            422,
            "fields.name",
            "too_long",
        ),
        (
            json!({"fields": {"name": 5, "email": "a@example.net", "message": "m"}}),
            422,
            "fields.name",
            "invalid_type",
        ),
        (
            json!({"fields": {"name": "A", "email": "a@example.net", "message": "x".repeat(20_000)}}),
            413,
            "",
            "too_large",
        ),
    ];
    for (body, status, field, rule) in table {
        let e = submit(&form, body.clone()).unwrap_err();
        assert_eq!(e.status, status, "{body}");
        if status == 422 {
            let d = &e.details[0];
            assert_eq!((d.field.as_str(), d.rule.as_str()), (field, rule), "{body}");
        } else {
            assert_eq!(e.rule, rule, "{body}");
        }
    }
    let e = form.submission(b"{not json").unwrap_err();
    assert_eq!(e.status, 400);
}

#[test]
fn the_honeypot_discards_silently() {
    let form = contact();
    let mut fields = good_fields();
    fields["_gotcha"] = json!("http://spam.example");
    assert_eq!(
        submit(&form, json!({"fields": fields})).unwrap(),
        FormOutcome::Discard
    );
    // Even when the rest of the form is junk: a bot learns nothing.
    assert_eq!(
        submit(&form, json!({"fields": {"_gotcha": "x", "evil": "y"}})).unwrap(),
        FormOutcome::Discard
    );
    // Present but empty is what real visitors send.
    let mut fields = good_fields();
    fields["_gotcha"] = json!("");
    assert!(matches!(
        submit(&form, json!({"fields": fields})).unwrap(),
        FormOutcome::Send { .. }
    ));
}

#[test]
fn recipient_domains_and_turnstile() {
    let k = keys();
    let share = k
        .authenticate(Some("bearer pk_test_share_0123456789"))
        .unwrap();
    let ok = submit(
        share,
        json!({"fields": {"note": "hi"}, "to": "friend@example.org", "turnstile_token": "t"}),
    )
    .unwrap();
    match ok {
        FormOutcome::Send {
            request,
            turnstile_token,
        } => {
            assert_eq!(request["to"], json!(["friend@example.org"]));
            assert_eq!(turnstile_token.as_deref(), Some("t"));
            assert!(request.get("reply_to").is_none());
        }
        other => panic!("{other:?}"),
    }
    let e = submit(
        share,
        json!({"fields": {"note": "hi"}, "to": "friend@example.net", "turnstile_token": "t"}),
    )
    .unwrap_err();
    assert_eq!(e.details[0].rule, "recipient_not_allowed");
    let e = submit(
        share,
        json!({"fields": {"note": "hi"}, "to": "friend@example.org"}),
    )
    .unwrap_err();
    assert_eq!(e.details[0].field, "turnstile_token");
}

#[test]
fn keys_and_origins() {
    let k = keys();
    assert!(
        k.authenticate(Some("Bearer pk_test_0123456789abcdeX"))
            .is_err()
    );
    assert_eq!(k.authenticate(None).unwrap_err().status, 401);
    let form = contact();
    assert!(form.allows_origin("https://www.example.com"));
    assert!(!form.allows_origin("https://www.example.com/"));
    assert!(!form.allows_origin("http://www.example.com"));
    assert!(!form.allows_origin("http://127.0.0.1:8001"));
    assert!(k.any_allows_origin("https://app.example.com"));
    assert!(!k.any_allows_origin("https://evil.test"));
    assert_eq!(form.from_domain(), "example.com");
}

#[test]
fn bad_configurations_are_refused_with_the_form_named() {
    let base = config_json()[0].clone();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("key", json!("sk_live_0123456789abcdef"), "pk_"),
        ("origins", json!(["*"]), "origin"),
        ("origins", json!(["https://example.com/"]), "origin"),
        ("origins", json!([]), "no origins"),
        ("from", json!("not an address"), "from"),
        ("to", json!([]), "exactly one"),
        ("subject", json!("Hi {{nope}}"), "undeclared"),
        ("subject", json!("Hi {{message}}"), "multiline"),
        ("reply_to_field", json!("name"), "reply_to_field"),
        ("honeypot", json!("name"), "honeypot"),
    ];
    for (field, value, needle) in cases {
        let mut form = base.clone();
        form[field] = value;
        let e = PublishableKeys::parse(&json!([form]).to_string()).unwrap_err();
        assert!(e.contains("contact") && e.contains(needle), "{field}: {e}");
    }
    assert!(PublishableKeys::parse("{}").is_err());
}

#[test]
fn templates_render_only_declared_values() {
    let mut values = BTreeMap::new();
    values.insert("a".to_string(), "1".to_string());
    assert_eq!(render("x {{a}} y {{ a }} z", &values), "x 1 y 1 z");
    assert_eq!(render("{{b}}", &values), "");
    assert_eq!(render("unclosed {{a", &values), "unclosed {{a");
    assert_eq!(template_names("{{a}}{{ b }}"), vec!["a", "b"]);
}

#[test]
fn form_ids_and_keys_are_unique() {
    let base = config_json()[0].clone();
    let mut same_id = config_json()[1].clone();
    same_id["id"] = json!("contact");
    let e = PublishableKeys::parse(&json!([base, same_id]).to_string()).unwrap_err();
    assert!(e.contains("`contact` is listed twice"), "{e}");

    let mut same_key = config_json()[1].clone();
    same_key["key"] = base["key"].clone();
    let e = PublishableKeys::parse(&json!([base, same_key]).to_string()).unwrap_err();
    assert!(e.contains("`share` reuses the publishable key"), "{e}");
    assert!(!e.contains("pk_test"), "the key is not quoted: {e}");

    let ids: Vec<String> = keys().form_ids().map(str::to_string).collect();
    assert_eq!(ids, ["contact", "share"]);
}

#[test]
fn rate_limits_count_per_form_and_per_client() {
    let form = contact();
    assert_eq!(
        form.rate_limit_keys(Some("192.0.2.7")),
        (
            "form:contact".to_string(),
            "form:contact:ip:192.0.2.7".to_string()
        )
    );
    // Requests without a readable client address share one bucket per form.
    assert_eq!(form.rate_limit_keys(None).1, "form:contact:ip:unknown");
    assert_eq!(
        form.rate_limit_keys(Some("not an address")).1,
        "form:contact:ip:unknown"
    );
    // IPv6 clients are counted by their /64; mapped IPv4 as IPv4.
    let table = [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        (" 192.0.2.7 ", "192.0.2.7"),
    ];
    for (ip, bucket) in table {
        assert_eq!(
            form.rate_limit_keys(Some(ip)).1,
            format!("form:contact:ip:{bucket}"),
            "{ip}"
        );
    }
}
