use serde_json::json;

use super::*;

fn template(value: Value) -> Template {
    serde_json::from_value(value).unwrap()
}

fn welcome() -> Template {
    template(json!({
        "name": "Welcome",
        "subject": "Welcome, {{name}}",
        "html": "<p>Hi {{name}}, {{{banner}}}</p>{{#each items}}<li>{{this}}</li>{{/each}}{{#if vip}}<b>VIP</b>{{/if}}",
        "text": "Hi {{name}} & co, {{banner}}",
        "variables": [
            {"name": "name", "type": "string"},
            {"name": "banner", "type": "string", "fallback": "<i>new</i>"},
            {"name": "items", "type": "list", "fallback": []},
            {"name": "vip", "type": "boolean", "fallback": false}
        ]
    }))
}

fn vars(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn html_is_escaped_and_text_is_not() {
    let r = render(
        &welcome(),
        &vars(json!({"name": "<Ada & Bo>", "items": ["a<b"], "vip": true})),
    )
    .unwrap();
    assert_eq!(r.subject, "Welcome, <Ada & Bo>");
    assert_eq!(
        r.html.as_deref(),
        Some("<p>Hi &lt;Ada &amp; Bo&gt;, <i>new</i></p><li>a&lt;b</li><b>VIP</b>")
    );
    assert_eq!(r.text.as_deref(), Some("Hi <Ada & Bo> & co, <i>new</i>"));
}

#[test]
fn send_time_variables_are_checked_by_name_and_type() {
    let t = welcome();
    let cases: &[(Value, &str, &str)] = &[
        (json!({}), "template.variables.name", "missing_variable"),
        (
            json!({"name": "A", "nope": 1}),
            "template.variables.nope",
            "undeclared_variable",
        ),
        (
            json!({"name": 7}),
            "template.variables.name",
            "invalid_type",
        ),
        (
            json!({"name": "A", "items": "x"}),
            "template.variables.items",
            "invalid_type",
        ),
        (
            json!({"name": "A", "vip": "yes"}),
            "template.variables.vip",
            "invalid_type",
        ),
    ];
    for (given, field, rule) in cases {
        let e = render(&t, &vars(given.clone())).unwrap_err();
        assert_eq!(e.status, 422, "{given}");
        let p = &e.details[0];
        assert_eq!(
            (p.field.as_str(), p.rule.as_str()),
            (*field, *rule),
            "{given}"
        );
    }
}

#[test]
fn saving_checks_the_template() {
    let base = json!({"name": "T", "subject": "S", "text": "x", "variables": []});
    let with = |patch: Value| {
        let mut v = base.clone();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let cases: &[(Value, &str, &str)] = &[
        (
            with(json!({"text": "Hi {{who}}"})),
            "text",
            "undeclared_variable",
        ),
        (
            with(json!({"subject": "Hi {{#if x}}"})),
            "subject",
            "template_syntax",
        ),
        (with(json!({"name": ""})), "name", "invalid_length"),
        (with(json!({"subject": " "})), "subject", "required"),
        (with(json!({"text": null})), "html", "required"),
        (
            with(json!({"variables": [{"name": "1a", "type": "string"}]})),
            "variables[0].name",
            "invalid_variable_name",
        ),
        (
            with(
                json!({"variables": [{"name": "a", "type": "string"}, {"name": "a", "type": "number"}]}),
            ),
            "variables[1].name",
            "repeated",
        ),
        (
            with(json!({"variables": [{"name": "a", "type": "number", "fallback": "1"}]})),
            "variables[0].fallback",
            "invalid_type",
        ),
        (with(json!({"html": "{{{x}}"})), "html", "template_syntax"),
    ];
    for (body, field, rule) in cases {
        let e = parse(body.to_string().as_bytes()).unwrap_err();
        let p = &e.details[0];
        assert_eq!(
            (p.field.as_str(), p.rule.as_str()),
            (*field, *rule),
            "{body}"
        );
    }
    assert!(parse(base.to_string().as_bytes()).is_ok());
    let e = parse(br#"{"name": "T", "subject": "S", "text": "x", "colour": 1}"#).unwrap_err();
    assert_eq!(e.details[0].rule, "invalid_template");
    let big = "x".repeat(MAX_TEMPLATE_BYTES);
    let e = parse(with(json!({"text": big})).to_string().as_bytes()).unwrap_err();
    assert_eq!(e.status, 413);
}

#[test]
fn a_request_names_its_template_and_is_expanded() {
    assert_eq!(requested(br#"{"subject": "no template"}"#).unwrap(), None);
    assert_eq!(requested(b"not json").unwrap(), None);
    let body = br#"{"from": "a@example.com", "to": "b@example.org", "template": {"id": "tpl_1", "variables": {"name": "Ada"}}}"#;
    let asked = requested(body).unwrap().unwrap();
    assert_eq!(asked.id, "tpl_1");
    assert_eq!(asked.variables.get("name"), Some(&json!("Ada")));
    assert!(requested(br#"{"template": "tpl_1"}"#).is_err());

    let rendered = render(&welcome(), &asked.variables).unwrap();
    let out: Value = serde_json::from_slice(&expand(body, rendered.clone()).unwrap()).unwrap();
    assert_eq!(out.get("template"), None);
    assert_eq!(out["subject"], json!("Welcome, Ada"));
    assert_eq!(out["text"], json!("Hi Ada & co, <i>new</i>"));
    // The request's own subject wins; its own body is refused.
    let own = br#"{"subject": "Mine", "template": {"id": "t"}}"#;
    let out: Value = serde_json::from_slice(&expand(own, rendered.clone()).unwrap()).unwrap();
    assert_eq!(out["subject"], json!("Mine"));
    let both = br#"{"html": "<p>x</p>", "template": {"id": "t"}}"#;
    assert_eq!(
        expand(both, rendered).unwrap_err().details[0].rule,
        "conflicting_fields"
    );
}
