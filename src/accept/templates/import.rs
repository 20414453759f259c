//! Importing a SendGrid dynamic template: the JSON SendGrid's
//! `GET /v3/templates/{id}` answers (`id`, `name`, `generation`,
//! `versions[]` with `active`, `subject`, `html_content`, `plain_content`,
//! `test_data`) becomes an edgerelay template to save as a draft.
//!
//! The active version is taken. Its variables are declared from the
//! template itself (`Template::roots`): a value shown as text is a string,
//! a path through a name (`{{user.first}}`) or `{{#with}}` an object,
//! `{{#each}}` a list, and a name only tested by `{{#if}}` / `{{#unless}}`
//! a boolean that falls back to `false` (a SendGrid template treats a
//! missing flag as false). When the version's `test_data` gives a sample
//! of a name, its JSON type wins. Nothing else gets a fallback: a send that
//! omits a shown value is a 422 naming it, as for any edgerelay template.
//!
//! The template keeps its SendGrid id: `d-<hex>` is imported as
//! `tpl_<hex>`, and SendGrid's mail send door reads `d-<hex>` as that
//! template, so an application's `templateId` does not change.
//!
//! Owns those rules. Must not: store anything (the edge does).

use serde_json::{Map, Value};

use crate::accept::error::ApiError;
use crate::message::handlebars::{self, RootUse, Template as Parsed};

use super::{Template, VarKind, Variable, check};

/// The longest hex part of a template id taken from SendGrid.
const MAX_ID_HEX: usize = 64;

/// A SendGrid template, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The edgerelay id it keeps (`tpl_<hex>` from SendGrid's `d-<hex>`),
    /// when the JSON names one.
    pub id: Option<String>,
    pub template: Template,
}

/// SendGrid's `d-<hex>` as edgerelay's `tpl_<hex>`; `None` for any other
/// form.
pub fn from_sendgrid_id(id: &str) -> Option<String> {
    let hex = id.strip_prefix("d-")?;
    (!hex.is_empty() && hex.len() <= MAX_ID_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("tpl_{}", hex.to_ascii_lowercase()))
}

/// edgerelay's `tpl_<hex>` as the `d-<hex>` SendGrid's SDKs need to send
/// `dynamic_template_data` (they drop it for an id without `d-`).
pub fn sendgrid_id(id: &str) -> Option<String> {
    let hex = id.strip_prefix("tpl_")?;
    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("d-{hex}"))
}

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, rule, message)
}

/// Reads `POST /v1/templates/import`'s body: one SendGrid template.
pub fn parse_sendgrid(body: &[u8]) -> Result<Imported, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(t) = value else {
        return Err(invalid(
            "",
            "invalid_type",
            "a SendGrid template is a JSON object, as GET /v3/templates/{id} answers it",
        ));
    };
    let generation = t.get("generation").and_then(Value::as_str);
    if generation != Some("dynamic") {
        return Err(invalid(
            "generation",
            "legacy_template",
            "only dynamic templates (generation \"dynamic\", Handlebars) are imported; legacy templates use substitutions and <%body%>",
        ));
    }
    let id =
        match t.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(from_sendgrid_id(s).ok_or_else(|| {
                invalid("id", "invalid_value", "a dynamic template's id is d-<hex>")
            })?),
            Some(_) => return Err(invalid("id", "invalid_type", "must be a string")),
        };
    let Some(Value::Array(versions)) = t.get("versions") else {
        return Err(invalid(
            "versions",
            "required",
            "the template's versions, one of them active",
        ));
    };
    let active = |v: &&Value| match v.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    };
    let Some((index, version)) = versions.iter().enumerate().find(|(_, v)| active(v)) else {
        return Err(invalid(
            "versions",
            "no_active_version",
            "no version is active (active: 1)",
        ));
    };
    let text_of = |name: &str| -> Result<Option<String>, ApiError> {
        match version.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(
                &format!("versions[{index}].{name}"),
                "invalid_type",
                "must be a string",
            )),
        }
    };
    let name = match t.get("name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => return Err(invalid("name", "required", "the template's name")),
    };
    let subject = text_of("subject")?.ok_or_else(|| {
        invalid(
            &format!("versions[{index}].subject"),
            "required",
            "the active version has no subject",
        )
    })?;
    let html = text_of("html_content")?;
    let text = text_of("plain_content")?;
    let samples = version
        .get("test_data")
        .and_then(Value::as_str)
        .and_then(|d| serde_json::from_str::<Map<String, Value>>(d).ok())
        .unwrap_or_default();
    let mut uses = std::collections::BTreeMap::new();
    for (part, source) in [
        ("subject", Some(&subject)),
        ("html_content", html.as_ref()),
        ("plain_content", text.as_ref()),
    ] {
        let Some(source) = source else { continue };
        let parsed = Parsed::parse(source).map_err(|e| {
            invalid(
                &format!("versions[{index}].{part}"),
                "template_syntax",
                match e {
                    handlebars::Error::Syntax(why) => {
                        format!("{why} (edgerelay speaks Handlebars without custom helpers)")
                    }
                    other => format!("{other:?}"),
                },
            )
        })?;
        for (root, used) in parsed.roots() {
            let slot = uses.entry(root).or_insert(used);
            *slot = (*slot).max(used);
        }
    }
    let variables = uses
        .into_iter()
        .map(|(name, used)| declared(name, used, &samples))
        .collect();
    let template = Template {
        name: name.chars().take(super::MAX_NAME_CHARS).collect(),
        subject,
        html,
        text,
        variables,
    };
    check(&template)?;
    Ok(Imported { id, template })
}

/// The variable a name used as `used` is declared as.
fn declared(name: String, used: RootUse, samples: &Map<String, Value>) -> Variable {
    let sampled = samples.get(&name).and_then(|v| match v {
        Value::String(_) => Some(VarKind::String),
        Value::Number(_) => Some(VarKind::Number),
        Value::Bool(_) => Some(VarKind::Boolean),
        Value::Object(_) => Some(VarKind::Object),
        Value::Array(_) => Some(VarKind::List),
        Value::Null => None,
    });
    let by_use = match used {
        RootUse::Tested => VarKind::Boolean,
        RootUse::Shown => VarKind::String,
        RootUse::Entered => VarKind::Object,
        RootUse::Listed => VarKind::List,
    };
    // A sample's type wins where the use allows it: a list cannot be
    // entered by name, and only an object or a list can be iterated.
    let kind = match (used, sampled) {
        (RootUse::Listed, Some(k @ (VarKind::List | VarKind::Object))) => k,
        (RootUse::Entered, Some(k @ (VarKind::Object | VarKind::List))) => k,
        (RootUse::Shown | RootUse::Tested, Some(k)) => k,
        _ => by_use,
    };
    let fallback = (used == RootUse::Tested)
        .then(|| match kind {
            VarKind::Boolean => Some(Value::Bool(false)),
            VarKind::String => Some(Value::String(String::new())),
            VarKind::Number => Some(Value::from(0)),
            VarKind::List => Some(Value::Array(Vec::new())),
            VarKind::Object => None,
        })
        .flatten();
    Variable {
        name,
        kind,
        fallback,
    }
}

#[cfg(test)]
mod tests;
