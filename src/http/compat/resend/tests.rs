use serde_json::json;

use super::*;
use crate::accept::error::FieldProblem;

fn request(body: Value) -> Result<SendRequest, ApiError> {
    email_request(body.to_string().as_bytes()).map(|m| {
        assert_eq!(m.template, None);
        m.request
    })
}

#[test]
fn a_template_send_maps_to_the_template_and_its_variables() {
    let base = json!({"from": "a@example.com", "to": "b@example.net"});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        email_request(v.to_string().as_bytes())
    };
    // The template gives the subject when the email does not, and the
    // email's own subject is kept when it does (Resend's override).
    let table: &[(Value, Option<&str>, Value)] = &[
        (
            json!({"template": {"id": "tpl_1", "variables": {"NAME": "Ada", "N": 2}}}),
            None,
            json!({"NAME": "Ada", "N": 2}),
        ),
        (
            json!({"subject": "Mine", "template": {"id": "tpl_1"}}),
            Some("Mine"),
            json!({}),
        ),
    ];
    for (extra, subject, variables) in table {
        let m = with(extra.clone()).unwrap();
        let t = m.template.expect("a template");
        assert_eq!(t.id, "tpl_1");
        assert_eq!(&Value::Object(t.variables), variables, "{extra}");
        assert_eq!(m.request.subject.as_deref(), *subject, "{extra}");
        assert_eq!(m.request.html, None);
    }
    // A template of the wrong shape is a validation error naming it.
    for bad in [
        json!({"template": {"variables": {}}}),
        json!({"template": {"id": "t", "vars": {}}}),
        json!({"template": "tpl_1"}),
    ] {
        let e = with(bad.clone()).unwrap_err();
        assert_eq!(error(&e).0, 422, "{bad}");
    }
}

