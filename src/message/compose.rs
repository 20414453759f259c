//! Rendering a validated [`Message`] as RFC 5322 / MIME bytes.
//!
//! Owns the header set of outgoing mail (From, To, Cc, Reply-To, Subject,
//! Date, Message-ID, MIME-Version, then custom headers, then the one-click
//! unsubscribe pair when a recipient's copy has one, then the feedback loop
//! pair when the copy has one; never Bcc), the MIME
//! tree (alternative / related / mixed) and Message-ID generation. Encoding,
//! folding and transfer encodings are delegated to `mail-builder`, which keeps
//! every line within 998 octets. Must not: read the clock or a randomness
//! source: the date and the random part of the Message-ID come from the
//! caller via [`ComposeContext`] and [`new_message_id`].

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};

use super::address::{Domain, Mailbox};
use super::error::ComposeError;
use super::feedback_loop::FeedbackLoop;
use super::request::Disposition;
use super::unsubscribe::OneClick;
use super::validate::{Attachment, Message};

/// Per-message values the composer must not invent itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeContext {
    /// `left@right` without angle brackets, normally from [`new_message_id`].
    pub message_id: String,
    /// Seconds since the Unix epoch; written as the Date header in UTC.
    pub date_unix: i64,
    /// The copy's complaint feedback loop fields (RFC 9477), if it has them.
    pub feedback_loop: Option<FeedbackLoop>,
}

/// Builds a Message-ID `hex(random_bytes)@from_domain`. Pass at least 16
/// random bytes; using the From domain keeps the ID meaningful to the sender
/// and avoids leaking the relay's host name.
pub fn new_message_id(from_domain: &Domain, random_bytes: &[u8]) -> String {
    let mut id = String::with_capacity(random_bytes.len() * 2 + 1 + from_domain.as_str().len());
    for byte in random_bytes {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id.push('@');
    id.push_str(from_domain.as_str());
    id
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `id-left "@" id-right` restricted to printable ASCII without brackets or
/// whitespace, so the ID can be written verbatim between `<` and `>`.
fn is_message_id(id: &str) -> bool {
    let printable = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| (33..=126).contains(&b) && !b"<>@\"\\".contains(&b))
    };
    id.len() <= 250
        && id
            .split_once('@')
            .is_some_and(|(l, r)| printable(l) && printable(r))
}

/// Renders the message. Output uses CRLF line endings throughout and has no
/// Bcc header.
pub fn compose(message: &Message, context: &ComposeContext) -> Result<Vec<u8>, ComposeError> {
    compose_with(message, context, None)
}

/// [`compose`] for one recipient's copy with a one-click unsubscribe link:
/// `List-Unsubscribe` and `List-Unsubscribe-Post` are written after the
/// caller's headers, and `{{unsubscribe_url}}` in the bodies becomes the link.
pub fn compose_with(
    message: &Message,
    context: &ComposeContext,
    one_click: Option<&OneClick>,
) -> Result<Vec<u8>, ComposeError> {
    compose_copy(message, context, one_click, None)
}

/// [`compose_with`] with the copy's own HTML part in place of the
/// message's (its tracked links and pixel, see `events::tracking::body`).
pub fn compose_copy(
    message: &Message,
    context: &ComposeContext,
    one_click: Option<&OneClick>,
    html: Option<&str>,
) -> Result<Vec<u8>, ComposeError> {
    if !is_message_id(&context.message_id) {
        return Err(ComposeError::InvalidMessageId(context.message_id.clone()));
    }

    let mut builder = MessageBuilder::new().from(address(std::slice::from_ref(message.from())));
    if !message.to().is_empty() {
        builder = builder.to(address(message.to()));
    }
    if !message.cc().is_empty() {
        builder = builder.cc(address(message.cc()));
    }
    if !message.reply_to().is_empty() {
        builder = builder.reply_to(address(message.reply_to()));
    }
    builder = builder
        .subject(Text::new(message.subject()))
        .date(Date::new(context.date_unix))
        .message_id(MessageId::new(context.message_id.as_str()))
        .header("MIME-Version", Raw::new("1.0"));
    for header in message.headers() {
        builder = builder.header(header.name.as_str(), Text::new(header.value.as_str()));
    }
    let fields = one_click.map(OneClick::header_fields);
    for (name, value) in fields.iter().flatten() {
        // The link is plain ASCII without spaces (see `OneClick::new`):
        // written raw, it stays one unencoded line.
        builder = builder.header(*name, Raw::new(value.as_str()));
    }
    let feedback = context
        .feedback_loop
        .as_ref()
        .map(FeedbackLoop::header_fields);
    for (name, value) in feedback.iter().flatten() {
        // Plain ASCII (see `FeedbackLoop::new`): one unencoded line.
        builder = builder.header(*name, Raw::new(value.as_str()));
    }
    let text = fill(message.text(), one_click);
    let html = fill(html.or(message.html()), one_click);

    let mut output = Vec::new();
    builder
        .body(body(
            message,
            text.as_deref(),
            html.as_deref(),
            &boundary_seed(&context.message_id),
        ))
        .serialize(&mut output);
    // SMTP DATA needs the content to end in CRLF before the final dot; a
    // single-part body is written as given, so terminate it here.
    if !output.ends_with(b"\r\n") {
        output.extend_from_slice(b"\r\n");
    }
    Ok(output)
}

