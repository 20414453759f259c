//! SendGrid's v3 mail send, `POST /v3/mail/send`, and its error body
//! `{"errors": [{"message", "field", "help"}]}`.
//!
//! Each personalization is its own message: its `to`, `cc`, `bcc`, `from`,
//! `subject` and `headers` over the request's, its `custom_args` merged over
//! the request's (the personalization wins), its `substitutions` replaced in
//! its subject and bodies. With `template_id` (a dynamic template: an
//! edgerelay template, `d-<hex>` naming `tpl_<hex>`), SendGrid's rules for
//! dynamic templates hold: the subject comes from the template (a `subject`
//! in the request or a personalization is ignored), each personalization's
//! `dynamic_template_data` are its variables, and `substitutions` (legacy
//! templates only) and `content` are refused. `categories` become tags (`category`,
//! `category_2`, ...), `custom_args` metadata, `tracking_settings` tracking,
//! `asm.group_id` the unsubscribe topic `asm-<group_id>` (with one-click
//! unsubscribe). `mail_settings.sandbox_mode` validates and sends nothing.
//!
//! Owns: [`MailSend`] (the request, parsed once, and each personalization's
//! message on demand, so a thousand personalizations of a large message are
//! never in memory at once) and edgerelay's errors in SendGrid's shape.
//! Must not: perform I/O, or judge a message (the accept path does).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Mapped, NOT_SUPPORTED, decode, parse_json, refuse_not_yet};
use crate::accept::error::ApiError;
use crate::accept::templates::TemplateRef;
use crate::accept::templates::import::from_sendgrid_id;
use crate::message::request::{
    AttachmentInput, Disposition, MailboxInput, MailboxObject, OneOrMany, ScheduledAt, TagsInput,
    TrackingInput,
};
use crate::message::{SendRequest, Tag};

/// Most personalizations in one request, as SendGrid.
pub const MAX_PERSONALIZATIONS: usize = 1000;

