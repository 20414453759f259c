//! The smarthost providers' own event webhooks: Mailgun, SendGrid, Postmark
//! and Amazon SES (through SNS) tell edgerelay what became of a message after their relay took
//! it (delivered, bounced, complained), with their own evidence.
//!
//! Each provider's module verifies a request the provider's way and reads
//! its payload into [`ProviderEvent`]s. Every request is hostile until its
//! signature verifies; an event names edgerelay's message through the value
//! edgerelay set in the provider's custom-data header when it sent the
//! message ([`MESSAGE_ID_FIELD`]), and is only trusted for that message.
//! Owns: verification and reading. Must not: perform I/O, read settings or
//! the clock (the time is passed in), or decide what an event changes.

pub mod endpoints;
pub mod mailgun;
pub mod matching;
pub mod postmark;
pub mod sendgrid;
pub mod ses;

use crate::events::{BounceClass, EventType};
use crate::inbound::fields::is_enhanced_code;

/// The custom-data field edgerelay sets to its message id in every
/// provider's header (`X-Mailgun-Variables`, SendGrid's `X-SMTPAPI`
/// `unique_args`, Postmark's `X-PM-Metadata-edgerelay_id`, SES's
/// `X-SES-MESSAGE-TAGS`).
pub const MESSAGE_ID_FIELD: &str = "edgerelay_id";

/// How far a signed timestamp may be from now before a request is refused
/// as a replay (seconds).
pub const MAX_SIGNATURE_AGE_SECONDS: u64 = 15 * 60;

/// Which provider an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Mailgun,
    SendGrid,
    Postmark,
    /// Amazon SES, through Amazon SNS.
    Ses,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Mailgun => "mailgun",
            Provider::SendGrid => "sendgrid",
            Provider::Postmark => "postmark",
            Provider::Ses => "ses",
        }
    }
}

/// What the provider says happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEventKind {
    /// The recipient's server accepted it.
    Delivered,
    /// The provider will try again.
    Delayed,
    /// Refused for good; `class` says whether the address is bad.
    Bounced { class: BounceClass },
    /// The recipient marked it as spam.
    Complained,
    /// Anything else the provider reports (opens, clicks, ...), by its name.
    Other(String),
}

/// The reply a provider quotes, when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedReply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

/// One event from a provider, read but not yet matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub provider: Provider,
    pub kind: ProviderEventKind,
    /// edgerelay's message id from the provider's custom data, when present.
    pub message_id: Option<String>,
    pub recipient: String,
    /// The provider's own id of the message or event.
    pub provider_id: Option<String>,
    /// When it happened, Unix milliseconds, when the provider says.
    pub at_ms: Option<u64>,
    pub reply: Option<QuotedReply>,
}

impl ProviderEvent {
    /// The event of edgerelay's stream this is evidence of, if any.
    pub fn event_type(&self) -> Option<EventType> {
        match &self.kind {
            ProviderEventKind::Delivered => Some(EventType::Delivered),
            ProviderEventKind::Delayed => Some(EventType::DeliveryDelayed),
            ProviderEventKind::Bounced { .. } => Some(EventType::Bounced),
            ProviderEventKind::Complained => Some(EventType::Complained),
            ProviderEventKind::Other(_) => None,
        }
    }
}

/// Why a provider's request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No signature (or credentials) where the provider puts them.
    Unsigned,
    /// The signature does not verify.
    BadSignature,
    /// Signed too long ago (or in the future): a replay.
    Stale,
    /// The body is not the provider's format; what is wrong.
    Malformed(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Unsigned => f.write_str("the request carries no signature"),
            Refused::BadSignature => f.write_str("the signature does not verify"),
            Refused::Stale => write!(
                f,
                "the signed timestamp is more than {MAX_SIGNATURE_AGE_SECONDS} s from now"
            ),
            Refused::Malformed(why) => write!(f, "malformed event payload: {why}"),
        }
    }
}

/// Whether `signed_at` (Unix seconds) is close enough to `now`.
fn fresh(signed_at: u64, now_seconds: u64) -> Result<(), Refused> {
    if signed_at.abs_diff(now_seconds) > MAX_SIGNATURE_AGE_SECONDS {
        Err(Refused::Stale)
    } else {
        Ok(())
    }
}

/// A quoted reply from a code and a text that may start with an enhanced
/// code (`5.1.1 no such user`).
fn quoted(code: u16, enhanced: Option<&str>, text: &str) -> QuotedReply {
    let text = text.trim();
    let (found, rest) = match text.split_once(' ') {
        Some((first, rest)) if is_enhanced_code(first) => (Some(first), rest),
        _ => (None, text),
    };
    QuotedReply {
        code,
        enhanced: enhanced
            .filter(|e| is_enhanced_code(e))
            .or(found)
            .map(str::to_string),
        text: rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_replies() {
        assert_eq!(
            quoted(550, None, "5.1.1 The email account does not exist"),
            QuotedReply {
                code: 550,
                enhanced: Some("5.1.1".into()),
                text: "The email account does not exist".into()
            }
        );
        assert_eq!(
            quoted(550, Some("5.7.1"), "blocked").enhanced.as_deref(),
            Some("5.7.1")
        );
        assert_eq!(quoted(550, Some("junk"), "no").enhanced, None);
        assert!(fresh(1_000, 1_000 + MAX_SIGNATURE_AGE_SECONDS).is_ok());
        assert_eq!(
            fresh(1_000, 1_001 + MAX_SIGNATURE_AGE_SECONDS),
            Err(Refused::Stale)
        );
        assert_eq!(fresh(5_000, 1_000), Err(Refused::Stale));
    }
}
