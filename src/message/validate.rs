//! Validation of a [`SendRequest`] into a [`Message`].
//!
//! Owns the content rules (addresses, header names and values, attachment
//! metadata, sizes and counts) and the [`Message`] type, which only this
//! module can construct: holding a `Message` means every rule passed. It
//! reports *every* problem at once so clients can fix a request in one round
//! trip. Must not: render MIME or touch the network.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Map, Value};

use super::address::{AddressError, EmailAddress, Mailbox};
use super::error::{FieldError, RULE_TOO_LARGE, ValidationErrors};
use super::request::{
    AttachmentInput, Disposition, MailboxInput, OneOrMany, SendRequest, Tag, TagsInput,
};
use super::tracking::{self, Tracking};

/// Size and count limits applied during validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Across to, cc and bcc, counted before deduplication.
    pub max_recipients: usize,
    /// Estimated size of the composed message (bodies, base64 attachments, headers).
    pub max_message_bytes: usize,
    /// RFC 5322 line limit; longer subjects are folded, but nobody reads them.
    pub max_subject_bytes: usize,
    pub max_custom_headers: usize,
    pub max_header_value_bytes: usize,
    pub max_attachments: usize,
    pub max_tags: usize,
    /// Serialised size of the `metadata` object, which rides along with the
    /// message in queue messages and event records.
    pub max_metadata_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_recipients: 50,
            max_message_bytes: 10 * 1024 * 1024,
            max_subject_bytes: 998,
            max_custom_headers: 20,
            max_header_value_bytes: 998,
            max_attachments: 50,
            max_tags: 20,
            max_metadata_bytes: 4096,
        }
    }
}

/// Header fields the relay writes itself (or that only transport may add);
/// a caller setting them could spoof, duplicate or break the message.
const FORBIDDEN_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "date",
    "message-id",
    "subject",
    "dkim-signature",
    "return-path",
    "received",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "sender",
    "reply-to",
    "authentication-results",
    "received-spf",
    // The smarthost providers' custom-data headers: edgerelay writes its
    // own at delivery (see `delivery::provider_header`), and a caller's
    // would name another message in the provider's events.
    "x-smtpapi",
    "x-mailgun-variables",
    "x-pm-metadata-edgerelay_id",
    "x-ses-message-tags",
];

/// Prefixes of header families the caller may not set: `Content-*` belongs
/// to the MIME the relay builds, `Resent-*` to resending agents, and `ARC-*`
/// (like Authentication-Results) to receiving systems' verdicts, which a
/// sender must never be able to forge.
const FORBIDDEN_HEADER_PREFIXES: &[&str] = &["content-", "resent-", "arc-"];

fn is_forbidden_header(lower: &str) -> bool {
    FORBIDDEN_HEADERS.contains(&lower)
        || FORBIDDEN_HEADER_PREFIXES
            .iter()
            .any(|p| lower.starts_with(p))
}

/// A caller-supplied header that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

/// A decoded attachment that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: Option<String>,
    pub content: Vec<u8>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub disposition: Disposition,
}

/// A fully validated message, ready to compose.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply_to: Vec<Mailbox>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    headers: Vec<CustomHeader>,
    attachments: Vec<Attachment>,
    tags: Vec<Tag>,
    metadata: Option<Map<String, Value>>,
    stream: Option<String>,
    topic: Option<String>,
    unsubscribe: Option<bool>,
    notify_delivery: bool,
    tracking: Option<Tracking>,
}

