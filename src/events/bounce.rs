//! What a refusal says about the address: the one rule deciding whether a
//! permanent refusal is a hard bounce (the address is bad, so mailing it
//! again only hurts the sender's reputation) or a soft one (the message was
//! refused for what it is or who sent it: policy, content, size, a full
//! mailbox), and so whether it suppresses the address.
//!
//! Owns that classification, from an SMTP reply or a DSN's status.
//! Must not: decide retries (that is `delivery::policy`), or record anything.

/// How a refusal of one recipient is classed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    /// The address is bad (no such mailbox or domain, mailbox disabled):
    /// permanent, and the address is suppressed for every stream.
    Hard,
    /// Permanent for this message, but not a verdict on the address
    /// (policy, content, size, a full mailbox, the sender's own problems).
    Soft,
    /// Not permanent (4xx), or not a refusal at all.
    Transient,
}

/// Texts that say the mailbox does not exist, for replies without an
/// enhanced code (or with the catch-all 5.0.0). Lower case.
const BAD_ADDRESS_TEXTS: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "mailbox not found",
    "mailbox does not exist",
    "address does not exist",
    "recipient does not exist",
    "user does not exist",
    "account does not exist",
    "invalid recipient",
    "recipient unknown",
    "unknown recipient",
    "mailbox is disabled",
    "account is disabled",
    "account has been disabled",
];

impl BounceClass {
    /// Classes a reply: its basic code, its enhanced status code when it
    /// has one (`5.1.1`), and its text.
    pub fn of(code: u16, enhanced: Option<&str>, text: &str) -> BounceClass {
        if !(500..600).contains(&code) {
            return BounceClass::Transient;
        }
        let parts: Vec<&str> = enhanced.map(|e| e.split('.').collect()).unwrap_or_default();
        match parts.as_slice() {
            // A 5yz reply with a 4.x.x enhanced code contradicts itself;
            // the basic code decides, and it says permanent.
            [_, "1", detail] => match *detail {
                // 5.1.7 and 5.1.8 are about the sender's address.
                "7" | "8" => BounceClass::Soft,
                _ => BounceClass::Hard,
            },
            // Mailbox disabled, not accepting messages.
            [_, "2", "1"] => BounceClass::Hard,
            [_, "0", "0"] | [] => {
                let text = text.to_ascii_lowercase();
                if BAD_ADDRESS_TEXTS.iter().any(|t| text.contains(t)) {
                    BounceClass::Hard
                } else {
                    BounceClass::Soft
                }
            }
            _ => BounceClass::Soft,
        }
    }

    /// `hard`, `soft` or `transient`, as payloads and records write it.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceClass::Hard => "hard",
            BounceClass::Soft => "soft",
            BounceClass::Transient => "transient",
        }
    }

    /// Whether the address should not be mailed again, in any stream.
    pub fn suppresses(self) -> bool {
        self == BounceClass::Hard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BounceClass::{Hard, Soft, Transient};

    #[test]
    fn refusal_table() {
        let table: &[(u16, Option<&str>, &str, BounceClass)] = &[
            (
                550,
                Some("5.1.1"),
                "The email account that you tried to reach does not exist",
                Hard,
            ),
            (550, Some("5.1.1"), "", Hard),
            (550, Some("5.1.2"), "bad destination system", Hard),
            (550, Some("5.1.10"), "null MX", Hard),
            (553, Some("5.1.3"), "bad address syntax", Hard),
            (550, Some("5.2.1"), "mailbox disabled", Hard),
            (550, Some("5.1.7"), "bad sender address", Soft),
            (553, Some("5.1.8"), "sender domain does not resolve", Soft),
            (552, Some("5.2.2"), "mailbox full", Soft),
            (552, Some("5.3.4"), "message too big", Soft),
            (550, Some("5.7.1"), "user unknown in our policy", Soft),
            (
                550,
                Some("5.7.26"),
                "unauthenticated email is not accepted (DMARC)",
                Soft,
            ),
            (554, Some("5.7.1"), "spam content rejected", Soft),
            (
                550,
                Some("5.0.0"),
                "Recipient address rejected: User unknown in local recipient table",
                Hard,
            ),
            (550, None, "No such user here", Hard),
            (
                550,
                None,
                "Requested action not taken: mailbox unavailable",
                Soft,
            ),
            (
                554,
                None,
                "Transaction failed: message content rejected",
                Soft,
            ),
            (450, Some("4.1.1"), "try again later", Transient),
            (421, None, "too busy", Transient),
            (250, Some("2.0.0"), "OK", Transient),
        ];
        for (code, enhanced, text, want) in table {
            assert_eq!(
                BounceClass::of(*code, *enhanced, text),
                *want,
                "{code} {enhanced:?} {text}"
            );
        }
    }

    #[test]
    fn only_hard_bounces_suppress() {
        assert!(Hard.suppresses());
        assert!(!Soft.suppresses());
        assert!(!Transient.suppresses());
        assert_eq!(
            [Hard, Soft, Transient].map(BounceClass::as_str),
            ["hard", "soft", "transient"]
        );
    }
}
