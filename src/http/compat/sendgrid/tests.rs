use serde_json::json;

use super::*;

const MAX: usize = 1 << 20;

fn parse(body: Value) -> Result<MailSend, ApiError> {
    MailSend::parse(body.to_string().as_bytes(), MAX)
}

fn ours(body: Value) -> SendRequest {
    SendRequest::from_json(body.to_string().as_bytes()).unwrap()
}

#[test]
fn each_personalization_is_its_own_message() {
    let send = parse(json!({
        "personalizations": [
            {"to": [{"email": "bob@example.net", "name": "Bob"}],
             "cc": [{"email": "carol@example.net"}],
             "subject": "For -name-",
             "headers": {"X-Campaign": "p0", "X-Only-P0": "yes"},
             "substitutions": {"-name-": "Bob"},
             "custom_args": {"user": "1", "shared": "p0"}},
            {"to": [{"email": "dan@example.net"}],
             "bcc": [{"email": "audit@example.com"}],
             "from": {"email": "other@example.com"}}
        ],
        "from": {"email": "ada@example.com", "name": "Ada"},
        "reply_to": {"email": "help@example.com"},
        "subject": "Top subject",
        "content": [
            {"type": "text/plain", "value": "Hello -name-"},
            {"type": "text/html", "value": "<p>Hello -name-</p>"}
        ],
        "headers": {"X-Campaign": "top", "X-Top": "1"},
        "categories": ["welcome", "onboarding"],
        "custom_args": {"shared": "top", "batch": "7"},
        "attachments": [
            {"content": "aGk=", "filename": "a.txt", "type": "text/plain", "disposition": "attachment"},
            {"content": "aGk=", "filename": "logo.png", "type": "image/png", "disposition": "inline", "content_id": "logo"}
        ],
        "tracking_settings": {"click_tracking": {"enable": true, "enable_text": false},
                              "open_tracking": {"enable": false}},
        "mail_settings": {"sandbox_mode": {"enable": false}}
    }))
    .unwrap();
    assert_eq!(send.len(), 2);
    assert!(!send.sandbox);
    let shared = json!({
        "reply_to": {"email": "help@example.com"},
        "attachments": [
            {"content": "aGk=", "filename": "a.txt", "content_type": "text/plain", "disposition": "attachment"},
            {"content": "aGk=", "filename": "logo.png", "content_type": "image/png", "disposition": "inline", "content_id": "logo"}
        ],
        "tags": [{"name": "category", "value": "welcome"}, {"name": "category_2", "value": "onboarding"}],
        "tracking": {"opens": false, "clicks": true}
    });
    let with = |extra: Value| {
        let mut m = shared.clone();
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        ours(m)
    };
    // The personalization's subject, headers and custom_args win; its
    // substitutions apply to its subject and bodies.
    assert_eq!(
        send.message(0).unwrap().request,
        with(json!({
            "from": {"email": "ada@example.com", "name": "Ada"},
            "to": [{"email": "bob@example.net", "name": "Bob"}],
            "cc": [{"email": "carol@example.net"}],
            "subject": "For Bob",
            "text": "Hello Bob",
            "html": "<p>Hello Bob</p>",
            "headers": {"X-Campaign": "p0", "X-Only-P0": "yes", "X-Top": "1"},
            "metadata": {"user": "1", "shared": "p0", "batch": "7"}
        }))
    );
    // Without its own, the request's; its own from.
    assert_eq!(
        send.message(1).unwrap().request,
        with(json!({
            "from": {"email": "other@example.com"},
            "to": [{"email": "dan@example.net"}],
            "bcc": [{"email": "audit@example.com"}],
            "subject": "Top subject",
            "text": "Hello -name-",
            "html": "<p>Hello -name-</p>",
            "headers": {"X-Campaign": "top", "X-Top": "1"},
            "metadata": {"shared": "top", "batch": "7"}
        }))
    );
    assert!(send.message(2).is_err());
}

