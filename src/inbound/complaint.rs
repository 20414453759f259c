//! Complaint reports (ARF, RFC 5965): a recipient marked a message as spam
//! and their mailbox provider's feedback loop says so.
//!
//! Owns: reading a report's fields (RFC 5965 §3.5) into the fields that
//! can name the message and recipient. Must not: trust it; the caller
//! matches it to a message first.

use mail_parser::{Message, MimeHeaders};

use super::dsn::part_text;
use super::fields;
use super::unreadable::Unreadable;

/// One complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// `abuse`, `fraud`, `virus`, `other`, `not-spam`, `auth-failure`.
    pub feedback_type: String,
    /// `Original-Rcpt-To`: the complaining recipient, when the provider
    /// says (many redact it).
    pub original_rcpt_to: Option<String>,
    /// `Original-Mail-From`: the return path of the reported message.
    pub original_mail_from: Option<String>,
    /// `Original-Envelope-Id`, when given.
    pub envelope_id: Option<String>,
    /// The reported message's Message-ID, from the returned message or
    /// headers.
    pub message_id: Option<String>,
    /// The reported message's `CFBL-Feedback-ID` (RFC 9477), from the
    /// returned message or headers: edgerelay writes the signed envelope id
    /// there, so a complaint names its message even where the return path
    /// is redacted or rewritten.
    pub feedback_id: Option<String>,
    pub user_agent: Option<String>,
    pub reporting_mta: Option<String>,
}

impl Complaint {
    /// Whether this is a spam complaint. `not-spam` (a recipient moving a
    /// message out of spam) and reports about authentication or viruses
    /// are not.
    pub fn is_spam_complaint(&self) -> bool {
        matches!(self.feedback_type.as_str(), "abuse" | "fraud")
    }
}

/// The feedback types RFC 5965 and its updates register.
const FEEDBACK_TYPES: [&str; 6] = [
    "abuse",
    "auth-failure",
    "fraud",
    "not-spam",
    "other",
    "virus",
];

/// Reads the report from the parsed message: the `message/feedback-report`
/// part's fields, and the returned message (`message/rfc822`) or its
/// headers (`text/rfc822-headers`) for the ids edgerelay wrote.
pub(super) fn read(message: &Message<'_>) -> Result<Complaint, Unreadable> {
    let part_of =
        |kind: &str, sub: &str| message.parts.iter().find(|p| p.is_content_type(kind, sub));
    let report = part_of("message", "feedback-report")
        .and_then(|p| part_text(&p.body))
        .ok_or_else(|| Unreadable::Malformed("the feedback-report part is empty".into()))?;
    let report = fields::blocks(&report, 1)
        .into_iter()
        .next()
        .unwrap_or_default();
    let field = |name: &str| fields::get(&report, name);
    let feedback_type = field("Feedback-Type")
        .map(|t| t.trim().to_ascii_lowercase())
        .and_then(|t| FEEDBACK_TYPES.iter().find(|known| **known == t))
        .ok_or_else(|| {
            Unreadable::Malformed("the feedback report has no known Feedback-Type".into())
        })?;
    let included = part_of("message", "rfc822")
        .or_else(|| part_of("text", "rfc822-headers"))
        .and_then(|p| part_text(&p.body))
        .unwrap_or_default();
    let returned = fields::blocks(&included, 1);
    let returned_header = |name: &str| returned.first().and_then(|b| fields::get(b, name));
    let feedback_id = returned_header("CFBL-Feedback-ID")
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty());
    let message_id = returned_header("Message-ID").map(|id| {
        id.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    });
    let address = |v: Option<&str>| {
        v.map(|a| fields::typed_address(a, false))
            .filter(|a| !a.is_empty())
    };
    Ok(Complaint {
        feedback_type: (*feedback_type).to_string(),
        original_rcpt_to: address(field("Original-Rcpt-To")),
        original_mail_from: address(field("Original-Mail-From")),
        envelope_id: field("Original-Envelope-Id").map(fields::xtext_decode),
        message_id,
        feedback_id,
        user_agent: field("User-Agent").map(str::to_string),
        reporting_mta: field("Reporting-MTA").map(|m| {
            m.strip_prefix("dns;")
                .map(str::trim)
                .unwrap_or(m)
                .to_string()
        }),
    })
}