/// Most categories on one request, as SendGrid.
pub const MAX_CATEGORIES: usize = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    personalizations: Option<Vec<Personalization>>,
    from: Option<Address>,
    reply_to: Option<Address>,
    reply_to_list: Option<Vec<Address>>,
    subject: Option<String>,
    content: Option<Vec<Content>>,
    attachments: Option<Vec<Attachment>>,
    headers: Option<BTreeMap<String, String>>,
    categories: Option<Vec<String>>,
    custom_args: Option<BTreeMap<String, String>>,
    asm: Option<Asm>,
    mail_settings: Option<MailSettings>,
    tracking_settings: Option<TrackingSettings>,
    template_id: Option<String>,
    // Refused by `refuse_not_yet` when set.
    /// Unix seconds (see `accept::schedule`).
    send_at: Option<i64>,
    #[serde(default, rename = "batch_id")]
    _batch_id: Option<Value>,
    #[serde(default, rename = "sections")]
    _sections: Option<Value>,
    #[serde(default, rename = "ip_pool_name")]
    _ip_pool_name: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Personalization {
    to: Option<Vec<Address>>,
    cc: Option<Vec<Address>>,
    bcc: Option<Vec<Address>>,
    from: Option<Address>,
    subject: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    substitutions: Option<BTreeMap<String, String>>,
    custom_args: Option<BTreeMap<String, String>>,
    dynamic_template_data: Option<Value>,
    /// Unix seconds; over the request's own.
    send_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Address {
    email: String,
    name: Option<String>,
}

impl Address {
    fn mailbox(&self) -> MailboxInput {
        MailboxInput::Object(MailboxObject {
            email: self.email.clone(),
            name: self.name.clone().filter(|n| !n.is_empty()),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Content {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Attachment {
    content: String,
    filename: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    disposition: Option<String>,
    content_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Asm {
    group_id: u64,
    /// The groups SendGrid's own preference page lists. edgerelay's
    /// preference page lists the recipient's topics itself: read, unused.
    #[serde(default, rename = "groups_to_display")]
    _groups_to_display: Option<Vec<u64>>,
}

#[derive(Debug, Default, Deserialize)]
struct Enable {
    enable: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailSettings {
    sandbox_mode: Option<Enable>,
    /// Retired by SendGrid; read and ignored as SendGrid does.
    #[serde(default, rename = "spam_check")]
    _spam_check: Option<Value>,
    // Refused by `refuse_not_yet` when enabled.
    #[serde(default, rename = "footer")]
    _footer: Option<Value>,
    #[serde(default, rename = "bypass_list_management")]
    _bypass_list: Option<Value>,
    #[serde(default, rename = "bypass_spam_management")]
    _bypass_spam: Option<Value>,
    #[serde(default, rename = "bypass_bounce_management")]
    _bypass_bounce: Option<Value>,
    #[serde(default, rename = "bypass_unsubscribe_management")]
    _bypass_unsubscribe: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackingSettings {
    click_tracking: Option<ClickTracking>,
    open_tracking: Option<OpenTracking>,
    subscription_tracking: Option<SubscriptionTracking>,
    #[serde(default, rename = "ganalytics")]
    _ganalytics: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClickTracking {
    enable: Option<bool>,
    /// edgerelay rewrites the links of the HTML part only: read, unused.
    #[serde(default, rename = "enable_text")]
    _enable_text: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenTracking {
    enable: Option<bool>,
    #[serde(default, rename = "substitution_tag")]
    _substitution_tag: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionTracking {
    enable: Option<bool>,
    #[serde(default, rename = "text")]
    _text: Option<Value>,
    #[serde(default, rename = "html")]
    _html: Option<Value>,
    #[serde(default, rename = "substitution_tag")]
    _substitution_tag: Option<Value>,
}

/// A `POST /v3/mail/send` request, parsed and checked, ready to give each
/// personalization's message.
#[derive(Debug)]
pub struct MailSend {
    /// What every message shares (the request's own fields).
    shared: SendRequest,
    personalizations: Vec<Personalization>,
    /// `mail_settings.sandbox_mode.enable`: validate, answer, send nothing.
    pub sandbox: bool,
    /// The edgerelay template `template_id` names.
    template: Option<String>,
    /// Largest a subject or body may grow by substitutions.
    max_bytes: usize,
}

fn required(field: &str, message: &str) -> ApiError {
    ApiError::invalid_field(field, "required", message)
}

impl MailSend {
    /// Parses the body. `max_bytes` bounds what substitutions may make of
    /// a subject or a body (the message limit).
    pub fn parse(body: &[u8], max_bytes: usize) -> Result<MailSend, ApiError> {
        let value = parse_json(body)?;
        if !value.is_object() {
            return Err(ApiError::invalid_field(
                "",
                "invalid_type",
                "the request is a JSON object",
            ));
        }
        refuse_not_yet(&value, "")?;
        if let Some(Value::Array(items)) = value.get("personalizations") {
            for (i, p) in items.iter().enumerate() {
                refuse_not_yet(p, &format!("personalizations[{i}]"))?;
            }
        }
        for nested in ["mail_settings", "tracking_settings"] {
            if let Some(v) = value.get(nested) {
                refuse_not_yet(v, nested)?;
            }
        }
        for nested in ["subscription_tracking", "open_tracking"] {
            if let Some(v) = value.get("tracking_settings").and_then(|t| t.get(nested)) {
                refuse_not_yet(v, &format!("tracking_settings.{nested}"))?;
            }
        }
        let request: Request = decode(value)?;
        Self::from_request(request, max_bytes)
    }

    fn from_request(r: Request, max_bytes: usize) -> Result<MailSend, ApiError> {
        let template = r
            .template_id
            .as_deref()
            .map(|id| from_sendgrid_id(id).unwrap_or_else(|| id.to_string()));
        let personalizations = r.personalizations.unwrap_or_default();
        if personalizations.is_empty() {
            return Err(required(
                "personalizations",
                "The personalizations field is required and must have at least one personalization.",
            ));
        }
        if personalizations.len() > MAX_PERSONALIZATIONS {
            return Err(ApiError::invalid_field(
                "personalizations",
                "too_many",
                format!(
                    "at most {MAX_PERSONALIZATIONS} personalizations; this request has {}",
                    personalizations.len()
                ),
            ));
        }
        for (i, p) in personalizations.iter().enumerate() {
            if p.to.as_ref().is_none_or(Vec::is_empty) {
                return Err(required(
                    &format!("personalizations[{i}].to"),
                    "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
                ));
            }
            if p.from.is_none() && r.from.is_none() {
                return Err(required("from.email", "The from email is required."));
            }
            if p.subject.is_none() && r.subject.is_none() && template.is_none() {
                return Err(required(
                    "subject",
                    "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
                ));
            }
            let data = format!("personalizations[{i}].dynamic_template_data");
            match (&template, &p.dynamic_template_data) {
                (_, None | Some(Value::Null)) => {}
                (None, Some(_)) => {
                    return Err(ApiError::invalid_field(
                        &data,
                        "conflicting_fields",
                        "dynamic_template_data fills a dynamic template: give template_id",
                    ));
                }
                (Some(_), Some(Value::Object(_))) => {}
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid_field(
                        &data,
                        "invalid_type",
                        "dynamic_template_data is an object",
                    ));
                }
            }
            if template.is_some() && p.substitutions.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::invalid_field(
                    &format!("personalizations[{i}].substitutions"),
                    "conflicting_fields",
                    "substitutions are for legacy templates; a dynamic template takes dynamic_template_data",
                ));
            }
            for key in p.substitutions.iter().flat_map(BTreeMap::keys) {
                if key.is_empty() {
                    return Err(ApiError::invalid_field(
                        &format!("personalizations[{i}].substitutions"),
                        "invalid_value",
                        "a substitution key cannot be empty",
                    ));
                }
            }
        }
        if r.reply_to.is_some() && r.reply_to_list.is_some() {
            return Err(ApiError::invalid_field(
                "reply_to_list",
                "invalid_value",
                "reply_to and reply_to_list cannot both be set",
            ));
        }
        let (mut text, mut html) = (None, None);
        for (i, c) in r.content.into_iter().flatten().enumerate() {
            let slot = match c.kind.trim().to_ascii_lowercase().as_str() {
                "text/plain" => &mut text,
                "text/html" => &mut html,
                _ => {
                    return Err(ApiError::invalid_field(
                        &format!("content[{i}].type"),
                        "invalid_value",
                        "edgerelay sends text/plain and text/html content",
                    ));
                }
            };
            if slot.is_some() {
                return Err(ApiError::invalid_field(
                    &format!("content[{i}].type"),
                    "invalid_value",
                    format!("there is already content of type {}", c.kind),
                ));
            }
            *slot = Some(c.value);
        }
        let categories = r.categories.unwrap_or_default();
        if categories.len() > MAX_CATEGORIES {
            return Err(ApiError::invalid_field(
                "categories",
                "too_many",
                format!("at most {MAX_CATEGORIES} categories"),
            ));
        }
        let tags: Vec<Tag> = categories
            .into_iter()
            .enumerate()
            .map(|(i, value)| Tag {
                name: if i == 0 {
                    "category".to_string()
                } else {
                    format!("category_{}", i + 1)
                },
                value,
            })
            .collect();
        let mut attachments = Vec::new();
        for (i, a) in r.attachments.into_iter().flatten().enumerate() {
            let disposition = match a.disposition.as_deref() {
                None => None,
                Some("attachment") => Some(Disposition::Attachment),
                Some("inline") => Some(Disposition::Inline),
                Some(_) => {
                    return Err(ApiError::invalid_field(
                        &format!("attachments[{i}].disposition"),
                        "invalid_value",
                        "disposition is inline or attachment",
                    ));
                }
            };
            attachments.push(AttachmentInput {
                filename: a.filename,
                content: a.content,
                content_type: a.kind,
                content_id: a.content_id,
                disposition,
            });
        }
        let tracking = r.tracking_settings.as_ref().and_then(|t| {
            let opens = t.open_tracking.as_ref().and_then(|o| o.enable);
            let clicks = t.click_tracking.as_ref().and_then(|c| c.enable);
            (opens.is_some() || clicks.is_some()).then(|| TrackingInput {
                opens,
                clicks,
                ..TrackingInput::default()
            })
        });
        let subscription = r
            .tracking_settings
            .as_ref()
            .and_then(|t| t.subscription_tracking.as_ref())
            .and_then(|s| s.enable)
            .unwrap_or(false);
        let topic = r.asm.as_ref().map(|a| format!("asm-{}", a.group_id));
        let reply_to = match (r.reply_to, r.reply_to_list) {
            (Some(one), _) => Some(OneOrMany::One(one.mailbox())),
            (None, Some(list)) => {
                Some(OneOrMany::Many(list.iter().map(Address::mailbox).collect()))
            }
            (None, None) => None,
        };
        let shared = SendRequest {
            from: r.from.as_ref().map(Address::mailbox),
            reply_to,
            // A dynamic template's subject is its own.
            subject: r.subject.filter(|_| template.is_none()),
            text,
            html,
            headers: r.headers,
            attachments: (!attachments.is_empty()).then_some(attachments),
            tags: (!tags.is_empty()).then_some(TagsInput::List(tags)),
            metadata: r.custom_args.map(strings_to_map),
            unsubscribe: (subscription || topic.is_some()).then_some(true),
            topic,
            tracking,
            scheduled_at: r.send_at.map(ScheduledAt::Unix),
            ..SendRequest::default()
        };
        let sandbox = r
            .mail_settings
            .and_then(|m| m.sandbox_mode)
            .and_then(|s| s.enable)
            .unwrap_or(false);
        Ok(MailSend {
            shared,
            personalizations,
            sandbox,
            template,
            max_bytes,
        })
    }

    /// How many messages the request makes: one per personalization.
    pub fn len(&self) -> usize {
        self.personalizations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.personalizations.is_empty()
    }

    /// The edgerelay template every message is rendered from, if any.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    /// Personalization `i`'s message.
    pub fn message(&self, i: usize) -> Result<Mapped, ApiError> {
        let Some(p) = self.personalizations.get(i) else {
            return Err(ApiError::not_found(format!("no personalization {i}")));
        };
        let mut m = self.shared.clone();
        let list = |l: &Option<Vec<Address>>| {
            l.as_ref()
                .filter(|l| !l.is_empty())
                .map(|l| OneOrMany::Many(l.iter().map(Address::mailbox).collect()))
        };
        m.to = list(&p.to);
        m.cc = list(&p.cc);
        m.bcc = list(&p.bcc);
        if let Some(from) = &p.from {
            m.from = Some(from.mailbox());
        }
        if let Some(subject) = p.subject.as_ref().filter(|_| self.template.is_none()) {
            m.subject = Some(subject.clone());
        }
        if let Some(at) = p.send_at {
            m.scheduled_at = Some(ScheduledAt::Unix(at));
        }
        if let Some(headers) = &p.headers {
            let merged = m.headers.get_or_insert_with(BTreeMap::new);
            merged.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(args) = &p.custom_args {
            let merged = m.metadata.get_or_insert_with(Map::new);
            merged.extend(
                args.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
            );
        }
        if let Some(subs) = p.substitutions.as_ref().filter(|s| !s.is_empty()) {
            let field = format!("personalizations[{i}].substitutions");
            for slot in [&mut m.subject, &mut m.text, &mut m.html] {
                if let Some(text) = slot.as_mut() {
                    *text = substitute(text, subs, self.max_bytes, &field)?;
                }
            }
        }
        let template = self.template.as_ref().map(|id| TemplateRef {
            id: id.clone(),
            variables: match &p.dynamic_template_data {
                Some(Value::Object(data)) => data.clone(),
                _ => Map::new(),
            },
        });
        Ok(Mapped {
            request: m,
            template,
        })
    }
}

fn strings_to_map(args: BTreeMap<String, String>) -> Map<String, Value> {
    args.into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Replaces every substitution key in `text` with its value, one key after
/// another in key order. Refused (413) before a replacement would make the
/// text larger than `max_bytes`: a short key and a long value repeated
/// could otherwise ask for any amount of memory.
pub fn substitute(
    text: &str,
    subs: &BTreeMap<String, String>,
    max_bytes: usize,
    field: &str,
) -> Result<String, ApiError> {
    let mut out = text.to_string();
    for (key, value) in subs {
        if key.is_empty() {
            continue;
        }
        let count = out.matches(key.as_str()).count();
        if count == 0 {
            continue;
        }
        let grown = out
            .len()
            .saturating_add(count.saturating_mul(value.len().saturating_sub(key.len())));
        if grown > max_bytes {
            return Err(ApiError::too_large(
                field,
                format!("substitutions make the message larger than {max_bytes} bytes"),
            ));
        }
        out = out.replace(key.as_str(), value);
    }
    Ok(out)
}

/// An edgerelay field of personalization `i`'s message, as SendGrid names
/// it in the request.
pub fn field_name(ours: &str, personalization: Option<usize>) -> Option<String> {
    let head_end = ours.find(['[', '.']).unwrap_or(ours.len());
    let (head, rest) = ours.split_at(head_end);
    let in_personalization = |name: &str| match personalization {
        Some(i) => format!("personalizations[{i}].{name}{rest}"),
        None => format!("{name}{rest}"),
    };
    Some(match head {
        "" => return None,
        // The template's errors: its id, and its variables, which are
        // the personalization's dynamic_template_data.
        "template" => match (rest.strip_prefix(".variables"), personalization) {
            (Some(path), Some(i)) => format!("personalizations[{i}].dynamic_template_data{path}"),
            _ => "template_id".to_string(),
        },
        "from" => "from.email".to_string(),
        "to" | "cc" | "bcc" => in_personalization(head),
        "text" | "html" => "content".to_string(),
        "tags" => "categories".to_string(),
        "scheduled_at" => in_personalization("send_at"),
        "metadata" => "custom_args".to_string(),
        "tracking" => "tracking_settings".to_string(),
        "topic" | "unsubscribe" | "stream" => "asm".to_string(),
        _ => ours.to_string(),
    })
}

/// An error about personalization `i`'s message, its fields named as
/// SendGrid names them in the request and its messages saying which
/// personalization it is.
pub fn about_personalization(mut e: ApiError, i: usize) -> ApiError {
    let at = |message: &str| format!("personalizations[{i}]: {message}");
    e.field = e.field.as_deref().and_then(|f| field_name(f, Some(i)));
    e.message = at(&e.message);
    for d in &mut e.details {
        d.field = field_name(&d.field, Some(i)).unwrap_or_default();
        d.message = at(&d.message);
    }
    e
}

/// edgerelay's error in SendGrid's shape: one entry per problem. SendGrid
/// answers a request it cannot take with `400`; a feature edgerelay does
/// not offer yet stays `422`.
pub fn error(e: &ApiError) -> (u16, Value) {
    let not_yet = e.details.iter().any(|d| d.rule == NOT_SUPPORTED);
    let status = match e.status {
        422 if not_yet => 422,
        422 => 400,
        other => other,
    };
    let entry = |message: &str, field: Option<&str>| {
        json!({
            "message": message,
            "field": field.filter(|f| !f.is_empty()).and_then(|f| field_name(f, None)),
            "help": null,
        })
    };
    let errors: Vec<Value> = if e.details.is_empty() {
        vec![entry(&e.message, e.field.as_deref())]
    } else {
        e.details
            .iter()
            .map(|d| entry(&d.message, Some(&d.field)))
            .collect()
    };
    (status, json!({ "errors": errors }))
}

#[cfg(test)]
mod tests;
