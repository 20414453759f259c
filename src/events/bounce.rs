//! What a refusal says about the address: the one rule deciding whether a
//! permanent refusal is a hard bounce (the address is bad, so mailing it
//! again only hurts the sender's reputation) or a soft one (the message was
//! refused for what it is or who sent it: policy, content, size, a full
//! mailbox), and so whether it suppresses the address.
//!
//! Beside it, [`BounceCategory`] says what kind of refusal it was (invalid
//! mailbox, mailbox full, policy or reputation block, content, DNS or
//! routing, size, technical), the way the large providers report bounces, so
//! a sender can tell a list problem from a reputation problem.
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

/// What kind of refusal a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceCategory {
    /// No such mailbox, or it is disabled.
    InvalidMailbox,
    /// The mailbox is over its quota.
    MailboxFull,
    /// Refused for who sent it: blocklists, reputation, authentication
    /// (SPF, DKIM, DMARC), rate, local policy.
    PolicyBlock,
    /// Refused for what it is: spam or virus filters, content rules.
    ContentRejected,
    /// The domain does not exist or mail for it cannot be routed.
    DnsOrRouting,
    /// Too large for the receiving system.
    MessageTooLarge,
    /// Anything else: protocol, server or connection trouble.
    Technical,
}

const FULL_TEXTS: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "quota",
    "over quota",
    "insufficient storage",
];
const ROUTING_TEXTS: &[&str] = &[
    "no mx",
    "domain not found",
    "host not found",
    "unrouteable",
    "unroutable",
    "name service error",
    "domain does not exist",
    "no such domain",
];
const SIZE_TEXTS: &[&str] = &[
    "too large",
    "too big",
    "size limit",
    "exceeds the maximum size",
];
const CONTENT_TEXTS: &[&str] = &[
    "spam",
    "virus",
    "phish",
    "malware",
    "content",
    "blocked by filter",
];
/// Texts naming who sent it as the problem; checked before content texts
/// ("spamhaus" is not a content verdict).
const STRONG_POLICY_TEXTS: &[&str] = &[
    "blocklist",
    "blacklist",
    "block list",
    "black list",
    "reputation",
    "rbl",
    "spamhaus",
    "dmarc",
    "spf",
    "dkim",
];
/// Texts that say "refused by policy" without saying why; checked after
/// content texts.
const WEAK_POLICY_TEXTS: &[&str] = &[
    "policy",
    "not authorized",
    "rate limit",
    "too many",
    "blocked",
    "denied",
];

impl BounceCategory {
    /// Categorises a refusal (4xx or 5xx) from its codes and text; the
    /// enhanced code decides when it is specific, the text otherwise.
    pub fn of(code: u16, enhanced: Option<&str>, text: &str) -> BounceCategory {
        let text = text.to_ascii_lowercase();
        let has = |list: &[&str]| list.iter().any(|t| text.contains(t));
        let parts: Vec<&str> = enhanced.map(|e| e.split('.').collect()).unwrap_or_default();
        let by_code = match parts.as_slice() {
            [_, "1", "1" | "3" | "6"] | [_, "2", "1"] => Some(BounceCategory::InvalidMailbox),
            [_, "1", "2" | "10"] | [_, "4", "3" | "4"] => Some(BounceCategory::DnsOrRouting),
            [_, "2", "2"] => Some(BounceCategory::MailboxFull),
            [_, "2", "3"] | [_, "3", "4"] => Some(BounceCategory::MessageTooLarge),
            [_, "7", _] => Some(if has(CONTENT_TEXTS) && !has(STRONG_POLICY_TEXTS) {
                BounceCategory::ContentRejected
            } else {
                BounceCategory::PolicyBlock
            }),
            _ => None,
        };
        if let Some(category) = by_code {
            return category;
        }
        if code >= 500 && BAD_ADDRESS_TEXTS.iter().any(|t| text.contains(t)) {
            BounceCategory::InvalidMailbox
        } else if has(FULL_TEXTS) {
            BounceCategory::MailboxFull
        } else if has(ROUTING_TEXTS) {
            BounceCategory::DnsOrRouting
        } else if has(SIZE_TEXTS) {
            BounceCategory::MessageTooLarge
        } else if has(STRONG_POLICY_TEXTS) {
            BounceCategory::PolicyBlock
        } else if has(CONTENT_TEXTS) {
            BounceCategory::ContentRejected
        } else if has(WEAK_POLICY_TEXTS) {
            BounceCategory::PolicyBlock
        } else {
            BounceCategory::Technical
        }
    }