/// SendGrid's rules with a dynamic template: the template gives the
/// subject (a request's or a personalization's is ignored), each
/// personalization's dynamic_template_data are its own variables, its
/// headers still win over the request's, and no subject is required.
#[test]
fn a_dynamic_template_send_maps_each_personalizations_data() {
    let send = parse(json!({
        "personalizations": [
            {"to": [{"email": "bob@example.net"}], "subject": "ignored",
             "headers": {"X-H": "p0"},
             "dynamic_template_data": {"name": "Bob", "items": [{"n": 1}]}},
            {"to": [{"email": "dan@example.net"}]},
            {"to": [{"email": "eve@example.net"}], "dynamic_template_data": null}
        ],
        "from": {"email": "ada@example.com"},
        "subject": "also ignored",
        "headers": {"X-H": "top", "X-Top": "1"},
        "template_id": "d-0A1B"
    }))
    .unwrap();
    assert_eq!(send.template(), Some("tpl_0a1b"));
    let table: &[(usize, &str, Value, Value)] = &[
        (
            0,
            "bob@example.net",
            json!({"name": "Bob", "items": [{"n": 1}]}),
            json!({"X-H": "p0", "X-Top": "1"}),
        ),
        (
            1,
            "dan@example.net",
            json!({}),
            json!({"X-H": "top", "X-Top": "1"}),
        ),
        (
            2,
            "eve@example.net",
            json!({}),
            json!({"X-H": "top", "X-Top": "1"}),
        ),
    ];
    for (i, to, data, headers) in table {
        let m = send.message(*i).unwrap();
        let t = m.template.expect("a template");
        assert_eq!(t.id, "tpl_0a1b", "{i}");
        assert_eq!(&Value::Object(t.variables), data, "{i}");
        assert_eq!(m.request.subject, None, "{i}: the template's subject");
        assert_eq!(
            serde_json::to_value(&m.request.to).unwrap(),
            json!([{"email": to}])
        );
        assert_eq!(serde_json::to_value(&m.request.headers).unwrap(), *headers);
    }
    // An id that is not d-<hex> is looked up as given (an edgerelay id).
    let send = parse(json!({
        "personalizations": [{"to": [{"email": "bob@example.net"}]}],
        "from": {"email": "ada@example.com"},
        "template_id": "tpl_77"
    }))
    .unwrap();
    assert_eq!(send.template(), Some("tpl_77"));
    // Without a template, substitutions still apply and nothing names one.
    let send = parse(json!({
        "personalizations": [{"to": [{"email": "bob@example.net"}], "substitutions": {"-n-": "Bob"}}],
        "from": {"email": "ada@example.com"},
        "subject": "Hi -n-",
        "content": [{"type": "text/plain", "value": "x"}]
    }))
    .unwrap();
    let m = send.message(0).unwrap();
    assert_eq!(m.template, None);
    assert_eq!(m.request.subject.as_deref(), Some("Hi Bob"));
}

#[test]
fn asm_subscription_tracking_sandbox_and_reply_to_list() {
    let send = parse(json!({
        "personalizations": [{"to": [{"email": "bob@example.net"}]}],
        "from": {"email": "ada@example.com"},
        "subject": "s",
        "content": [{"type": "text/html", "value": "<p>x</p>"}],
        "reply_to_list": [{"email": "a@example.com"}, {"email": "b@example.com", "name": "B"}],
        "asm": {"group_id": 42, "groups_to_display": [42, 43]},
        "mail_settings": {"sandbox_mode": {"enable": true}, "footer": {"enable": false}},
        "tracking_settings": {"subscription_tracking": {"enable": true}}
    }))
    .unwrap();
    assert!(send.sandbox);
    let m = send.message(0).unwrap().request;
    assert_eq!(m.topic.as_deref(), Some("asm-42"));
    assert_eq!(m.unsubscribe, Some(true));
    assert_eq!(m.reply_to.map(|r| r.len()), Some(2));
    assert_eq!(m.tracking, None);
}