/// A body with the recipient's link in place of `{{unsubscribe_url}}`.
fn fill<'a>(body: Option<&'a str>, one_click: Option<&OneClick>) -> Option<Cow<'a, str>> {
    body.map(|b| match one_click {
        Some(link) => link.fill(b),
        None => Cow::Borrowed(b),
    })
}

fn address(mailboxes: &[Mailbox]) -> Address<'_> {
    let mut list: Vec<Address<'_>> = mailboxes
        .iter()
        .map(|mailbox| Address::new_address(mailbox.name.as_deref(), mailbox.address.to_string()))
        .collect();
    if list.len() == 1 {
        list.remove(0)
    } else {
        Address::new_list(list)
    }
}

/// The MIME tree:
///
/// ```text
/// mixed                       (only with attachments)
/// ├── alternative             (only with both text and html)
/// │   ├── text/plain
/// │   └── related             (only with inline parts)
/// │       ├── text/html
/// │       └── inline parts…
/// └── attachments…
/// ```
///
/// Inline parts without an HTML body to reference them go into the mixed
/// part, still marked inline.
///
/// Each multipart's boundary is `=_<kind>_<seed>`, the seed being the
/// Message-ID's left part (random per message): composing is then a pure
/// function of the message, its id and its date (mail-builder's own
/// boundaries read the clock), so a dry run and a real send with the same
/// id agree byte for byte. `=_` never occurs in quoted-printable or base64,
/// and no one knows a message's id before it is composed.
fn body<'a>(
    message: &'a Message,
    text: Option<&'a str>,
    html: Option<&'a str>,
    seed: &str,
) -> MimePart<'a> {
    let (inline, attached): (Vec<&Attachment>, Vec<&Attachment>) = message
        .attachments()
        .iter()
        .partition(|a| a.disposition == Disposition::Inline);
    let html_missing = html.is_none();

    let text = text.map(|text| MimePart::new("text/plain", text));
    let html = html.map(|html| {
        let html = MimePart::new("text/html", html);
        if inline.is_empty() {
            html
        } else {
            let mut parts = vec![html];
            parts.extend(inline.iter().map(|a| attachment_part(a)));
            multipart("related", seed, parts)
        }
    });
    let mut extra: Vec<MimePart<'_>> = Vec::new();
    if html_missing {
        extra.extend(inline.iter().map(|a| attachment_part(a)));
    }
    extra.extend(attached.iter().map(|a| attachment_part(a)));

    let core = match (text, html) {
        (Some(text), Some(html)) => multipart("alternative", seed, vec![text, html]),
        (Some(part), None) | (None, Some(part)) => part,
        // Validation guarantees a body; an empty text part keeps this total.
        (None, None) => MimePart::new("text/plain", ""),
    };
    if extra.is_empty() {
        core
    } else {
        let mut parts = vec![core];
        parts.extend(extra);
        multipart("mixed", seed, parts)
    }
}

/// The boundary seed of a message with id `message_id`: its left part's
/// letters, digits and dashes, at most 48 (a boundary has at most 70
/// characters, RFC 2046).
fn boundary_seed(message_id: &str) -> String {
    message_id
        .split_once('@')
        .map_or(message_id, |(left, _)| left)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect()
}

fn multipart<'a>(kind: &str, seed: &str, parts: Vec<MimePart<'a>>) -> MimePart<'a> {
    MimePart::new(
        ContentType::new(format!("multipart/{kind}"))
            .attribute("boundary", format!("=_{kind}_{seed}")),
        parts,
    )
}

fn attachment_part(attachment: &Attachment) -> MimePart<'_> {
    let content: BodyPart<'_> = BodyPart::Binary(Cow::Borrowed(attachment.content.as_slice()));
    let mut part = MimePart::new(ContentType::new(attachment.content_type.as_str()), content);
    let disposition = match attachment.disposition {
        Disposition::Attachment => "attachment",
        Disposition::Inline => "inline",
    };
    let mut disposition = ContentType::new(disposition);
    if let Some(filename) = &attachment.filename {
        disposition = disposition.attribute("filename", filename.as_str());
    }
    part = part.header("Content-Disposition", disposition);
    if let Some(id) = &attachment.content_id {
        part = part.cid(id.as_str());
    }
    part
}

#[cfg(test)]
mod tests;
