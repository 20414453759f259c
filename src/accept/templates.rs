//! Stored templates: what a template is (a subject, an HTML and a text part,
//! and the variables it declares, each with a type and an optional
//! fallback), the checks it passes when it is saved, and rendering it into a
//! send request.
//!
//! Templates speak Handlebars (`message::handlebars`, strict), so SendGrid
//! dynamic templates and Resend's `{{{VAR}}}` templates both work.
//! In the HTML part `{{name}}` is HTML-escaped and `{{{name}}}` is not; in the
//! subject and the text part nothing is escaped. A variable the template uses
//! but does not declare is refused when the template is saved; at send time
//! a variable not declared, one of the wrong type, or one the template needs
//! that has neither a value nor a fallback is a 422 naming it.
//!
//! Owns those rules and the request rewrite (`template` in, `subject`, `html`
//! and `text` out). Must not: store templates or read the clock.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::message::SendRequest;
use crate::message::handlebars::{self, Template as Parsed};

use super::ApiError;

pub mod import;

/// The most a template's parts may hold together.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// The most variables a template may declare.
pub const MAX_VARIABLES: usize = 100;
/// The longest template name.
pub const MAX_NAME_CHARS: usize = 200;

/// A declared variable's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarKind {
    String,
    Number,
    Boolean,
    Object,
    List,
}

impl VarKind {
    fn admits(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (VarKind::String, Value::String(_))
                | (VarKind::Number, Value::Number(_))
                | (VarKind::Boolean, Value::Bool(_))
                | (VarKind::Object, Value::Object(_))
                | (VarKind::List, Value::Array(_))
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            VarKind::String => "string",
            VarKind::Number => "number",
            VarKind::Boolean => "boolean",
            VarKind::Object => "object",
            VarKind::List => "list",
        }
    }
}

/// One declared variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: VarKind,
    /// Used when a send gives no value; `None`: the send must give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Value>,
}

/// A template's content, as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub variables: Vec<Variable>,
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// What a send request asks for: `"template": {"id", "variables"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub id: String,
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// Reads and checks a template to save (`POST /v1/templates`).
pub fn parse(body: &[u8]) -> Result<Template, ApiError> {
    let t: Template = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_field(
            "body",
            "invalid_template",
            format!("a template is {{name, subject, html?, text?, variables?}}: {e}"),
        )
    })?;
    check(&t)?;
    Ok(t)
}