/// A request, and the SendGrid field and status of its refusal.
#[test]
fn refusals_name_sendgrids_fields() {
    let base = || {
        json!({
            "personalizations": [{"to": [{"email": "bob@example.net"}]}],
            "from": {"email": "ada@example.com"},
            "subject": "s",
            "content": [{"type": "text/plain", "value": "x"}]
        })
    };
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = base();
        f(&mut v);
        v
    };
    let table: Vec<(Value, u16, &str)> = vec![
        (
            edit(&|v| v["personalizations"] = json!([])),
            400,
            "personalizations",
        ),
        (
            edit(&|v| {
                v["personalizations"] = json!(vec![
                    json!({"to": [{"email": "b@example.net"}]});
                    MAX_PERSONALIZATIONS + 1
                ])
            }),
            400,
            "personalizations",
        ),
        (
            edit(&|v| v["personalizations"][0] = json!({"cc": [{"email": "c@example.net"}]})),
            400,
            "personalizations[0].to",
        ),
        (
            edit(&|v| {
                v.as_object_mut()
                    .unwrap()
                    .remove("from")
                    .map(drop)
                    .unwrap_or(())
            }),
            400,
            "from.email",
        ),
        (
            edit(&|v| {
                v.as_object_mut()
                    .unwrap()
                    .remove("subject")
                    .map(drop)
                    .unwrap_or(())
            }),
            400,
            "subject",
        ),
        (
            edit(&|v| v["content"] = json!([{"type": "text/calendar", "value": "x"}])),
            400,
            "content[0].type",
        ),
        (
            edit(
                &|v| v["content"] = json!([{"type": "text/plain", "value": "x"}, {"type": "text/plain", "value": "y"}]),
            ),
            400,
            "content[1].type",
        ),
        (
            edit(&|v| {
                v["attachments"] =
                    json!([{"content": "aGk=", "filename": "a", "disposition": "hidden"}])
            }),
            400,
            "attachments[0].disposition",
        ),
        (
            edit(&|v| v["categories"] = json!(vec!["c"; MAX_CATEGORIES + 1])),
            400,
            "categories",
        ),
        (
            edit(&|v| {
                v["reply_to"] = json!({"email": "a@example.com"});
                v["reply_to_list"] = json!([{"email": "a@example.com"}]);
            }),
            400,
            "reply_to_list",
        ),
        (
            edit(&|v| v["personalizations"][0]["substitutions"] = json!({"": "x"})),
            400,
            "personalizations[0].substitutions",
        ),
        (edit(&|v| v["bogus"] = json!(1)), 400, "bogus"),
        // Dynamic templates: SendGrid's rules.
        (
            edit(&|v| v["personalizations"][0]["dynamic_template_data"] = json!({"a": 1})),
            400,
            "personalizations[0].dynamic_template_data",
        ),
        (
            edit(&|v| {
                v["template_id"] = json!("d-123");
                v["personalizations"][0]["dynamic_template_data"] = json!([1]);
            }),
            400,
            "personalizations[0].dynamic_template_data",
        ),
        (
            edit(&|v| {
                v["template_id"] = json!("d-123");
                v["personalizations"][0]["substitutions"] = json!({"-a-": "1"});
            }),
            400,
            "personalizations[0].substitutions",
        ),
        // Not offered yet: 422, named.
        (
            edit(&|v| v["mail_settings"] = json!({"bypass_list_management": {"enable": true}})),
            422,
            "mail_settings.bypass_list_management",
        ),
        (
            edit(&|v| v["tracking_settings"] = json!({"ganalytics": {"enable": true}})),
            422,
            "tracking_settings.ganalytics",
        ),
        (
            edit(&|v| {
                v["tracking_settings"] =
                    json!({"subscription_tracking": {"enable": true, "text": "bye"}})
            }),
            422,
            "tracking_settings.subscription_tracking.text",
        ),
    ];
    for (body, status, field) in table {
        let e = parse(body.clone()).unwrap_err();
        let (got_status, got) = error(&e);
        assert_eq!(got_status, status, "{body}: {got}");
        assert_eq!(got["errors"][0]["field"], json!(field), "{body}: {got}");
        assert!(
            got["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(got["errors"][0].get("help").is_some());
    }
    let e = MailSend::parse(b"{", MAX).unwrap_err();
    assert_eq!(error(&e).0, 400);
}

#[test]
fn errors_of_a_personalizations_message_name_its_fields() {
    let table: &[(&str, Option<usize>, Option<&str>)] = &[
        ("to[1]", Some(3), Some("personalizations[3].to[1]")),
        ("cc", Some(0), Some("personalizations[0].cc")),
        ("bcc[0]", None, Some("bcc[0]")),
        ("from", Some(1), Some("from.email")),
        ("html", Some(1), Some("content")),
        ("tags[0]", None, Some("categories")),
        ("metadata", None, Some("custom_args")),
        ("tracking.consent", None, Some("tracking_settings")),
        ("topic", None, Some("asm")),
        (
            "attachments[2].filename",
            None,
            Some("attachments[2].filename"),
        ),
        ("subject", Some(2), Some("subject")),
        ("template.id", None, Some("template_id")),
        (
            "template.variables.name",
            Some(4),
            Some("personalizations[4].dynamic_template_data.name"),
        ),
        ("template.html", Some(0), Some("template_id")),
        ("", None, None),
    ];
    for (field, p, want) in table {
        assert_eq!(field_name(field, *p).as_deref(), *want, "{field} {p:?}");
    }
    let e = ApiError::invalid_field("to[0]", "invalid_address", "not an address");
    let (status, body) = error(&about_personalization(e, 5));
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"errors": [{"message": "personalizations[5]: not an address",
                           "field": "personalizations[5].to[0]", "help": null}]})
    );
    let (status, body) = error(&ApiError::rate_limited(2));
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0]["field"], Value::Null);
    assert_eq!(
        error(&ApiError::forbidden("domain_not_allowed", "from", "no")).0,
        403
    );
}