impl Message {
    pub fn from(&self) -> &Mailbox {
        &self.from
    }
    pub fn to(&self) -> &[Mailbox] {
        &self.to
    }
    pub fn cc(&self) -> &[Mailbox] {
        &self.cc
    }
    /// Bcc recipients: envelope only, never written into the message.
    pub fn bcc(&self) -> &[Mailbox] {
        &self.bcc
    }
    pub fn reply_to(&self) -> &[Mailbox] {
        &self.reply_to
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
    pub fn html(&self) -> Option<&str> {
        self.html.as_deref()
    }
    pub fn headers(&self) -> &[CustomHeader] {
        &self.headers
    }
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_ref()
    }
    /// The stream named in the request (a valid name; whether the key has
    /// it is for the sender's settings to say).
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }
    /// `unsubscribe` as the request gave it.
    pub fn unsubscribe(&self) -> Option<bool> {
        self.unsubscribe
    }
    /// Whether the sender asked for proof of delivery
    /// (`"notify": {"delivery": true}`).
    pub fn notify_delivery(&self) -> bool {
        self.notify_delivery
    }

    /// The open and click tracking asked for (`None`: not tracked).
    pub fn tracking(&self) -> Option<&Tracking> {
        self.tracking.as_ref()
    }

    /// MAIL FROM address.
    pub fn envelope_from(&self) -> &EmailAddress {
        &self.from.address
    }

    /// RCPT TO addresses: to, cc and bcc in that order, each mailbox once.
    pub fn recipients(&self) -> Vec<&EmailAddress> {
        let mut seen = HashSet::new();
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|mailbox| &mailbox.address)
            .filter(|address| seen.insert(address.dedup_key()))
            .collect()
    }

    /// Whether SMTPUTF8 is needed: any envelope or header address with a
    /// non-ASCII local part.
    pub fn requires_smtputf8(&self) -> bool {
        std::iter::once(&self.from)
            .chain(&self.to)
            .chain(&self.cc)
            .chain(&self.bcc)
            .chain(&self.reply_to)
            .any(Mailbox::requires_smtputf8)
    }
}

