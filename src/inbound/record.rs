//! The record kept of everything that comes back (`inbound_reports`): what
//! it was, what it changed or why it changed nothing, and whose it is.
//!
//! Nothing that arrives is dropped without a trace: a report that matched
//! records the events it produced; one that did not is kept (its raw bytes
//! in the bucket) with the reason; mail that is not a report records that
//! it was rejected or forwarded. Whose a record is decides who sees it: the
//! matched message's tenant, or, when nothing matched, the keys that may
//! send as the sender domain it came back for.
//! Owns: the record's values and names. Must not: perform I/O or decide
//! whether a report is trusted (`matching`).

use super::matching::Naming;

/// Where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Mail to the worker (the email handler).
    Email,
    /// A smarthost provider's event webhook.
    Provider(super::providers::Provider),
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Provider(p) => p.as_str(),
        }
    }
}

/// What it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dsn,
    Arf,
    ProviderEvent,
    /// Meant as a report, but could not be read (malformed, too large).
    Unreadable,
    /// Mail that is not a report.
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dsn => "dsn",
            Kind::Arf => "arf",
            Kind::ProviderEvent => "provider_event",
            Kind::Unreadable => "unreadable",
            Kind::Other => "other",
        }
    }
}

/// What became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It changed what it says (events, states, suppressions).
    Applied,
    /// It matched, but everything it says was already known.
    Duplicate,
    /// Kept, changing nothing: see the reason.
    Unmatched,
    /// Kept, unread: see the reason.
    Unreadable,
    /// Refused at the door (too large to read, or mail that is not a report
    /// with nowhere to forward it).
    Rejected,
    /// Not a report: forwarded to `INBOUND_FORWARD_TO`.
    Forwarded,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Applied,
        Outcome::Duplicate,
        Outcome::Unmatched,
        Outcome::Unreadable,
        Outcome::Rejected,
        Outcome::Forwarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Unmatched => "unmatched",
            Outcome::Unreadable => "unreadable",
            Outcome::Rejected => "rejected",
            Outcome::Forwarded => "forwarded",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One row of `inbound_reports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    /// `rpt_` and 32 hex digits.
    pub id: String,
    pub received_at_ms: u64,
    pub channel: Channel,
    pub kind: Kind,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The matched message's tenant (or a provider endpoint's).
    pub tenant: Option<String>,
    /// The sender domain it came back for (mail only).
    pub domain: Option<String>,
    /// The message it names, signed or not.
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    /// The `email.*` types it produced.
    pub events: Vec<String>,
    pub mail_from: Option<String>,
    pub rcpt_to: Option<String>,
    pub subject: Option<String>,
    pub size: u64,
    /// Where its raw bytes are kept, when they are.
    pub body_key: Option<String>,
}

/// A record id from 16 random bytes.
pub fn record_id(entropy: &[u8; 16]) -> String {
    let mut id = String::with_capacity(36);
    id.push_str("rpt_");
    for b in entropy {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Whether `id` has the form of a record id (before it is looked up).
pub fn is_record_id(id: &str) -> bool {
    id.len() == 36
        && id.starts_with("rpt_")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The bucket key a kept report's raw bytes are stored under.
pub fn body_key(id: &str) -> String {
    format!("inbound/{id}.eml")
}

/// The naming to look a report up by: the first signed one, else the first
/// (which is then judged unmatched, with its reason, without a lookup).
pub fn naming_to_follow(namings: &[Naming]) -> Option<&Naming> {
    namings
        .iter()
        .find(|n| n.is_signed())
        .or_else(|| namings.first())
}

/// The domain part of an envelope address, lower-cased; `None` without one.
pub fn domain_of(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty() && d.len() <= 255)
}

/// A header value as kept in a record: one line, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::return_path::ReturnPathClaim;

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("Applied"), None);
        assert_eq!(
            Channel::Provider(crate::inbound::providers::Provider::Ses).as_str(),
            "ses"
        );
    }

    #[test]
    fn ids_and_keys() {
        let id = record_id(&[0xab; 16]);
        assert!(is_record_id(&id), "{id}");
        assert_eq!(body_key(&id), format!("inbound/{id}.eml"));
        for bad in [
            "",
            "rpt_",
            "evt_abababababababababababababababab",
            &id.to_uppercase(),
        ] {
            assert!(!is_record_id(bad), "{bad}");
        }
        assert!(!is_record_id(&format!("{}/../x", &id[..32])));
    }

    #[test]
    fn a_signed_naming_is_followed_first() {
        let signed = Naming::ReturnPath(ReturnPathClaim {
            message_id: "b".into(),
            recipient_index: 0,
        });
        let names = vec![Naming::Unsigned("a".into()), signed.clone()];
        assert_eq!(naming_to_follow(&names), Some(&signed));
        let unsigned = vec![Naming::Unsigned("a".into())];
        assert_eq!(naming_to_follow(&unsigned), unsigned.first());
        assert_eq!(naming_to_follow(&[]), None);
    }

    #[test]
    fn domains_and_lines() {
        assert_eq!(
            domain_of("<B+x@RP.Example.com>").as_deref(),
            Some("rp.example.com")
        );
        assert_eq!(domain_of("postmaster"), None);
        assert_eq!(domain_of("a@"), None);
        assert_eq!(one_line("Hi\r\nBcc: x", 100), "Hi  Bcc: x");
        assert_eq!(one_line("abcdef", 3), "abc");
    }
}
