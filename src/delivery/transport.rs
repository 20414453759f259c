//! Upstream kinds beside SMTP: the Cloudflare Email Service `send_email`
//! binding (`send-email://BINDING`), Amazon SES v2 `SendEmail` with raw
//! content (`ses://KEY_ID:SECRET@REGION`) and Mailgun's `messages.mime`
//! (`mailgun://api:KEY@DOMAIN`). Each carries the signed message as it is
//! (raw MIME, our DKIM signatures kept).
//!
//! Owns: their URL forms, the HTTP request each one needs (SigV4 for SES,
//! basic auth and a multipart form for Mailgun), and the classification of
//! every answer like an SMTP reply: delivered (with the provider's message
//! id), throttled (backpressure, see `shaping::is_throttling`, which reads
//! the synthesised `454 4.7.0` reply as throttling), transient, permanent
//! (this message) or configuration (this upstream). Must not: perform I/O
//! or read the clock (the edge sends the request and passes the time), or
//! quote credentials in an error or a label.

pub mod common;
pub mod mailgun;
pub mod send_email;
pub mod ses;
pub mod sigv4;

use crate::inbound::providers::Provider;

pub use common::{Class, Classified, HttpAnswer, HttpRequest, class_of_status};
pub use mailgun::MailgunUpstream;
pub use ses::SesUpstream;

/// An upstream reached through an API rather than an SMTP socket.
#[derive(Clone, PartialEq, Eq)]
pub enum ApiUpstream {
    /// The Worker's `send_email` binding of this name.
    SendEmail {
        binding: String,
    },
    Ses(SesUpstream),
    Mailgun(MailgunUpstream),
}

impl std::fmt::Debug for ApiUpstream {
    // Credentials never reach a log line: only the label.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiUpstream({})", self.label())
    }
}

impl ApiUpstream {
    /// Parses an entry whose scheme is one of these kinds; `None` for any
    /// other scheme (SMTP's parser reads those).
    pub fn parse(scheme: &str, rest: &str) -> Option<Result<ApiUpstream, String>> {
        match scheme.to_ascii_lowercase().as_str() {
            "send-email" => {
                Some(send_email::parse(rest).map(|binding| ApiUpstream::SendEmail { binding }))
            }
            "ses" => Some(SesUpstream::parse(rest).map(ApiUpstream::Ses)),
            "mailgun" => Some(MailgunUpstream::parse(rest).map(ApiUpstream::Mailgun)),
            _ => None,
        }
    }

    /// The name routing rules, health records and logs use:
    /// `send-email:EMAIL`, `ses:eu-west-1`, `mailgun:mg.example.com`.
    pub fn label(&self) -> String {
        match self {
            ApiUpstream::SendEmail { binding } => format!("send-email:{binding}"),
            ApiUpstream::Ses(s) => format!("ses:{}", s.region),
            ApiUpstream::Mailgun(m) => format!("mailgun:{}", m.domain),
        }
    }

    /// The provider whose events name messages sent this way.
    pub fn provider(&self) -> Option<Provider> {
        match self {
            ApiUpstream::SendEmail { .. } => None,
            ApiUpstream::Ses(_) => Some(Provider::Ses),
            ApiUpstream::Mailgun(_) => Some(Provider::Mailgun),
        }
    }

    /// The largest message (bytes of MIME) the kind takes.
    pub fn max_message_bytes(&self) -> usize {
        match self {
            ApiUpstream::SendEmail { .. } => send_email::MAX_MESSAGE_BYTES,
            ApiUpstream::Ses(_) => ses::MAX_MESSAGE_BYTES,
            ApiUpstream::Mailgun(_) => mailgun::MAX_MESSAGE_BYTES,
        }
    }

    /// Whether the kind writes a Message-ID of its own over ours (the
    /// Email Service does), so signatures must leave it out.
    pub fn replaces_message_id(&self) -> bool {
        matches!(self, ApiUpstream::SendEmail { .. })
    }

    /// The most recipients one call takes, when the kind has a limit: SES
    /// takes 50 per message, Mailgun 1,000. The binding sends one message
    /// per recipient, so it has none. A configured `recipients_per_message`
    /// may only lower it.
    pub fn max_recipients(&self) -> Option<u32> {
        match self {
            ApiUpstream::SendEmail { .. } => None,
            ApiUpstream::Ses(_) => Some(ses::MAX_RECIPIENTS),
            ApiUpstream::Mailgun(_) => Some(mailgun::MAX_RECIPIENTS),
        }
    }
}

#[cfg(test)]
mod tests;
