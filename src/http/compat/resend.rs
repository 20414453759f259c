//! Resend's API shapes: `POST /emails`, `POST /emails/batch`,
//! `GET /emails/{id}`, and its error body `{"statusCode", "name", "message"}`.
//!
//! Owns: a Resend email request -> edgerelay's [`SendRequest`]; the batch
//! header `x-batch-validation`; the answers (`{"id"}`, `{"data", "errors"}`,
//! the `"email"` object with `last_event`); and edgerelay's errors in
//! Resend's names, with the statuses Resend's SDKs map to their own error
//! types. Must not: perform I/O, or judge a message (the accept path does).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Mapped, NOT_SUPPORTED, decode, parse_json, refuse_not_yet};
use crate::accept::error::ApiError;
use crate::accept::templates::TemplateRef;
use crate::events::EventType;
use crate::events::time::rfc3339_ms;
use crate::http::views::{EmailEventRow, MessageRow};
use crate::message::request::{AttachmentInput, MailboxInput, OneOrMany, ScheduledAt, TagsInput};
use crate::message::{SendRequest, Tag};
use crate::queue::MessageStatus;

/// Most emails in one `POST /emails/batch`, as Resend.
pub const MAX_BATCH: usize = 100;

/// An email as Resend's `POST /emails` takes it (the fields edgerelay
/// offers; [`super::NOT_YET`] names the others).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendEmail {
    from: Option<String>,
    to: Option<OneOrMany<String>>,
    cc: Option<OneOrMany<String>>,
    bcc: Option<OneOrMany<String>>,
    reply_to: Option<OneOrMany<String>>,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    attachments: Option<Vec<ResendAttachment>>,
    tags: Option<Vec<Tag>>,
    /// ISO 8601 with an offset, or a relative time (`in 1 hour`).
    scheduled_at: Option<String>,
    // Refused by `refuse_not_yet` before decoding when set.
    /// `{id, variables}`: a stored template, rendered into the body and,
    /// unless `subject` is given, the subject.
    template: Option<TemplateRef>,
    #[serde(default, rename = "topic_id")]
    _topic_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendAttachment {
    /// Base64 text, or the bytes as a list of numbers (the Python SDK).
    content: Option<Value>,
    filename: Option<String>,
    path: Option<String>,
    content_type: Option<String>,
    content_id: Option<String>,
}

/// `POST /emails`: the body as edgerelay's send request.
pub fn email_request(body: &[u8]) -> Result<Mapped, ApiError> {
    send_request(parse_json(body)?)
}

/// One Resend email (a body, or an item of a batch) as a send request.
pub fn send_request(value: Value) -> Result<Mapped, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid_field(
            "",
            "invalid_type",
            "an email is a JSON object",
        ));
    }
    refuse_not_yet(&value, "")?;
    let email: ResendEmail = decode(value)?;
    // Resend's own required fields, named as Resend names them. A
    // template gives the subject when the email does not.
    for (field, present) in [
        ("from", email.from.is_some()),
        ("to", email.to.is_some()),
        (
            "subject",
            email.subject.is_some() || email.template.is_some(),
        ),
    ] {
        if !present {
            return Err(ApiError::invalid_field(
                field,
                "required",
                format!("Missing `{field}` field."),
            ));
        }
    }
    let mut attachments = Vec::new();
    for (i, a) in email.attachments.into_iter().flatten().enumerate() {
        if a.path.is_some() {
            return Err(super::not_supported(&format!("attachments[{i}].path")));
        }
        let content = match a.content {
            Some(Value::String(text)) => text,
            Some(Value::Array(items)) => {
                let bytes: Option<Vec<u8>> = items
                    .iter()
                    .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect();
                let bytes = bytes.ok_or_else(|| {
                    ApiError::invalid_field(
                        &format!("attachments[{i}].content"),
                        "invalid_type",
                        "content is base64 text or a list of bytes",
                    )
                })?;
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
            _ => {
                return Err(ApiError::invalid_field(
                    &format!("attachments[{i}].content"),
                    "required",
                    "an attachment needs `content` (base64)",
                ));
            }
        };
        attachments.push(AttachmentInput {
            filename: a.filename,
            content,
            content_type: a.content_type,
            content_id: a.content_id,
            disposition: None,
        });
    }
    let mailboxes = |list: Option<OneOrMany<String>>| {
        list.map(|l| match l {
            OneOrMany::One(a) => OneOrMany::One(MailboxInput::Text(a)),
            OneOrMany::Many(v) => OneOrMany::Many(v.into_iter().map(MailboxInput::Text).collect()),
        })
    };
    let request = SendRequest {
        from: email.from.map(MailboxInput::Text),
        to: mailboxes(email.to),
        cc: mailboxes(email.cc),
        bcc: mailboxes(email.bcc),
        reply_to: mailboxes(email.reply_to),
        subject: email.subject,
        html: email.html,
        text: email.text,
        headers: email.headers,
        attachments: (!attachments.is_empty()).then_some(attachments),
        tags: email.tags.map(TagsInput::List),
        scheduled_at: email.scheduled_at.map(ScheduledAt::Text),
        ..SendRequest::default()
    };
    Ok(Mapped {
        request,
        template: email.template,
    })
}

