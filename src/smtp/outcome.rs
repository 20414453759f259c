//! How a delivery attempt ended, classified for the retry policy.
//!
//! | kind            | meaning                                           | policy              |
//! |-----------------|---------------------------------------------------|---------------------|
//! | `Delivered`     | the server accepted the message (2xx after data)  | done                |
//! | `Transient`     | 4xx, or lost/timed out before the data was sent   | retry later         |
//! | `Permanent`     | 5xx, or a message the server cannot take (SIZE,   | bounce              |
//! |                 | SMTPUTF8, 8BITMIME, a malformed address)          |                     |
//! | `Configuration` | the relay's setup with this upstream is broken:   | pause the upstream, |
//! |                 | auth rejected, STARTTLS required but missing, TLS | keep the message    |
//! |                 | failure, greeting or HELO refused with 5xx        |                     |
//! | `Unknown`       | lost or timed out after the end of the data was   | hold; may have been |
//! |                 | sent and before the reply: may have been delivered| delivered           |
//!
//! Owns: the kinds and causes, and how a negative reply is classified by where
//! it came (to a message-level command: 4xx transient, 5xx permanent; to a
//! session-level one: 5xx is configuration). Must not: decide when to retry
//! (`delivery::policy`) or which command a reply answers (the wire does).

use std::fmt;

use super::reply::{Reply, ReplyError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    Delivered,
    Transient,
    Permanent,
    Configuration,
    Unknown,
}

/// What decided an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The server's reply (kept in [`Outcome::reply`]).
    Reply,
    /// The server did not answer in time.
    Timeout,
    /// The server stopped reading: a write did not finish in time.
    WriteTimeout,
    /// The connection closed while a reply was awaited.
    ConnectionLost,
    /// The server closed the connection right after refusing a message
    /// (5xx), as servers that drop a sender do: about that message, not
    /// the server's health.
    DroppedAfterRefusal,
    /// The driver could not connect.
    ConnectFailed(String),
    /// The TLS handshake failed.
    TlsFailed(String),
    /// The server sent bytes that are not a valid reply.
    Protocol(ReplyError),
    /// A well-formed reply that makes no sense at this point (e.g. 250 to
    /// DATA); the conversation cannot continue safely.
    UnexpectedReply,
    /// STARTTLS is configured but the server did not offer it.
    StartTlsNotOffered,
    /// Credentials are configured but the server offers no mechanism that
    /// can use them.
    AuthNotOffered,
    /// The configured EHLO name cannot be sent as a command argument.
    InvalidEhloName,
    /// The message is larger than the server's SIZE limit.
    SizeExceeded { size: u64, limit: u64 },
    /// The envelope needs SMTPUTF8 and the server lacks it.
    Smtputf8NotOffered,
    /// The message has 8-bit content and the server lacks 8BITMIME.
    EightBitMimeNotOffered,
    /// An address that must never reach the wire (control characters,
    /// angle brackets, spaces, too long, empty recipient).
    InvalidAddress(String),
    /// The envelope has no recipients.
    NoRecipients,
    /// The server deferred this recipient with 452 and a follow-up
    /// transaction made no progress; retry in a later session.
    TooManyRecipients,
    /// The envelope was handed over after the session had ended.
    SessionClosed,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Reply => f.write_str("server reply"),
            Cause::Timeout => f.write_str("timed out waiting for the server"),
            Cause::WriteTimeout => f.write_str("timed out writing to the server"),
            Cause::ConnectionLost => f.write_str("connection lost"),
            Cause::DroppedAfterRefusal => {
                f.write_str("connection closed by the server after it refused a message")
            }
            Cause::ConnectFailed(reason) => write!(f, "connect failed: {reason}"),
            Cause::TlsFailed(reason) => write!(f, "TLS failed: {reason}"),
            Cause::Protocol(error) => write!(f, "protocol error: {error}"),
            Cause::UnexpectedReply => f.write_str("unexpected reply"),
            Cause::StartTlsNotOffered => {
                f.write_str("STARTTLS required but not offered by the server")
            }
            Cause::AuthNotOffered => {
                f.write_str("no usable AUTH mechanism offered for the configured credentials")
            }
            Cause::InvalidEhloName => f.write_str("configured EHLO name is not a valid argument"),
            Cause::SizeExceeded { size, limit } => {
                write!(
                    f,
                    "message size {size} exceeds the server's limit of {limit}"
                )
            }
            Cause::Smtputf8NotOffered => {
                f.write_str("message needs SMTPUTF8, which the server does not offer")
            }
            Cause::EightBitMimeNotOffered => {
                f.write_str("message has 8-bit content and the server does not offer 8BITMIME")
            }
            Cause::InvalidAddress(address) => write!(f, "invalid address {address:?}"),
            Cause::NoRecipients => f.write_str("no recipients"),
            Cause::TooManyRecipients => {
                f.write_str("too many recipients for one session; retry later")
            }
            Cause::SessionClosed => f.write_str("session already closed"),
        }
    }
}

