//! The bounds on what is read of an inbound message, and the reasons one is
//! not read as a report.
//!
//! Owns those limits and reasons. Must not: parse anything.

/// Largest report read at all; anything larger is refused before parsing.
/// A DSN returns headers only (RET=HDRS), and ARF reports carry one message:
/// real ones are a few KiB to a few hundred.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// Most recipients read from one DSN; the rest are ignored.
pub const MAX_REPORT_RECIPIENTS: usize = 1000;

/// Why an inbound message is not a report that can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Over [`MAX_REPORT_BYTES`]: refused unread.
    TooLarge { size: usize, limit: usize },
    /// Not a MIME message at all.
    NotMime,
    /// A message, but not a report (`multipart/report` with a
    /// `delivery-status` or `feedback-report` part); its content type.
    NotAReport(String),
    /// A report whose report part could not be read.
    Malformed(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::TooLarge { size, limit } => {
                write!(
                    f,
                    "the message is {size} bytes; reports over {limit} bytes are not read"
                )
            }
            Unreadable::NotMime => f.write_str("not a MIME message"),
            Unreadable::NotAReport(content_type) => {
                write!(f, "not a delivery or complaint report ({content_type})")
            }
            Unreadable::Malformed(why) => write!(f, "malformed report: {why}"),
        }
    }
}