/// `x-batch-validation`: `strict` (the default) refuses the whole batch
/// when one email is invalid; `permissive` sends the valid ones and lists
/// the others in `errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchValidation {
    Strict,
    Permissive,
}

impl BatchValidation {
    pub const HEADER: &'static str = "x-batch-validation";

    pub fn parse(header: Option<&str>) -> Result<BatchValidation, ApiError> {
        match header.map(str::trim) {
            None | Some("strict") => Ok(BatchValidation::Strict),
            Some("permissive") => Ok(BatchValidation::Permissive),
            Some(_) => Err(ApiError::invalid_field(
                Self::HEADER,
                "invalid_value",
                "x-batch-validation is `strict` or `permissive`",
            )),
        }
    }
}

/// `POST /emails/batch`: each email as a send request, or its error, in
/// order. The batch itself is refused when it is not a list of 1 to
/// [`MAX_BATCH`] emails.
pub fn batch_requests(body: &[u8]) -> Result<Vec<Result<Mapped, ApiError>>, ApiError> {
    let Value::Array(items) = parse_json(body)? else {
        return Err(ApiError::invalid_field(
            "",
            "invalid_type",
            "a batch is a JSON list of emails",
        ));
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "",
            "batch_size",
            format!(
                "a batch has 1 to {MAX_BATCH} emails; this one has {}",
                items.len()
            ),
        ));
    }
    Ok(items.into_iter().map(send_request).collect())
}

/// The answer to `POST /emails`: `200 {"id"}`.
pub fn sent(id: &str) -> Value {
    json!({ "id": id })
}

/// The answer to `POST /emails/batch`: the ids of the emails sent, and in
/// permissive mode the refused ones as `{"index", "message"}`. A batch of
/// which nothing was sent is refused, as a strict one would be: a request
/// that sends nothing is not an accepted request.
pub fn batch_answer(
    outcomes: &[Result<String, ApiError>],
    mode: BatchValidation,
) -> Result<Value, ApiError> {
    if let Some((index, e)) = outcomes
        .iter()
        .enumerate()
        .find_map(|(i, o)| o.as_ref().err().map(|e| (i, e)))
        .filter(|_| outcomes.iter().all(Result::is_err))
    {
        return Err(strict_refusal(index, e));
    }
    let data: Vec<Value> = outcomes.iter().flatten().map(|id| sent(id)).collect();
    Ok(match mode {
        BatchValidation::Strict => json!({ "data": data }),
        BatchValidation::Permissive => {
            let errors: Vec<Value> = outcomes
                .iter()
                .enumerate()
                .filter_map(|(index, o)| o.as_ref().err().map(|e| (index, e)))
                .map(|(index, e)| json!({"index": index, "message": e.message}))
                .collect();
            json!({ "data": data, "errors": errors })
        }
    })
}

/// A strict batch with a refused email: the first one's error, its message
/// naming the email's index.
pub fn strict_refusal(index: usize, e: &ApiError) -> ApiError {
    let mut refused = e.clone();
    refused.message = format!("emails[{index}]: {}", e.message);
    refused
}

/// edgerelay's error as Resend names it: the status and `name` its SDKs
/// map to their own error types, and the body.
pub fn error(e: &ApiError) -> (u16, Value) {
    let (status, name) = name_of(e);
    let body = json!({"statusCode": status, "name": name, "message": e.message});
    (status, body)
}