/// One classified result, for a whole transaction or for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub cause: Cause,
    /// The reply that decided it, when there was one.
    pub reply: Option<Reply>,
}

impl Outcome {
    pub(crate) fn new(kind: OutcomeKind, cause: Cause) -> Self {
        Outcome {
            kind,
            cause,
            reply: None,
        }
    }

    /// Classifies a negative reply to a message-level command: 4xx is
    /// transient, anything else permanent.
    pub(crate) fn from_reply(reply: Reply) -> Self {
        let kind = if reply.is_transient_negative() {
            OutcomeKind::Transient
        } else {
            OutcomeKind::Permanent
        };
        Outcome {
            kind,
            cause: Cause::Reply,
            reply: Some(reply),
        }
    }

    pub(crate) fn delivered(reply: Reply) -> Self {
        Outcome {
            kind: OutcomeKind::Delivered,
            cause: Cause::Reply,
            reply: Some(reply),
        }
    }

    /// Classifies a negative reply to a session-level command (greeting,
    /// HELO, STARTTLS, AUTH): 4xx is transient, 5xx says the setup is wrong.
    pub(crate) fn session_reply(reply: Reply) -> Self {
        let kind = if reply.is_transient_negative() {
            OutcomeKind::Transient
        } else {
            OutcomeKind::Configuration
        };
        Outcome {
            kind,
            cause: Cause::Reply,
            reply: Some(reply),
        }
    }

    /// A reply that has no place at this point of the conversation: the
    /// conversation cannot continue safely, so the session ends, retryably.
    pub(crate) fn unexpected(reply: Reply) -> Self {
        Outcome::new(OutcomeKind::Transient, Cause::UnexpectedReply).with_reply(reply)
    }

    pub(crate) fn with_reply(mut self, reply: Reply) -> Self {
        self.reply = Some(reply);
        self
    }

    pub fn is_delivered(&self) -> bool {
        self.kind == OutcomeKind::Delivered
    }

    /// Safe to retry: the server did not take the message.
    pub fn is_transient(&self) -> bool {
        self.kind == OutcomeKind::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == OutcomeKind::Permanent
    }

    /// The upstream setup is broken; not the message's fault.
    pub fn is_configuration(&self) -> bool {
        self.kind == OutcomeKind::Configuration
    }

    /// The message may or may not have been delivered.
    pub fn is_unknown(&self) -> bool {
        self.kind == OutcomeKind::Unknown
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: ", self.kind)?;
        match &self.reply {
            Some(reply) if self.cause == Cause::Reply => write!(f, "{reply}"),
            Some(reply) => write!(f, "{} ({reply})", self.cause),
            None => write!(f, "{}", self.cause),
        }
    }
}

/// The result for one recipient of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub address: String,
    pub outcome: Outcome,
}

/// Everything that happened to one envelope handed to
/// [`SmtpSession::send`](super::SmtpSession::send).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionOutcome {
    /// The caller's id from the envelope.
    pub id: u64,
    /// Summary: `Delivered` only when every recipient was delivered;
    /// otherwise the most pressing kind among the failed recipients, in the
    /// order Configuration, Unknown, Transient, Permanent. A partial
    /// delivery therefore reads as a failure here; `recipients` says who got
    /// the message.
    pub outcome: Outcome,
    /// One entry per recipient, in envelope order.
    pub recipients: Vec<RecipientOutcome>,
}

impl TransactionOutcome {
    /// Builds the summary from per-recipient results; `fallback` is used
    /// when the envelope had no recipients at all.
    pub(crate) fn summarise(id: u64, recipients: Vec<RecipientOutcome>, fallback: Outcome) -> Self {
        let rank = |kind: OutcomeKind| match kind {
            OutcomeKind::Configuration => 0,
            OutcomeKind::Unknown => 1,
            OutcomeKind::Transient => 2,
            OutcomeKind::Permanent => 3,
            OutcomeKind::Delivered => 4,
        };
        let outcome = recipients
            .iter()
            .map(|r| &r.outcome)
            .min_by_key(|o| rank(o.kind))
            .cloned()
            .unwrap_or(fallback);
        TransactionOutcome {
            id,
            outcome,
            recipients,
        }
    }

    /// Recipients that the server accepted the message for.
    pub fn delivered(&self) -> impl Iterator<Item = &str> {
        self.recipients
            .iter()
            .filter(|r| r.outcome.is_delivered())
            .map(|r| r.address.as_str())
    }
}
