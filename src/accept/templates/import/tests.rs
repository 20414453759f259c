use serde_json::{Value, json};

use super::*;
use crate::accept::templates::render;

/// A template as SendGrid's `GET /v3/templates/{id}` answers it (the
/// fields of its API reference, "Retrieve a single transactional
/// template"), with one inactive version.
fn sendgrid(active: Value) -> Value {
    json!({
        "id": "d-13B8F94FBCAE4EC6B75270D6CB59F932",
        "name": "Receipt",
        "generation": "dynamic",
        "updated_at": "2024-01-01 00:00:00",
        "versions": [
            {"id": "8aefe0ee-f12b-4575-b5b7-c97e21cb36f3", "template_id": "d-13b8f94fbcae4ec6b75270d6cb59f932",
             "active": 0, "name": "old", "subject": "Old", "html_content": "<p>old</p>",
             "plain_content": "old", "generate_plain_content": true, "editor": "code"},
            active
        ]
    })
}

fn import(value: Value) -> Result<Imported, ApiError> {
    parse_sendgrid(value.to_string().as_bytes())
}

fn var(name: &str, kind: VarKind, fallback: Option<Value>) -> Variable {
    Variable {
        name: name.into(),
        kind,
        fallback,
    }
}

#[test]
fn the_active_version_is_imported_with_its_variables_declared() {
    let got = import(sendgrid(json!({
        "id": "v2", "active": 1, "name": "new", "editor": "code",
        "subject": "{{{subject}}}",
        "html_content": "<p>Hi {{user.first}}</p>{{#each items}}<li>{{name}} {{../currency}}</li>{{/each}}{{#if vip}}VIP{{/if}}{{#with address}}{{city}}{{/with}}",
        "plain_content": "Total {{total}} {{#unless paid}}due{{/unless}}",
        "test_data": "{\"total\": 12.5, \"paid\": false}"
    })))
    .unwrap();
    assert_eq!(
        got.id.as_deref(),
        Some("tpl_13b8f94fbcae4ec6b75270d6cb59f932")
    );
    let t = &got.template;
    assert_eq!(t.name, "Receipt");
    assert_eq!(t.subject, "{{{subject}}}");
    assert_eq!(
        t.variables,
        vec![
            var("address", VarKind::Object, None),
            var("currency", VarKind::String, None),
            var("items", VarKind::List, None),
            // Sampled as a boolean by test_data, and only tested.
            var("paid", VarKind::Boolean, Some(json!(false))),
            var("subject", VarKind::String, None),
            // test_data says a number.
            var("total", VarKind::Number, None),
            var("user", VarKind::Object, None),
            var("vip", VarKind::Boolean, Some(json!(false))),
        ]
    );
    // And it renders with what a SendGrid send gives.
    let data = json!({"subject": "Your receipt", "user": {"first": "Ada"},
        "items": [{"name": "Tea"}], "currency": "EUR", "address": {"city": "Paris"}, "total": 3});
    let Value::Object(data) = data else { panic!() };
    let r = render(t, &data).unwrap();
    assert_eq!(r.subject, "Your receipt");
    assert_eq!(
        r.html.as_deref(),
        Some("<p>Hi Ada</p><li>Tea EUR</li>Paris")
    );
    assert_eq!(r.text.as_deref(), Some("Total 3 due"));
}

#[test]
fn what_cannot_be_imported_is_refused_by_field_and_rule() {
    let ok_version = json!({"active": 1, "subject": "Hi", "html_content": "<p>x</p>"});
    let mut legacy = sendgrid(ok_version.clone());
    legacy["generation"] = json!("legacy");
    let mut no_active = sendgrid(ok_version.clone());
    no_active["versions"][1]["active"] = json!(0);
    let mut bad_id = sendgrid(ok_version.clone());
    bad_id["id"] = json!("13b8f94f-legacy-guid");
    let mut no_name = sendgrid(ok_version.clone());
    no_name["name"] = json!(" ");
    let table: &[(Value, &str, &str)] = &[
        (legacy, "generation", "legacy_template"),
        (no_active, "versions", "no_active_version"),
        (bad_id, "id", "invalid_value"),
        (no_name, "name", "required"),
        (json!([1]), "", "invalid_type"),
        (
            sendgrid(json!({"active": 1, "html_content": "<p>x</p>"})),
            "versions[1].subject",
            "required",
        ),
        (
            sendgrid(json!({"active": 1, "subject": "Hi", "html_content": "{{formatDate when}}"})),
            "versions[1].html_content",
            "template_syntax",
        ),
        (
            sendgrid(json!({"active": 1, "subject": "Hi", "html_content": "{{> footer}}"})),
            "versions[1].html_content",
            "template_syntax",
        ),
        (
            sendgrid(json!({"active": 1, "subject": "Hi"})),
            "html",
            "required",
        ),
        (
            sendgrid(json!({"active": 1, "subject": "Hi", "html_content": 5})),
            "versions[1].html_content",
            "invalid_type",
        ),
        (
            sendgrid(json!({"active": 1, "subject": "Hi {{first-name}}", "html_content": "x"})),
            "variables[0].name",
            "invalid_variable_name",
        ),
    ];
    for (value, field, rule) in table {
        let e = import(value.clone()).expect_err(&format!("{value} passed"));
        assert_eq!(e.status, 422, "{value}");
        assert_eq!(e.field.as_deref(), Some(*field), "{value}: {}", e.message);
        assert_eq!(e.details[0].rule, *rule, "{value}");
    }
    assert_eq!(import(json!("x")).unwrap_err().status, 422);
    assert_eq!(parse_sendgrid(b"{").unwrap_err().status, 400);
}

#[test]
fn ids_keep_their_hex_between_sendgrid_and_edgerelay() {
    let table: &[(&str, Option<&str>)] = &[
        (
            "d-13b8f94fbcae4ec6b75270d6cb59f932",
            Some("tpl_13b8f94fbcae4ec6b75270d6cb59f932"),
        ),
        ("d-ABC", Some("tpl_abc")),
        ("d-", None),
        ("d-xyz", None),
        ("tpl_abc", None),
        ("13b8f94f-bcae-4ec6-b752-70d6cb59f932", None),
    ];
    for (sg, ours) in table {
        assert_eq!(from_sendgrid_id(sg).as_deref(), *ours, "{sg}");
        if let Some(ours) = ours {
            assert_eq!(
                sendgrid_id(ours).as_deref(),
                Some(sg.to_lowercase().as_str())
            );
        }
    }
    assert_eq!(from_sendgrid_id(&format!("d-{}", "a".repeat(65))), None);
    assert_eq!(sendgrid_id("tpl_0a1b").as_deref(), Some("d-0a1b"));
}
