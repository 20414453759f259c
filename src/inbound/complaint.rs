//! Complaint reports (ARF, RFC 5965): a recipient marked a message as spam
//! and their mailbox provider's feedback loop says so.
//!
//! Owns: reading a report (with mail-auth's ARF parser) into the fields that
//! can name the message and recipient. Must not: trust it; the caller
//! matches it to a message first.

use mail_auth::report::{Feedback, FeedbackType};

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

fn feedback_type_name(t: FeedbackType) -> &'static str {
    match t {
        FeedbackType::Abuse => "abuse",
        FeedbackType::AuthFailure => "auth-failure",
        FeedbackType::Fraud => "fraud",
        FeedbackType::NotSpam => "not-spam",
        FeedbackType::Virus => "virus",
        FeedbackType::Other => "other",
    }
}

pub(super) fn read(raw: &[u8]) -> Result<Complaint, Unreadable> {
    let feedback = Feedback::parse_rfc5322(raw)
        .map_err(|e| Unreadable::Malformed(format!("feedback report: {e:?}")))?;
    let included = feedback
        .message()
        .or(feedback.headers())
        .unwrap_or_default();
    let returned = fields::blocks(included, 1);
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
        feedback_type: feedback_type_name(feedback.feedback_type()).to_string(),
        original_rcpt_to: address(feedback.original_rcpt_to()),
        original_mail_from: address(feedback.original_mail_from()),
        envelope_id: feedback.original_envelope_id().map(fields::xtext_decode),
        message_id,
        feedback_id,
        user_agent: feedback.user_agent().map(str::to_string),
        reporting_mta: feedback.reporting_mta().map(str::to_string),
    })
}