    /// The stable name payloads and reports write.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceCategory::InvalidMailbox => "invalid_mailbox",
            BounceCategory::MailboxFull => "mailbox_full",
            BounceCategory::PolicyBlock => "policy_block",
            BounceCategory::ContentRejected => "content_rejected",
            BounceCategory::DnsOrRouting => "dns_or_routing",
            BounceCategory::MessageTooLarge => "message_too_large",
            BounceCategory::Technical => "technical",
        }
    }
}

/// The `bounce` field of an `email.bounced` event: its type (hard or soft)
/// and category.
pub fn bounce_field(code: u16, enhanced: Option<&str>, text: &str) -> serde_json::Value {
    serde_json::json!({
        "type": BounceClass::of(code, enhanced, text).as_str(),
        "category": BounceCategory::of(code, enhanced, text).as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use BounceClass::{Hard, Soft, Transient};

    #[test]
    fn category_table() {
        use BounceCategory::*;
        let table: &[(u16, Option<&str>, &str, BounceCategory)] = &[
            (550, Some("5.1.1"), "user unknown", InvalidMailbox),
            (550, Some("5.2.1"), "mailbox disabled", InvalidMailbox),
            (550, None, "No such user here", InvalidMailbox),
            (550, Some("5.1.2"), "bad destination system", DnsOrRouting),
            (550, Some("5.1.10"), "null MX", DnsOrRouting),
            (550, Some("5.4.4"), "unable to route", DnsOrRouting),
            (451, None, "Domain not found", DnsOrRouting),
            (552, Some("5.2.2"), "mailbox full", MailboxFull),
            (452, Some("4.2.2"), "over quota", MailboxFull),
            (552, Some("5.3.4"), "message too big", MessageTooLarge),
            (
                552,
                None,
                "Message size exceeds the maximum size",
                MessageTooLarge,
            ),
            (
                550,
                Some("5.7.1"),
                "Service unavailable; client host blocked using Spamhaus",
                PolicyBlock,
            ),
            (
                550,
                Some("5.7.26"),
                "unauthenticated email from example.com is not accepted due to DMARC",
                PolicyBlock,
            ),
            (
                554,
                Some("5.7.1"),
                "Message rejected as spam by content filter",
                ContentRejected,
            ),
            (
                550,
                Some("5.7.1"),
                "virus found in message",
                ContentRejected,
            ),
            (
                421,
                Some("4.7.0"),
                "too many connections, rate limit",
                PolicyBlock,
            ),
            (
                554,
                None,
                "Transaction failed: spam content detected",
                ContentRejected,
            ),
            (554, None, "your IP is on our blocklist", PolicyBlock),
            (451, Some("4.3.0"), "temporary server error", Technical),
            (554, Some("5.5.1"), "protocol error", Technical),
        ];
        for (code, enhanced, text, want) in table {
            assert_eq!(
                BounceCategory::of(*code, *enhanced, text),
                *want,
                "{code} {enhanced:?} {text}"
            );
        }
    }

    #[test]
    fn hard_bounces_are_bad_addresses_by_category_too() {
        let replies: &[(u16, Option<&str>, &str)] = &[
            (550, Some("5.1.1"), ""),
            (550, Some("5.1.2"), ""),
            (550, Some("5.2.1"), ""),
            (550, None, "user unknown"),
            (550, Some("5.7.1"), "user unknown in policy"),
            (552, Some("5.2.2"), "full"),
        ];
        for (code, enhanced, text) in replies {
            let hard = BounceClass::of(*code, *enhanced, text) == Hard;
            let bad_address = matches!(
                BounceCategory::of(*code, *enhanced, text),
                BounceCategory::InvalidMailbox | BounceCategory::DnsOrRouting
            );
            assert_eq!(hard, bad_address, "{code} {enhanced:?} {text}");
        }
        assert_eq!(
            bounce_field(550, Some("5.1.1"), "no such user"),
            serde_json::json!({"type": "hard", "category": "invalid_mailbox"})
        );
    }

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
