//! Other providers' API shapes: the Resend (`/emails`) and SendGrid v3
//! (`/v3/mail/send`) requests mapped to edgerelay's own send requests, and
//! edgerelay's answers and errors mapped back to the shapes those
//! providers' SDKs read. An application switches by changing one base URL.
//!
//! These are doors to the one accept path, not a second one: a mapped
//! request is a [`SendRequest`] like any other, sent with the same key,
//! scopes, per-key limits, domain rules, suppression, idempotency, tracking,
//! tags and metadata.
//!
//! Owns: the mappings (pure, table-tested) and [`NOT_YET`], the one list of
//! provider features edgerelay does not offer yet (scheduled batches, ...),
//! each refused with a `422` naming the field. A request that names a
//! template (Resend's `template`, SendGrid's `template_id`) maps to a
//! [`Mapped`] that carries it: the edge loads the stored template and
//! `accept::templates::fill` renders it in.
//! Must not: perform I/O, or judge a message itself (the accept path does,
//! after the mapping).
//!
//! [`SendRequest`]: crate::message::SendRequest

pub mod resend;
pub mod sendgrid;

use serde_json::Value;

use crate::accept::error::{ApiError, FieldProblem};
use crate::accept::templates::TemplateRef;
use crate::message::SendRequest;

/// A provider's request as edgerelay's: the send request, and the stored
/// template it names with the variables to render it with.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub request: SendRequest,
    pub template: Option<TemplateRef>,
}

/// The error shape a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// edgerelay's own `{"error": {...}}`.
    Edgerelay,
    /// `{"statusCode", "name", "message"}`.
    Resend,
    /// `{"errors": [{"message", "field", "help"}]}`.
    SendGrid,
}

/// The rule of a request that uses a provider feature edgerelay does not
/// offer yet.
pub const NOT_SUPPORTED: &str = "not_supported";

/// Provider fields edgerelay does not offer yet, with what they are. A
/// request that sets one (to anything but `null`) is refused with `422`
/// [`NOT_SUPPORTED`] naming the field, never sent without it. When a
/// feature arrives, its rows leave this table and the mapping takes them.
pub const NOT_YET: &[(&str, &str)] = &[
    // Resend.
    (
        "topic_id",
        "Resend topics (use edgerelay's `topic` through /v1/messages)",
    ),
    (
        "attachments[].path",
        "attachments fetched from a URL (send `content`)",
    ),
    // SendGrid.
    ("batch_id", "scheduled sending batches"),
    ("sections", "substitution sections"),
    ("ip_pool_name", "IP pools"),
    ("mail_settings.footer", "footers"),
    (
        "mail_settings.bypass_list_management",
        "bypassing the suppression list",
    ),
    (
        "mail_settings.bypass_spam_management",
        "bypassing the suppression list",
    ),
    (
        "mail_settings.bypass_bounce_management",
        "bypassing the suppression list",
    ),
    (
        "mail_settings.bypass_unsubscribe_management",
        "bypassing the suppression list",
    ),
    (
        "tracking_settings.ganalytics",
        "Google Analytics link parameters",
    ),
    (
        "tracking_settings.subscription_tracking.text",
        "custom unsubscribe text (use {{unsubscribe_url}} in the body)",
    ),
    (
        "tracking_settings.subscription_tracking.html",
        "custom unsubscribe text (use {{unsubscribe_url}} in the body)",
    ),
    (
        "tracking_settings.subscription_tracking.substitution_tag",
        "custom unsubscribe text (use {{unsubscribe_url}} in the body)",
    ),
    (
        "tracking_settings.open_tracking.substitution_tag",
        "a custom open pixel position",
    ),
];