#[test]
fn a_resend_email_maps_to_the_same_send_request() {
    let got = request(json!({
        "from": "Acme <ada@example.com>",
        "to": ["bob@example.net", "carol@example.net"],
        "cc": "dan@example.net",
        "bcc": ["eve@example.net"],
        "reply_to": "help@example.com",
        "subject": "Hi",
        "html": "<p>Hi</p>",
        "text": "Hi",
        "headers": {"X-Entity-Ref-ID": "42"},
        "attachments": [
            {"filename": "a.txt", "content": "aGk=", "content_type": "text/plain"},
            {"filename": "b.bin", "content": [104, 105]},
            {"filename": "logo.png", "content": "aGk=", "content_id": "logo"}
        ],
        "tags": [{"name": "category", "value": "welcome"}],
        "scheduled_at": null,
    }))
    .unwrap();
    let want = SendRequest::from_json(
        json!({
            "from": "Acme <ada@example.com>",
            "to": ["bob@example.net", "carol@example.net"],
            "cc": "dan@example.net",
            "bcc": ["eve@example.net"],
            "reply_to": "help@example.com",
            "subject": "Hi",
            "html": "<p>Hi</p>",
            "text": "Hi",
            "headers": {"X-Entity-Ref-ID": "42"},
            "attachments": [
                {"filename": "a.txt", "content": "aGk=", "content_type": "text/plain"},
                {"filename": "b.bin", "content": "aGk="},
                {"filename": "logo.png", "content": "aGk=", "content_id": "logo"}
            ],
            "tags": [{"name": "category", "value": "welcome"}]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(got, want);
}

/// A body, and the status and Resend name of its refusal.
#[test]
fn refusals_carry_resends_names() {
    let table: &[(&[u8], u16, &str, &str)] = &[
        (b"{", 400, "validation_error", ""),
        (b"[]", 422, "validation_error", ""),
        (
            br#"{"to": "b@example.net", "subject": "s", "text": "t"}"#,
            422,
            "missing_required_field",
            "from",
        ),
        (
            br#"{"from": "a@example.com", "subject": "s", "text": "t"}"#,
            422,
            "missing_required_field",
            "to",
        ),
        (
            br#"{"from": "a@example.com", "to": "b@example.net", "text": "t"}"#,
            422,
            "missing_required_field",
            "subject",
        ),
        (
            br#"{"from": "a@example.com", "to": "b@example.net", "subject": "s", "hmtl": "t"}"#,
            422,
            "validation_error",
            "hmtl",
        ),
        (
            br#"{"from": "a@example.com", "to": "b@example.net", "subject": "s", "attachments": [{"path": "https://x/a.pdf", "filename": "a.pdf"}]}"#,
            422,
            "validation_error",
            "attachments[0].path",
        ),
        (
            br#"{"from": "a@example.com", "to": "b@example.net", "subject": "s", "attachments": [{"filename": "a", "content": [1, 300]}]}"#,
            422,
            "validation_error",
            "attachments[0].content",
        ),
    ];
    for (body, status, name, field) in table {
        let e = email_request(body).unwrap_err();
        let (got_status, got) = error(&e);
        let shown = String::from_utf8_lossy(body);
        assert_eq!(got_status, *status, "{shown}: {got}");
        assert_eq!(got["statusCode"], json!(status), "{shown}");
        assert_eq!(got["name"], json!(name), "{shown}: {got}");
        assert!(got["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(e.field.as_deref().unwrap_or(""), *field, "{shown}");
    }
    let not_yet = email_request(
        br#"{"from": "a@example.com", "to": "b@example.net", "subject": "s", "topic_id": "x"}"#,
    )
    .unwrap_err();
    assert!(not_yet.message.contains("not supported by edgerelay yet"));
}

#[test]
fn edgerelay_errors_take_the_names_resends_sdks_know() {
    let rule = |status: u16, rule: &'static str| {
        let mut e = ApiError::not_found("x");
        e.status = status;
        e.rule = rule;
        e
    };
    let detail = |r: &str| {
        ApiError::invalid(vec![FieldProblem {
            field: "f".into(),
            rule: r.into(),
            message: "m".into(),
        }])
    };
    let table: Vec<(ApiError, u16, &str)> = vec![
        (rule(401, "missing_credentials"), 401, "missing_api_key"),
        (rule(401, "invalid_api_key"), 403, "invalid_api_key"),
        (rule(401, "malformed_authorization"), 403, "invalid_api_key"),
        (rule(403, "insufficient_scope"), 401, "restricted_api_key"),
        (rule(403, "domain_not_allowed"), 403, "validation_error"),
        (rule(404, "not_found"), 404, "not_found"),
        (
            rule(409, "idempotency_key_reused"),
            409,
            "invalid_idempotent_request",
        ),
        (
            rule(409, "idempotency_key_in_use"),
            409,
            "concurrent_idempotent_requests",
        ),
        (ApiError::rate_limited(3), 429, "rate_limit_exceeded"),
        (
            detail("invalid_idempotency_key"),
            400,
            "invalid_idempotency_key",
        ),
        (detail("required"), 422, "missing_required_field"),
        (detail("invalid_address"), 422, "validation_error"),
        (ApiError::too_large("", "big"), 413, "validation_error"),
        (ApiError::unavailable("down"), 503, "application_error"),
        (ApiError::misconfigured("x"), 500, "application_error"),
    ];
    for (e, status, name) in table {
        let (got_status, body) = error(&e);
        assert_eq!(
            (got_status, body["name"].as_str()),
            (status, Some(name)),
            "{e:?}"
        );
        assert_eq!(body["statusCode"], json!(status));
    }
}

#[test]
fn batches_are_lists_of_one_to_a_hundred_emails() {
    let item = json!({"from": "a@example.com", "to": "b@example.net", "subject": "s", "text": "t"});
    let bad = json!({"from": "a@example.com", "subject": "s", "text": "t"});
    let body = json!([item, bad, item]).to_string();
    let items = batch_requests(body.as_bytes()).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_err() && items[2].is_ok());
    for body in [
        "[]".to_string(),
        json!(vec![item.clone(); MAX_BATCH + 1]).to_string(),
        "{}".to_string(),
    ] {
        let e = batch_requests(body.as_bytes()).unwrap_err();
        assert_eq!(error(&e).0, 422, "{}", &body[..body.len().min(20)]);
    }
    assert_eq!(
        batch_requests(json!(vec![item; MAX_BATCH]).to_string().as_bytes())
            .unwrap()
            .len(),
        MAX_BATCH
    );
}

#[test]
fn the_batch_validation_header() {
    use BatchValidation::*;
    assert_eq!(BatchValidation::parse(None).unwrap(), Strict);
    assert_eq!(BatchValidation::parse(Some("strict")).unwrap(), Strict);
    assert_eq!(
        BatchValidation::parse(Some("permissive")).unwrap(),
        Permissive
    );
    let e = BatchValidation::parse(Some("lenient")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("x-batch-validation"));
}

#[test]
fn batch_answers_list_ids_and_in_permissive_mode_errors() {
    let outcomes = vec![
        Ok("m1".to_string()),
        Err(ApiError::invalid_field(
            "to",
            "required",
            "Missing `to` field.",
        )),
        Ok("m3".to_string()),
    ];
    assert_eq!(
        batch_answer(&outcomes, BatchValidation::Permissive).unwrap(),
        json!({"data": [{"id": "m1"}, {"id": "m3"}],
               "errors": [{"index": 1, "message": "to: Missing `to` field."}]})
    );
    assert_eq!(
        batch_answer(&outcomes[..1], BatchValidation::Strict).unwrap(),
        json!({"data": [{"id": "m1"}]})
    );
    // A permissive batch of which nothing was sent is refused, naming the
    // first email.
    let nothing = batch_answer(&outcomes[1..2], BatchValidation::Permissive).unwrap_err();
    assert!(
        nothing.message.starts_with("emails[0]: "),
        "{}",
        nothing.message
    );
    assert_eq!(error(&nothing).0, 422);
    let refused = strict_refusal(4, &outcomes[1].clone().unwrap_err());
    assert!(refused.message.starts_with("emails[4]: "));
    assert_eq!(error(&refused).1["name"], "missing_required_field");
}

fn event(kind: &str, at: f64) -> EmailEventRow {
    EmailEventRow {
        id: format!("ev-{at}"),
        event_type: kind.to_string(),
        recipient: None,
        created_at: at,
        payload: "{}".to_string(),
    }
}

/// A status, its events (type, time) and the `last_event` they make.
type LastEventCase<'a> = (&'a str, &'a [(&'a str, f64)], &'a str);

#[test]
fn last_event_says_sent_for_a_250_and_delivered_only_on_evidence() {
    let table: &[LastEventCase<'_>] = &[
        ("queued", &[], "queued"),
        ("deferred", &[], "delivery_delayed"),
        // Accepted by the smarthost: sent, not delivered.
        ("delivered", &[], "sent"),
        ("delivered", &[("email.sent", 1.0)], "sent"),
        (
            "delivered",
            &[("email.sent", 1.0), ("email.delivered", 2.0)],
            "delivered",
        ),
        (
            "delivered",
            &[("email.delivered", 2.0), ("email.opened", 3.0)],
            "opened",
        ),
        // Order by time, not by row.
        (
            "delivered",
            &[("email.clicked", 5.0), ("email.sent", 1.0)],
            "clicked",
        ),
        // An unsubscribe is not a state of the email.
        (
            "delivered",
            &[("email.sent", 1.0), ("email.unsubscribed", 2.0)],
            "sent",
        ),
        ("failed", &[("email.bounced", 1.0)], "bounced"),
        ("failed", &[], "failed"),
        ("suppressed", &[], "suppressed"),
        ("partially_delivered", &[], "sent"),
        ("unknown", &[], "sent"),
    ];
    for (status, events, want) in table {
        let rows: Vec<EmailEventRow> = events.iter().map(|(k, at)| event(k, *at)).collect();
        assert_eq!(last_event(status, &rows), *want, "{status} {events:?}");
    }
}

#[test]
fn the_email_object() {
    let row = MessageRow {
        id: "0123".into(),
        status: "delivered".into(),
        mail_from: "ada@example.com".into(),
        rcpt_to: r#"["bob@example.net"]"#.into(),
        attempts: 1.0,
        last_error: None,
        created_at: 1_764_460_800_000.0,
        updated_at: 1_764_460_800_000.0,
        next_attempt_at: None,
        producer_id: None,
        tags: Some(r#"{"category":"welcome"}"#.into()),
        stream: None,
        subject: Some("Hi".into()),
        scheduled_at: None,
    };
    let view = email_view(&row, &[]);
    assert_eq!(view["object"], "email");
    assert_eq!(view["id"], "0123");
    assert_eq!(view["to"], json!(["bob@example.net"]));
    assert_eq!(view["from"], "ada@example.com");
    assert_eq!(view["subject"], "Hi");
    assert_eq!(view["last_event"], "sent");
    assert_eq!(view["created_at"], "2025-11-30T00:00:00.000Z");
    assert_eq!(
        view["tags"],
        json!([{"name": "category", "value": "welcome"}])
    );
}

#[test]
fn scheduled_at_is_taken_as_text() {
    use crate::message::request::ScheduledAt;
    let r = email_request(
        br#"{"from": "a@example.com", "to": "b@example.net", "subject": "s", "scheduled_at": "in 1 min"}"#,
    )
    .unwrap();
    assert_eq!(
        r.request.scheduled_at,
        Some(ScheduledAt::Text("in 1 min".into()))
    );
    assert_eq!(
        updated("em_1"),
        serde_json::json!({"object": "email", "id": "em_1"})
    );
}