impl SendRequest {
    /// Applies every content rule; returns all problems found.
    pub fn validate(&self, limits: &Limits) -> Result<Message, ValidationErrors> {
        let mut errors = Vec::new();

        let from = match &self.from {
            Some(input) => mailbox(input, "from", &mut errors),
            None => {
                errors.push(FieldError::new("from", "required", "from is required"));
                None
            }
        };
        let to = mailboxes(self.to.as_ref(), "to", &mut errors);
        let cc = mailboxes(self.cc.as_ref(), "cc", &mut errors);
        let bcc = mailboxes(self.bcc.as_ref(), "bcc", &mut errors);
        let reply_to = mailboxes(self.reply_to.as_ref(), "reply_to", &mut errors);
        let recipient_count = [&self.to, &self.cc, &self.bcc]
            .iter()
            .map(|field| field.as_ref().map_or(0, OneOrMany::len))
            .sum::<usize>();
        if recipient_count == 0 {
            errors.push(FieldError::new(
                "to",
                "required",
                "at least one recipient is required in to, cc or bcc",
            ));
        } else if recipient_count > limits.max_recipients {
            errors.push(FieldError::new(
                "to",
                "too_many_recipients",
                format!(
                    "{recipient_count} recipients across to, cc and bcc; the limit is {}",
                    limits.max_recipients
                ),
            ));
        }

        let subject = match &self.subject {
            Some(subject) => {
                check_header_text("subject", subject, limits.max_subject_bytes, &mut errors);
                subject.clone()
            }
            None => {
                errors.push(FieldError::new(
                    "subject",
                    "required",
                    "subject is required",
                ));
                String::new()
            }
        };

        if self.text.is_none() && self.html.is_none() {
            errors.push(FieldError::new(
                "text",
                "required",
                "a text or html body (or both) is required",
            ));
        }

        let headers = custom_headers(self, limits, &mut errors);
        let attachments = attachments(
            self.attachments.as_deref().unwrap_or_default(),
            limits,
            &mut errors,
        );
        let tags = tags(self.tags.as_ref(), limits, &mut errors);
        for (field, value) in [("stream", &self.stream), ("topic", &self.topic)] {
            if let Some(name) = value
                && !is_stream_name(name)
            {
                errors.push(FieldError::new(
                    field,
                    if field == "stream" {
                        "invalid_stream"
                    } else {
                        "invalid_topic"
                    },
                    format!(
                        "{field} names are 1-64 lower-case ASCII letters, digits, '_' or '-', starting with a letter or digit"
                    ),
                ));
            }
        }
        if let Some(metadata) = &self.metadata {
            let size = serde_json::to_string(metadata).map_or(usize::MAX, |s| s.len());
            if size > limits.max_metadata_bytes {
                errors.push(FieldError::new(
                    "metadata",
                    "too_long",
                    format!(
                        "is {size} bytes as JSON; the limit is {}",
                        limits.max_metadata_bytes
                    ),
                ));
            }
        }

        let estimated_size = self.subject.as_ref().map_or(0, String::len)
            + self.text.as_ref().map_or(0, String::len)
            + self.html.as_ref().map_or(0, String::len)
            + headers
                .iter()
                .map(|h| h.name.len() + h.value.len() + 4)
                .sum::<usize>()
            + self
                .attachments
                .iter()
                .flatten()
                .map(|a| a.content.len())
                .sum::<usize>();
        if estimated_size > limits.max_message_bytes {
            errors.push(FieldError::new(
                "",
                RULE_TOO_LARGE,
                format!(
                    "message is about {estimated_size} bytes; the limit is {}",
                    limits.max_message_bytes
                ),
            ));
        }

        let tracking = {
            let mut seen = HashSet::new();
            let recipients: Vec<&EmailAddress> = to
                .iter()
                .chain(&cc)
                .chain(&bcc)
                .map(|m| &m.address)
                .filter(|a| seen.insert(a.dedup_key()))
                .collect();
            tracking::validate(self.tracking.as_ref(), &recipients, &mut errors)
        };

        match from {
            Some(from) if errors.is_empty() => Ok(Message {
                from,
                to,
                cc,
                bcc,
                reply_to,
                subject,
                text: self.text.clone(),
                html: self.html.clone(),
                headers,
                attachments,
                tags,
                metadata: self.metadata.clone(),
                stream: self.stream.clone(),
                topic: self.topic.clone(),
                unsubscribe: self.unsubscribe,
                notify_delivery: self
                    .notify
                    .as_ref()
                    .and_then(|n| n.delivery)
                    .unwrap_or(false),
                tracking,
            }),
            _ => Err(ValidationErrors { errors }),
        }
    }
}

fn address_error(path: &str, error: &AddressError) -> FieldError {
    let rule = if error.is_injection() {
        "header_injection"
    } else {
        "invalid_address"
    };
    FieldError::new(path, rule, format!("{error} ({})", error.rule()))
}

fn mailbox(input: &MailboxInput, path: &str, errors: &mut Vec<FieldError>) -> Option<Mailbox> {
    let parsed = match input {
        MailboxInput::Text(text) => Mailbox::parse(text),
        MailboxInput::Object(object) => Mailbox::from_parts(object.name.as_deref(), &object.email),
    };
    parsed
        .map_err(|e| errors.push(address_error(path, &e)))
        .ok()
}

fn mailboxes(
    input: Option<&OneOrMany<MailboxInput>>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<Mailbox> {
    input
        .map(|list| list.with_paths(field))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, item)| mailbox(item, &path, errors))
        .collect()
}

/// Rules shared by subject and custom header values: no line breaks or NUL
/// (they would end the header early), no other controls except tab.
fn check_header_text(path: &str, value: &str, max_bytes: usize, errors: &mut Vec<FieldError>) {
    if value.contains(['\r', '\n', '\0']) {
        errors.push(FieldError::new(
            path,
            "header_injection",
            "must not contain CR, LF or NUL",
        ));
    } else if value.chars().any(|c| c.is_control() && c != '\t') {
        errors.push(FieldError::new(
            path,
            "invalid_characters",
            "must not contain control characters",
        ));
    }
    if value.len() > max_bytes {
        errors.push(FieldError::new(
            path,
            "too_long",
            format!("is {} bytes; the limit is {max_bytes}", value.len()),
        ));
    }
}