/// `422 not_supported` for `path` (a field of the provider's request, with
/// its indices, e.g. `personalizations[2].send_at`). `key` is its row in
/// [`NOT_YET`], indices written `[]`.
pub fn not_supported(path: &str) -> ApiError {
    let key = without_indices(path);
    let feature = NOT_YET
        .iter()
        .find(|(field, _)| *field == key)
        .map_or("this feature", |(_, what)| what);
    ApiError::invalid(vec![FieldProblem {
        field: path.to_string(),
        rule: NOT_SUPPORTED.to_string(),
        message: format!("`{path}` is not supported by edgerelay yet ({feature}); leave it out"),
    }])
}

/// Refuses a request that sets a field of [`NOT_YET`]: `value` is the
/// object at `prefix` (empty for the top level).
pub fn refuse_not_yet(value: &Value, prefix: &str) -> Result<(), ApiError> {
    let Value::Object(fields) = value else {
        return Ok(());
    };
    for (name, field) in fields {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if field.is_null() {
            continue;
        }
        if NOT_YET.iter().any(|(f, _)| *f == without_indices(&path)) {
            // A setting that is there but off asks for nothing.
            if field
                .get("enable")
                .is_some_and(|e| e == &Value::Bool(false))
            {
                continue;
            }
            return Err(not_supported(&path));
        }
    }
    Ok(())
}

/// `personalizations[2].send_at` -> `personalizations[].send_at`, and a
/// leading `personalizations[].` dropped: the table names a field once.
fn without_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out.strip_prefix("personalizations[].")
        .map(str::to_string)
        .unwrap_or(out)
}

/// Decodes a JSON body into a provider's request type, with the same 400
/// (not JSON) and 422 (wrong shape) as edgerelay's own requests.
pub fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let rule = if message.starts_with("missing field") {
            "required"
        } else if message.starts_with("unknown field") {
            "unknown_field"
        } else {
            "invalid_type"
        };
        // Only these two messages name a field; another's backticks quote
        // the value ("invalid type: integer `5`").
        let field = if rule == "invalid_type" {
            None
        } else {
            missing_field_name(&message)
        };
        ApiError::invalid(vec![FieldProblem {
            field: field.unwrap_or_default(),
            rule: rule.to_string(),
            message,
        }])
    })
}

/// The field serde names in "missing field `to`" / "unknown field `x`".
fn missing_field_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// The body as JSON: `400 malformed_json` when it is not.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_feature_not_offered_yet_is_refused_by_name() {
        let table: &[(Value, &str, Option<&str>)] = &[
            (json!({"scheduled_at": "in 1 hour"}), "", None),
            (json!({"template": {"id": "t"}}), "", None),
            (json!({"template_id": "d-1"}), "", None),
            (json!({"scheduled_at": null}), "", None),
            (json!({"subject": "x"}), "", None),
            (
                json!({"footer": {"enable": true}}),
                "mail_settings",
                Some("mail_settings.footer"),
            ),
            // A setting that is present but off asks for nothing.
            (json!({"footer": {"enable": false}}), "mail_settings", None),
            (
                json!({"sandbox_mode": {"enable": true}}),
                "mail_settings",
                None,
            ),
        ];
        for (value, prefix, refused) in table {
            let got = refuse_not_yet(value, prefix).err();
            match refused {
                None => assert!(got.is_none(), "{value} at {prefix:?}: {got:?}"),
                Some(field) => {
                    let e = got.unwrap_or_else(|| panic!("{value} at {prefix:?} passed"));
                    assert_eq!(e.status, 422, "{value}");
                    assert_eq!(e.field.as_deref(), Some(*field));
                    assert_eq!(e.details[0].rule, NOT_SUPPORTED);
                    assert!(e.message.contains("not supported by edgerelay yet"));
                }
            }
        }
    }

    #[test]
    fn every_row_of_the_table_names_a_feature() {
        for (field, what) in NOT_YET {
            assert!(!field.is_empty() && !what.is_empty());
            assert!(not_supported(field).message.contains(what), "{field}");
        }
        assert!(
            not_supported("batch_id")
                .message
                .contains("scheduled sending batches")
        );
    }
}
