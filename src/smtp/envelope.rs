//! The envelope a caller hands to the session, and the checks that keep
//! its addresses from injecting commands.
//!
//! Owns: what one message needs from the session (sender, recipients, bytes,
//! whether SMTPUTF8 or 8BITMIME is required, the notifications it asks for) and the address check every
//! command line passes. Must not: judge an address beyond what could alter a
//! command: the server judges the rest, and a false refusal would bounce
//! deliverable mail.

use std::rc::Rc;

use super::dsn::DsnRequest;

/// Longest address accepted: RFC 5321 §4.5.3.1.3 limits a path to 256
/// octets including the angle brackets.
const MAX_ADDRESS_LEN: usize = 254;

/// One message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Caller's id, echoed in the transaction's outcome.
    pub id: u64,
    /// Reverse path without angle brackets; empty for the null sender (`<>`).
    pub mail_from: String,
    /// Forward paths without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The RFC 5322 message, shared with the caller (never copied: see
    /// `transparency`). Line endings are normalised and dots stuffed on the
    /// way out.
    pub data: Rc<Vec<u8>>,
    /// The message or an address needs SMTPUTF8 (RFC 6531). Non-ASCII
    /// addresses set it implicitly.
    pub needs_smtputf8: bool,
    /// The message has 8-bit content and needs 8BITMIME (RFC 6152).
    pub has_8bit: bool,
    /// The notifications to ask for, from a server that offers DSN
    /// (RFC 3461); a server without it gets no DSN parameter.
    pub dsn: Option<DsnRequest>,
}

impl Envelope {
    pub fn new(
        id: u64,
        mail_from: impl Into<String>,
        rcpt_to: Vec<String>,
        data: impl Into<Vec<u8>>,
    ) -> Self {
        Envelope {
            id,
            mail_from: mail_from.into(),
            rcpt_to,
            data: Rc::new(data.into()),
            needs_smtputf8: false,
            has_8bit: false,
            dsn: None,
        }
    }

    /// An envelope for a message the caller keeps too: `data` is shared.
    pub fn shared(
        id: u64,
        mail_from: impl Into<String>,
        rcpt_to: Vec<String>,
        data: Rc<Vec<u8>>,
    ) -> Self {
        Envelope {
            data,
            ..Envelope::new(id, mail_from, rcpt_to, Vec::new())
        }
    }

    /// Whether the session must negotiate SMTPUTF8 for this envelope.
    pub(crate) fn requires_smtputf8(&self) -> bool {
        self.needs_smtputf8
            || !self.mail_from.is_ascii()
            || self.rcpt_to.iter().any(|r| !r.is_ascii())
    }
}

/// Checks that `address` can be placed between `<` and `>` on a command
/// line without changing the command: no control characters (CR and LF
/// above all), no angle brackets, no whitespace, bounded length.
/// Deliberately not a full RFC 5321 syntax check: the server judges the
/// rest, and a false rejection here would bounce deliverable mail.
pub(crate) fn is_safe_address(address: &str) -> bool {
    address.len() <= MAX_ADDRESS_LEN
        && !address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_safety_table() {
        let table = [
            ("user@example.com", true),
            ("", true),
            ("postmaster", true),
            ("\"quoted\"@example.com", true),
            ("üser@exämple.com", true),
            ("a@b\r\nRCPT TO:<evil@x>", false),
            ("a@b\n", false),
            ("a@b\r", false),
            ("a@b\0", false),
            ("a@b\x7f", false),
            ("a@b\u{85}", false),
            ("a b@c", false),
            ("a\tb@c", false),
            ("a@b> SIZE=1", false),
            ("<a@b", false),
            ("a@b\u{2028}", false),
        ];
        for (address, safe) in table {
            assert_eq!(is_safe_address(address), safe, "{address:?}");
        }
        assert!(is_safe_address(&"a".repeat(MAX_ADDRESS_LEN)));
        assert!(!is_safe_address(&"a".repeat(MAX_ADDRESS_LEN + 1)));
    }

    #[test]
    fn non_ascii_addresses_need_smtputf8() {
        let mut envelope = Envelope::new(1, "a@b", vec!["c@d".into()], "x");
        assert!(!envelope.requires_smtputf8());
        envelope.rcpt_to.push("ü@d".into());
        assert!(envelope.requires_smtputf8());
    }
}