/// A stream or topic name: it becomes part of a suppression's scope
/// (`stream:<name>`, `topic:<name>`) and of a page, so it is kept plain.
pub fn is_stream_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// RFC 5322 field name: printable ASCII except colon (space excluded too).
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 76
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn custom_headers(
    request: &SendRequest,
    limits: &Limits,
    errors: &mut Vec<FieldError>,
) -> Vec<CustomHeader> {
    let Some(input) = &request.headers else {
        return Vec::new();
    };
    if input.len() > limits.max_custom_headers {
        errors.push(FieldError::new(
            "headers",
            "too_many_headers",
            format!(
                "{} custom headers; the limit is {}",
                input.len(),
                limits.max_custom_headers
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut headers = Vec::new();
    for (name, value) in input {
        let path = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if name.contains(['\r', '\n', '\0']) {
            errors.push(FieldError::new(
                path,
                "header_injection",
                "header name must not contain CR, LF or NUL",
            ));
            continue;
        }
        if !is_field_name(name) {
            errors.push(FieldError::new(
                path,
                "invalid_header_name",
                "header names are 1-76 printable ASCII characters without ':' or space",
            ));
            continue;
        }
        if is_forbidden_header(&lower) {
            let hint = match lower.as_str() {
                "reply-to" => "; use the reply_to field",
                "to" | "cc" | "bcc" | "from" | "subject" => "; use the field of the same name",
                _ => "",
            };
            errors.push(FieldError::new(
                path,
                "forbidden_header",
                format!("{name} is set by the relay and cannot be overridden{hint}"),
            ));
            continue;
        }
        if !seen.insert(lower) {
            errors.push(FieldError::new(
                path,
                "duplicate_header",
                format!("{name} is given more than once (names are case-insensitive)"),
            ));
            continue;
        }
        check_header_text(&path, value, limits.max_header_value_bytes, errors);
        headers.push(CustomHeader {
            name: name.clone(),
            value: value.clone(),
        });
    }
    headers
}

/// MIME type/subtype made of RFC 2045 token characters. Multipart and message
/// types are refused: their body would be read as structure, not content.
fn is_content_type(value: &str) -> bool {
    let is_token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match value.split_once('/') {
        Some((kind, subtype)) => {
            is_token(kind)
                && is_token(subtype)
                && !kind.eq_ignore_ascii_case("multipart")
                && !kind.eq_ignore_ascii_case("message")
        }
        None => false,
    }
}

fn attachments(
    input: &[AttachmentInput],
    limits: &Limits,
    errors: &mut Vec<FieldError>,
) -> Vec<Attachment> {
    if input.len() > limits.max_attachments {
        errors.push(FieldError::new(
            "attachments",
            "too_many_attachments",
            format!(
                "{} attachments; the limit is {}",
                input.len(),
                limits.max_attachments
            ),
        ));
    }
    let mut content_ids = HashSet::new();
    let mut attachments = Vec::new();
    for (index, item) in input.iter().enumerate() {
        let path = |field: &str| format!("attachments[{index}].{field}");
        let before = errors.len();
        let disposition = item.disposition.unwrap_or(if item.content_id.is_some() {
            Disposition::Inline
        } else {
            Disposition::Attachment
        });

        match &item.filename {
            Some(name) if name.contains(['\r', '\n', '\0']) => errors.push(FieldError::new(
                path("filename"),
                "header_injection",
                "filename must not contain CR, LF or NUL",
            )),
            Some(name) if name.contains(['/', '\\']) => errors.push(FieldError::new(
                path("filename"),
                "invalid_filename",
                "filename must not contain path separators",
            )),
            Some(name)
                if name.trim().is_empty()
                    || name.len() > 255
                    || name.chars().any(char::is_control) =>
            {
                errors.push(FieldError::new(
                    path("filename"),
                    "invalid_filename",
                    "filename must be 1-255 bytes without control characters",
                ))
            }
            Some(_) => {}
            None if disposition == Disposition::Attachment => errors.push(FieldError::new(
                path("filename"),
                "required",
                "attachments need a filename",
            )),
            None => {}
        }

        let content_type = item
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_string());
        if !is_content_type(&content_type) {
            errors.push(FieldError::new(
                path("content_type"),
                "invalid_content_type",
                "expected a single type/subtype such as image/png (multipart and message types are not allowed)",
            ));
        }

        match &item.content_id {
            Some(id)
                if id.is_empty()
                    || id.len() > 250
                    || !id
                        .bytes()
                        .all(|b| (33..=126).contains(&b) && b != b'<' && b != b'>') =>
            {
                let rule = if id.contains(['\r', '\n', '\0']) {
                    "header_injection"
                } else {
                    "invalid_content_id"
                };
                errors.push(FieldError::new(
                    path("content_id"),
                    rule,
                    "content_id must be 1-250 printable ASCII characters without '<', '>' or spaces",
                ));
            }
            Some(id) if !content_ids.insert(id.to_ascii_lowercase()) => {
                errors.push(FieldError::new(
                    path("content_id"),
                    "duplicate_content_id",
                    format!("content_id {id:?} is used by an earlier attachment"),
                ))
            }
            Some(_) => {}
            None if disposition == Disposition::Inline => errors.push(FieldError::new(
                path("content_id"),
                "required",
                "inline attachments need a content_id to be referenced as cid:",
            )),
            None => {}
        }

        let compact: String = item
            .content
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let content = match base64::engine::general_purpose::STANDARD.decode(compact) {
            Ok(content) => content,
            Err(error) => {
                errors.push(FieldError::new(
                    path("content"),
                    "invalid_base64",
                    format!("content is not valid standard base64: {error}"),
                ));
                Vec::new()
            }
        };

        if errors.len() == before {
            attachments.push(Attachment {
                filename: item.filename.clone(),
                content,
                content_type,
                content_id: item.content_id.clone(),
                disposition,
            });
        }
    }
    attachments
}

fn tags(input: Option<&TagsInput>, limits: &Limits, errors: &mut Vec<FieldError>) -> Vec<Tag> {
    let tags: Vec<(String, Tag)> = match input {
        None => Vec::new(),
        Some(TagsInput::List(list)) => list
            .iter()
            .enumerate()
            .map(|(i, tag)| (format!("tags[{i}]"), tag.clone()))
            .collect(),
        Some(TagsInput::Map(map)) => map
            .iter()
            .map(|(name, value)| {
                (
                    format!("tags.{name}"),
                    Tag {
                        name: name.clone(),
                        value: value.clone(),
                    },
                )
            })
            .collect(),
    };
    if tags.len() > limits.max_tags {
        errors.push(FieldError::new(
            "tags",
            "too_many_tags",
            format!("{} tags; the limit is {}", tags.len(), limits.max_tags),
        ));
    }
    let mut valid = Vec::new();
    for (path, tag) in tags {
        let name_ok = !tag.name.is_empty()
            && tag.name.len() <= 256
            && tag
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            errors.push(FieldError::new(
                path,
                "invalid_tag",
                "tag names are 1-256 ASCII letters, digits, '_' or '-'",
            ));
        } else if tag.value.len() > 256 || tag.value.chars().any(char::is_control) {
            errors.push(FieldError::new(
                path,
                "invalid_tag",
                "tag values are at most 256 bytes without control characters",
            ));
        } else {
            valid.push(tag);
        }
    }
    valid
}

#[cfg(test)]
mod tests;