fn name_of(e: &ApiError) -> (u16, &'static str) {
    let detail = e.details.first().map(|d| d.rule.as_str());
    match (e.status, e.rule) {
        (401, "missing_credentials") => (401, "missing_api_key"),
        (401, _) => (403, "invalid_api_key"),
        (403, "insufficient_scope") => (401, "restricted_api_key"),
        (403, _) => (403, "validation_error"),
        (404, _) => (404, "not_found"),
        (405, _) => (405, "method_not_allowed"),
        (409, "idempotency_key_reused") => (409, "invalid_idempotent_request"),
        (409, "idempotency_key_in_use") => (409, "concurrent_idempotent_requests"),
        (429, _) => (429, "rate_limit_exceeded"),
        (422, _) => match detail {
            Some("required") => (422, "missing_required_field"),
            Some("invalid_idempotency_key") => (400, "invalid_idempotency_key"),
            Some(NOT_SUPPORTED) => (422, "validation_error"),
            _ => (422, "validation_error"),
        },
        (status, _) if status >= 500 => (status, "application_error"),
        (status, _) => (status, "validation_error"),
    }
}

/// The name Resend gives the state of an email: the latest event that is
/// one of its states, else the status. A smarthost's 250 is `sent`;
/// `delivered` needs evidence of final delivery (a success DSN or the
/// provider's own event), as edgerelay's `email.delivered` does.
pub fn last_event(status: &str, events: &[EmailEventRow]) -> &'static str {
    let latest = events
        .iter()
        .filter_map(|e| Some((e.created_at, event_name(EventType::parse(&e.event_type)?)?)))
        .fold(None::<(f64, &'static str)>, |best, (at, name)| match best {
            Some((b, _)) if b > at => best,
            _ => Some((at, name)),
        });
    if let Some((_, name)) = latest {
        return name;
    }
    match MessageStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == status)
    {
        // Held while the reputation guard pauses the stream: still queued.
        Some(MessageStatus::Queued) | Some(MessageStatus::Held) | None => "queued",
        Some(MessageStatus::Deferred) => "delivery_delayed",
        // The upstream has it (or may have it, for `unknown`): sent, not
        // delivered.
        Some(MessageStatus::Delivered)
        | Some(MessageStatus::PartiallyDelivered)
        | Some(MessageStatus::Unknown) => "sent",
        Some(MessageStatus::Failed) => "failed",
        Some(MessageStatus::Suppressed) => "suppressed",
        Some(MessageStatus::Scheduled) => "scheduled",
        Some(MessageStatus::Canceled) => "canceled",
    }
}

/// An event as a Resend email state; `None` for events that are not one
/// (an unsubscribe is about the recipient, not the email).
fn event_name(t: EventType) -> Option<&'static str> {
    Some(match t {
        EventType::Sent => "sent",
        EventType::Delivered => "delivered",
        EventType::DeliveryDelayed => "delivery_delayed",
        EventType::Bounced => "bounced",
        EventType::Complained => "complained",
        EventType::Failed => "failed",
        EventType::Suppressed => "suppressed",
        EventType::Opened => "opened",
        EventType::Clicked => "clicked",
        EventType::Canceled => "canceled",
        EventType::Unsubscribed
        | EventType::StreamPaused
        | EventType::StreamResumed
        | EventType::DomainUpdated => {
            return None;
        }
    })
}

/// The answer to `PATCH /emails/{id}` and `POST /emails/{id}/cancel`.
pub fn updated(id: &str) -> Value {
    json!({"object": "email", "id": id})
}

/// `GET /emails/{id}`: the `"email"` object. The bodies are not kept in a
/// readable form, so `html` and `text` are `null`.
pub fn email_view(row: &MessageRow, events: &[EmailEventRow]) -> Value {
    let to: Value = serde_json::from_str(&row.rcpt_to).unwrap_or_else(|_| json!([]));
    let tags: Vec<Value> = row
        .tags
        .as_deref()
        .and_then(|t| serde_json::from_str::<BTreeMap<String, String>>(t).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!({
        "object": "email",
        "id": row.id,
        "to": to,
        "from": row.mail_from,
        "created_at": rfc3339_ms(row.created_at as u64),
        "subject": row.subject,
        "html": null,
        "text": null,
        "bcc": null,
        "cc": null,
        "reply_to": null,
        "last_event": last_event(&row.status, events),
        "scheduled_at": row.scheduled_at.map(|t| rfc3339_ms(t as u64 * 1000)),
        "tags": tags,
    })
}

#[cfg(test)]
mod tests;