#[test]
fn substitutions_are_bounded() {
    let subs = BTreeMap::from([("-n-".to_string(), "x".repeat(100))]);
    assert_eq!(
        substitute("a -n- b -n-", &subs, 1000, "f").unwrap(),
        format!("a {} b {}", "x".repeat(100), "x".repeat(100))
    );
    // Ten keys become 1000 bytes: over a 500-byte limit before any is built.
    let e = substitute(&"-n-".repeat(10), &subs, 500, "f").unwrap_err();
    assert_eq!(e.status, 413);
    assert_eq!(e.field.as_deref(), Some("f"));
    // A value that contains the key is not substituted again.
    let subs = BTreeMap::from([("%a%".to_string(), "%a%%a%".to_string())]);
    assert_eq!(substitute("%a%", &subs, 100, "f").unwrap(), "%a%%a%");
    // Substituted text is then validated like any other: CR/LF in a
    // subject is refused by the accept path (header_injection).
}

#[test]
fn send_at_maps_to_the_schedule_and_a_personalizations_own_wins() {
    use crate::message::request::ScheduledAt;
    let send = parse(json!({
        "personalizations": [
            {"to": [{"email": "bob@example.net"}]},
            {"to": [{"email": "dan@example.net"}], "send_at": 1_900_000_600}
        ],
        "from": {"email": "ada@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
        "send_at": 1_900_000_000
    }))
    .unwrap();
    let at = |i| send.message(i).unwrap().request.scheduled_at;
    assert_eq!(at(0), Some(ScheduledAt::Unix(1_900_000_000)));
    assert_eq!(at(1), Some(ScheduledAt::Unix(1_900_000_600)));
    // A schedule refused by the accept path is named as SendGrid names it.
    assert_eq!(
        field_name("scheduled_at", Some(1)).as_deref(),
        Some("personalizations[1].send_at")
    );
    let e = parse(json!({
        "personalizations": [{"to": [{"email": "bob@example.net"}]}],
        "from": {"email": "ada@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
        "send_at": "tomorrow"
    }))
    .unwrap_err();
    assert_eq!(e.status, 422);
}