/// The checks a template passes before it is saved: sizes, names, fallback
/// types, Handlebars syntax, and every variable it uses declared.
pub fn check(t: &Template) -> Result<(), ApiError> {
    let name_chars = t.name.trim().chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        return Err(ApiError::invalid_field(
            "name",
            "invalid_length",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if t.subject.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "subject",
            "required",
            "a template needs a subject",
        ));
    }
    if t.html.is_none() && t.text.is_none() {
        return Err(ApiError::invalid_field(
            "html",
            "required",
            "give html, text or both",
        ));
    }
    let size = t.subject.len()
        + t.html.as_ref().map_or(0, String::len)
        + t.text.as_ref().map_or(0, String::len);
    if size > MAX_TEMPLATE_BYTES {
        return Err(ApiError::too_large(
            "html",
            format!("a template's parts may hold at most {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    if t.variables.len() > MAX_VARIABLES {
        return Err(ApiError::invalid_field(
            "variables",
            "too_many",
            format!("at most {MAX_VARIABLES} variables"),
        ));
    }
    for (i, v) in t.variables.iter().enumerate() {
        let field = format!("variables[{i}].name");
        if !is_variable_name(&v.name) {
            return Err(ApiError::invalid_field(
                &field,
                "invalid_variable_name",
                "letters, digits and _ (not first a digit), at most 64",
            ));
        }
        if t.variables[..i].iter().any(|w| w.name == v.name) {
            return Err(ApiError::invalid_field(
                &field,
                "repeated",
                "declared twice",
            ));
        }
        if let Some(fallback) = &v.fallback
            && !v.kind.admits(fallback)
        {
            return Err(ApiError::invalid_field(
                &format!("variables[{i}].fallback"),
                "invalid_type",
                format!("must be a {}", v.kind.as_str()),
            ));
        }
    }
    // Every root name a part uses must be declared. Found from the parsed
    // template, not by rendering samples: an object variable used through a
    // path (`{{user.first}}`) has no sample that knows its fields.
    for (part, source) in [
        ("subject", Some(&t.subject)),
        ("html", t.html.as_ref()),
        ("text", t.text.as_ref()),
    ] {
        let Some(source) = source else { continue };
        let parsed = Parsed::parse(source).map_err(|e| match e {
            handlebars::Error::Syntax(reason) => {
                ApiError::invalid_field(part, "template_syntax", reason)
            }
            other => ApiError::invalid_field(part, "template_syntax", format!("{other:?}")),
        })?;
        if let Some(name) = parsed
            .roots()
            .into_keys()
            .find(|name| !t.variables.iter().any(|v| &v.name == name))
        {
            return Err(ApiError::invalid_field(
                part,
                "undeclared_variable",
                format!("uses `{name}`, which the template does not declare in variables"),
            ));
        }
    }
    Ok(())
}

/// Renders `t` with the variables a send gives.
pub fn render(t: &Template, given: &Map<String, Value>) -> Result<Rendered, ApiError> {
    for (name, value) in given {
        let field = format!("template.variables.{name}");
        let Some(declared) = t.variables.iter().find(|v| &v.name == name) else {
            return Err(ApiError::invalid_field(
                &field,
                "undeclared_variable",
                "the template declares no such variable",
            ));
        };
        if !declared.kind.admits(value) {
            return Err(ApiError::invalid_field(
                &field,
                "invalid_type",
                format!("must be a {}", declared.kind.as_str()),
            ));
        }
    }
    let mut data = Map::new();
    for v in &t.variables {
        match given.get(&v.name).or(v.fallback.as_ref()) {
            Some(value) => {
                data.insert(v.name.clone(), value.clone());
            }
            None => {
                return Err(ApiError::invalid_field(
                    &format!("template.variables.{}", v.name),
                    "missing_variable",
                    "the template needs it and declares no fallback",
                ));
            }
        }
    }
    render_parts(t, &Value::Object(data)).map_err(|e| match e {
        Failure::Missing(name) => ApiError::invalid_field(
            &format!("template.variables.{name}"),
            "missing_variable",
            "the template uses it and the send gives no value for it",
        ),
        Failure::Syntax(part, reason) => {
            ApiError::invalid_field(&format!("template.{part}"), "template_syntax", reason)
        }
    })
}

/// Reads the `template` of a send request, if it has one. The cheap byte
/// test first: most requests name no template and are parsed only once.
pub fn requested(body: &[u8]) -> Result<Option<TemplateRef>, ApiError> {
    if !body.windows(10).any(|w| w == b"\"template\"") {
        return Ok(None);
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        // The send path answers a body that is not an object.
        return Ok(None);
    };
    match request.get("template") {
        None | Some(Value::Null) => Ok(None),
        Some(t) => serde_json::from_value(t.clone()).map(Some).map_err(|_| {
            ApiError::invalid_field(
                "template",
                "invalid_template",
                "must be {\"id\": \"...\", \"variables\": {...}}",
            )
        }),
    }
}

/// The send request with its template filled in: `template` gone, the
/// rendered `html` and `text` in, and the rendered subject unless the
/// request gives its own. A request that also gives `html` or `text` is
/// refused: one source for the body.
pub fn expand(body: &[u8], rendered: Rendered) -> Result<Vec<u8>, ApiError> {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::malformed(
            "the request body must be a JSON object",
        ));
    };
    for part in ["html", "text"] {
        if request.get(part).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid_field(
                part,
                "conflicting_fields",
                "give either a template or html and text",
            ));
        }
    }
    request.remove("template");
    if request.get("subject").is_none_or(Value::is_null) {
        request.insert("subject".into(), Value::String(rendered.subject));
    }
    if let Some(html) = rendered.html {
        request.insert("html".into(), Value::String(html));
    }
    if let Some(text) = rendered.text {
        request.insert("text".into(), Value::String(text));
    }
    serde_json::to_vec(&request).map_err(|e| ApiError::malformed(e.to_string()))
}

/// A typed send request (one that came through a provider's door) with
/// its template filled in, by the rules of [`expand`]: the rendered `html`
/// and `text` in, the rendered subject unless the request gives its own,
/// and a request that also gives `html` or `text` refused.
pub fn fill(
    request: &mut SendRequest,
    t: &Template,
    variables: &Map<String, Value>,
) -> Result<(), ApiError> {
    for (part, given) in [("html", &request.html), ("text", &request.text)] {
        if given.is_some() {
            return Err(ApiError::invalid_field(
                part,
                "conflicting_fields",
                "give either a template or html and text",
            ));
        }
    }
    let rendered = render(t, variables)?;
    if request.subject.is_none() {
        request.subject = Some(rendered.subject);
    }
    request.html = rendered.html;
    request.text = rendered.text;
    Ok(())
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

enum Failure {
    /// The variable a part uses that has no value.
    Missing(String),
    /// The part, and what is wrong with its syntax.
    Syntax(&'static str, String),
}

fn render_parts(t: &Template, data: &Value) -> Result<Rendered, Failure> {
    let one = |part: &'static str, source: &str, escape: bool| {
        Parsed::parse(source)
            .and_then(|p| p.render(data, escape))
            .map_err(|e| match e {
                handlebars::Error::Missing(path) => Failure::Missing(path),
                handlebars::Error::Syntax(why) => Failure::Syntax(part, why),
                handlebars::Error::TooLarge => Failure::Syntax(
                    part,
                    format!("renders to more than {} bytes", handlebars::MAX_OUTPUT),
                ),
            })
    };
    Ok(Rendered {
        subject: one("subject", &t.subject, false)?,
        html: t
            .html
            .as_deref()
            .map(|h| one("html", h, true))
            .transpose()?,
        text: t
            .text
            .as_deref()
            .map(|x| one("text", x, false))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests;
