//! Mail that comes back: delivery status notifications (RFC 3464) and
//! complaint reports (ARF, RFC 5965), read from the raw message into plain
//! values that say what happened to which recipient of which message.
//!
//! Everything here is hostile input (anyone can mail a fake bounce): this
//! module only reads, bounded in size and in count, and never decides what a
//! report is worth; whether it matches a message edgerelay sent, and what it
//! changes, is decided elsewhere from its signed tokens and ids.
//! Owns: the parsing and the reading of fields. Must not: perform I/O, trust
//! a report, or touch records.

/// A report fixture from `tests/fixtures/reports/` (each names its source),
/// for the tests of this module and its children.
#[cfg(test)]
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/reports/",
            $name
        ))
        .as_slice()
    };
}

pub mod complaint;
pub mod dsn;
pub mod envelope_id;
mod fields;
pub mod matching;
pub mod providers;
pub mod record;
pub mod return_path;
pub mod settings;
mod unreadable;

pub use complaint::Complaint;
pub use dsn::{Action, DeliveryReport, RecipientReport};
pub use settings::InboundSettings;
pub use unreadable::{MAX_REPORT_BYTES, MAX_REPORT_RECIPIENTS, Unreadable};

use mail_parser::{MessageParser, MimeHeaders};

/// What an inbound message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A delivery status notification.
    Delivery(DeliveryReport),
    /// A complaint (abuse) report from a feedback loop.
    Complaint(Complaint),
}

impl Report {
    /// Reads `raw` as a DSN or an ARF report.
    pub fn parse(raw: &[u8]) -> Result<Report, Unreadable> {
        if raw.len() > MAX_REPORT_BYTES {
            return Err(Unreadable::TooLarge {
                size: raw.len(),
                limit: MAX_REPORT_BYTES,
            });
        }
        let message = MessageParser::new().parse(raw).ok_or(Unreadable::NotMime)?;
        if message.parts.iter().any(|p| {
            p.is_content_type("message", "delivery-status")
                || p.is_content_type("message", "global-delivery-status")
        }) {
            return dsn::read(&message).map(Report::Delivery);
        }
        if message
            .parts
            .iter()
            .any(|p| p.is_content_type("message", "feedback-report"))
        {
            return complaint::read(&message).map(Report::Complaint);
        }
        let content_type = message
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "text/plain".into());
        Err(Unreadable::NotAReport(content_type))
    }
}

#[cfg(test)]
mod tests;
