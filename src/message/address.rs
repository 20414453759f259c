//! Email addresses, domains and mailboxes that exist only when valid.
//!
//! Owns the parsing of caller-supplied addresses into [`EmailAddress`],
//! [`Domain`] and [`Mailbox`] ("parse, don't validate"): once a value of these
//! types exists it can be written into an SMTP command or a header without
//! further checks. Must not: do DNS lookups or any other I/O: "valid" means
//! syntactically valid per RFC 5321/5322 (dot-atom local parts, LDH domains,
//! IDNA A-labels), not deliverable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// RFC 5321 4.5.3.1.1.
const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2.
const MAX_DOMAIN: usize = 255;
/// RFC 1035 2.3.4.
const MAX_LABEL: usize = 63;
/// RFC 5321 4.5.3.1.3 limits a path to 256 octets including the angle brackets.
const MAX_ADDRESS: usize = 254;

/// Why an address, domain or display name was rejected.
///
/// [`AddressError::rule`] is the stable machine-readable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    Empty,
    /// CR, LF, NUL, other control characters, space, `<` or `>`: never valid
    /// in an address and the raw material of header and SMTP injection.
    ForbiddenCharacter(char),
    MissingAt,
    LocalPartEmpty,
    LocalPartTooLong(usize),
    /// `"john doe"@example.com`: valid RFC 5321 but rarely deliverable and a
    /// quoting hazard in headers, so deliberately unsupported.
    QuotedLocalPart,
    /// Leading, trailing or doubled dot, or a character outside atext.
    InvalidLocalPart(String),
    DomainEmpty,
    DomainTooLong(usize),
    LabelTooLong(String),
    /// `[192.0.2.1]`: address literals are not relayed.
    DomainLiteral,
    InvalidDomain(String),
    AddressTooLong(usize),
    /// `Name <addr` or text after the closing bracket.
    MalformedMailbox(String),
    /// Control characters in a display name.
    InvalidDisplayName(String),
}

impl AddressError {
    /// Stable rule name of this specific problem.
    pub fn rule(&self) -> &'static str {
        match self {
            AddressError::Empty => "empty",
            AddressError::ForbiddenCharacter(c) if is_injection_char(*c) => "header_injection",
            AddressError::ForbiddenCharacter(_) => "forbidden_character",
            AddressError::MissingAt => "missing_at",
            AddressError::LocalPartEmpty => "local_part_empty",
            AddressError::LocalPartTooLong(_) => "local_part_too_long",
            AddressError::QuotedLocalPart => "quoted_local_part_unsupported",
            AddressError::InvalidLocalPart(_) => "invalid_local_part",
            AddressError::DomainEmpty => "domain_empty",
            AddressError::DomainTooLong(_) => "domain_too_long",
            AddressError::LabelTooLong(_) => "label_too_long",
            AddressError::DomainLiteral => "domain_literal_unsupported",
            AddressError::InvalidDomain(_) => "invalid_domain",
            AddressError::AddressTooLong(_) => "address_too_long",
            AddressError::MalformedMailbox(_) => "malformed_mailbox",
            AddressError::InvalidDisplayName(_) => "invalid_display_name",
        }
    }

    /// Whether this error is an attempt (or accident) that would split a
    /// header or SMTP line; requests report it as `header_injection`.
    pub fn is_injection(&self) -> bool {
        matches!(self, AddressError::ForbiddenCharacter(c) if is_injection_char(*c))
    }
}

fn is_injection_char(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\0')
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Empty => write!(f, "address is empty"),
            AddressError::ForbiddenCharacter(c) => {
                write!(f, "address contains forbidden character {c:?}")
            }
            AddressError::MissingAt => write!(f, "address has no '@'"),
            AddressError::LocalPartEmpty => write!(f, "local part (before '@') is empty"),
            AddressError::LocalPartTooLong(n) => {
                write!(f, "local part is {n} octets, the limit is {MAX_LOCAL_PART}")
            }
            AddressError::QuotedLocalPart => {
                write!(f, "quoted local parts are not supported")
            }
            AddressError::InvalidLocalPart(why) => write!(f, "invalid local part: {why}"),
            AddressError::DomainEmpty => write!(f, "domain (after '@') is empty"),
            AddressError::DomainTooLong(n) => {
                write!(f, "domain is {n} octets, the limit is {MAX_DOMAIN}")
            }
            AddressError::LabelTooLong(label) => write!(
                f,
                "domain label {label:?} is longer than {MAX_LABEL} octets"
            ),
            AddressError::DomainLiteral => {
                write!(f, "address literals like [192.0.2.1] are not supported")
            }
            AddressError::InvalidDomain(why) => write!(f, "invalid domain: {why}"),
            AddressError::AddressTooLong(n) => {
                write!(f, "address is {n} octets, the limit is {MAX_ADDRESS}")
            }
            AddressError::MalformedMailbox(why) => write!(f, "malformed mailbox: {why}"),
            AddressError::InvalidDisplayName(why) => write!(f, "invalid display name: {why}"),
        }
    }
}

impl std::error::Error for AddressError {}

/// Characters rejected anywhere in an address before any structural parsing,
/// so that no later step can be tricked into emitting them.
fn check_forbidden(input: &str) -> Result<(), AddressError> {
    match input.chars().find(|&c| {
        c.is_control() || c == ' ' || c == '<' || c == '>' || c == '\u{2028}' || c == '\u{2029}'
    }) {
        Some(c) => Err(AddressError::ForbiddenCharacter(c)),
        None => Ok(()),
    }
}

/// A syntactically valid domain name in ASCII (A-label) lowercase form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain, converting Unicode labels to A-labels (punycode).
    /// Requires at least two labels: a relay has no use for bare hostnames.
    pub fn parse(input: &str) -> Result<Domain, AddressError> {
        check_forbidden(input)?;
        if input.is_empty() {
            return Err(AddressError::DomainEmpty);
        }
        if input.starts_with('[') {
            return Err(AddressError::DomainLiteral);
        }
        let ascii = if input.is_ascii() {
            input.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(input).map_err(|_| {
                AddressError::InvalidDomain(format!(
                    "{input:?} is not a valid internationalised domain"
                ))
            })?
        };
        check_ldh(&ascii)?;
        if ascii.contains("xn--") {
            // Round-trip A-labels through IDNA so that bogus punycode is refused.
            idna::domain_to_ascii_strict(&ascii).map_err(|_| {
                AddressError::InvalidDomain(format!("{ascii:?} contains an invalid A-label"))
            })?;
        }
        Ok(Domain(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_ldh(domain: &str) -> Result<(), AddressError> {
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong(domain.len()));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(AddressError::InvalidDomain(format!(
            "{domain:?} needs at least two labels"
        )));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(AddressError::InvalidDomain(format!(
                "{domain:?} has an empty label (leading, trailing or doubled dot)"
            )));
        }
        if label.len() > MAX_LABEL {
            return Err(AddressError::LabelTooLong((*label).to_string()));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(AddressError::InvalidDomain(format!(
                "label {label:?} may only contain letters, digits and hyphens"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::InvalidDomain(format!(
                "label {label:?} must not start or end with a hyphen"
            )));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AddressError::InvalidDomain(format!(
            "{domain:?} has an all-numeric top-level label (an IP address?)"
        )));
    }
    Ok(())
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid `local@domain` address: dot-atom local part (UTF-8 allowed,
/// see [`EmailAddress::requires_smtputf8`]) and an A-label [`Domain`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    local: String,
    domain: Domain,
}

/// RFC 5322 atext, plus any non-ASCII character (RFC 6531 UTF8-non-ascii).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, AddressError> {
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        check_forbidden(input)?;
        if input.starts_with('"') {
            return Err(AddressError::QuotedLocalPart);
        }
        let (local, domain) = input.rsplit_once('@').ok_or(AddressError::MissingAt)?;
        if local.is_empty() {
            return Err(AddressError::LocalPartEmpty);
        }
        if local.len() > MAX_LOCAL_PART {
            return Err(AddressError::LocalPartTooLong(local.len()));
        }
        if local.contains('"') {
            return Err(AddressError::QuotedLocalPart);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(AddressError::InvalidLocalPart(
                "dots may not lead, trail or repeat".to_string(),
            ));
        }
        if let Some(c) = local.chars().find(|&c| c != '.' && !is_atext(c)) {
            return Err(AddressError::InvalidLocalPart(format!(
                "character {c:?} needs quoting, which is not supported"
            )));
        }
        let domain = Domain::parse(domain)?;
        let total = local.len() + 1 + domain.as_str().len();
        if total > MAX_ADDRESS {
            return Err(AddressError::AddressTooLong(total));
        }
        Ok(EmailAddress {
            local: local.to_string(),
            domain,
        })
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Whether relaying this address needs the SMTPUTF8 extension (RFC 6531):
    /// true for a non-ASCII local part. Domains never need it because they
    /// are stored as A-labels.
    pub fn requires_smtputf8(&self) -> bool {
        !self.local.is_ascii()
    }

    /// Case-insensitive key for deduplicating recipients. Local parts are
    /// case-sensitive in theory but not in practice, and sending the same
    /// message twice to one mailbox is the worse failure.
    pub fn dedup_key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EmailAddress::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An address with an optional display name, as in `From:` or `To:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl Mailbox {
    /// Parses `Ada Lovelace <ada@example.com>`, `"Lovelace, Ada" <ada@example.com>`,
    /// `<ada@example.com>` or `ada@example.com`.
    pub fn parse(input: &str) -> Result<Mailbox, AddressError> {
        check_no_line_breaks(input)?;
        let input = input.trim();
        match input.rfind('<') {
            None => Ok(Mailbox {
                name: None,
                address: EmailAddress::parse(input)?,
            }),
            Some(open) => {
                let rest = &input[open + 1..];
                let Some(address) = rest.strip_suffix('>') else {
                    return Err(AddressError::MalformedMailbox(
                        "expected the address to end with '>'".to_string(),
                    ));
                };
                let name = unquote_display_name(input[..open].trim())?;
                Mailbox::new(name, EmailAddress::parse(address)?)
            }
        }
    }

    /// Builds a mailbox from separately supplied parts (the JSON object form).
    pub fn from_parts(name: Option<&str>, email: &str) -> Result<Mailbox, AddressError> {
        check_no_line_breaks(email)?;
        if let Some(name) = name {
            check_no_line_breaks(name)?;
        }
        let address = EmailAddress::parse(email.trim())?;
        Mailbox::new(name.map(|n| n.trim().to_string()), address)
    }

    fn new(name: Option<String>, address: EmailAddress) -> Result<Mailbox, AddressError> {
        let name = match name {
            Some(name) if !name.is_empty() => {
                check_display_name(&name)?;
                Some(name)
            }
            _ => None,
        };
        Ok(Mailbox { name, address })
    }

    pub fn requires_smtputf8(&self) -> bool {
        self.address.requires_smtputf8()
    }
}

/// CR, LF and NUL are refused anywhere in the caller's text, before any
/// trimming: surrounding whitespace is forgiven, line breaks never are, so a
/// request that tried to split a header is reported as such.
fn check_no_line_breaks(input: &str) -> Result<(), AddressError> {
    match input.chars().find(|&c| is_injection_char(c)) {
        Some(c) => Err(AddressError::ForbiddenCharacter(c)),
        None => Ok(()),
    }
}

/// Display names end up in headers; the composer encodes non-ASCII and
/// specials, but line breaks and other controls must never get that far.
fn check_display_name(name: &str) -> Result<(), AddressError> {
    match name
        .chars()
        .find(|c| c.is_control() || *c == '\u{2028}' || *c == '\u{2029}')
    {
        Some(c) if is_injection_char(c) => Err(AddressError::ForbiddenCharacter(c)),
        Some(c) => Err(AddressError::InvalidDisplayName(format!(
            "contains control character {c:?}"
        ))),
        None => Ok(()),
    }
}

/// Strips one level of RFC 5322 quoting from a display name.
fn unquote_display_name(raw: &str) -> Result<Option<String>, AddressError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let Some(inner) = raw.strip_prefix('"') else {
        return Ok(Some(raw.to_string()));
    };
    let Some(inner) = inner.strip_suffix('"') else {
        return Err(AddressError::MalformedMailbox(
            "display name has an unterminated quote".to_string(),
        ));
    };
    let mut name = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => name.push(escaped),
                None => {
                    return Err(AddressError::MalformedMailbox(
                        "display name ends with a lone backslash".to_string(),
                    ));
                }
            },
            _ => name.push(c),
        }
    }
    Ok(Some(name.trim().to_string()))
}

impl fmt::Display for Mailbox {
    /// Human-oriented rendering; headers are written by the composer, which
    /// applies the proper quoting and encoding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name:?} <{}>", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_addresses_in_canonical_form() {
        let long_local = "a".repeat(64);
        let long_local_address = format!("{long_local}@example.com");
        for (input, expected, smtputf8) in [
            ("ada@example.com", "ada@example.com", false),
            (
                "Ada.Lovelace@Example.COM",
                "Ada.Lovelace@example.com",
                false,
            ),
            (
                "first+tag@sub.example.co.uk",
                "first+tag@sub.example.co.uk",
                false,
            ),
            ("o'brien@example.com", "o'brien@example.com", false),
            (
                "x!#$%&*/=?^_`{|}~-@example.com",
                "x!#$%&*/=?^_`{|}~-@example.com",
                false,
            ),
            ("user@bücher.example", "user@xn--bcher-kva.example", false),
            (
                "user@xn--bcher-kva.example",
                "user@xn--bcher-kva.example",
                false,
            ),
            ("josé@example.com", "josé@example.com", true),
            ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", true),
            (
                long_local_address.as_str(),
                long_local_address.as_str(),
                false,
            ),
        ] {
            let address = EmailAddress::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(address.to_string(), expected, "{input}");
            assert_eq!(address.requires_smtputf8(), smtputf8, "{input}");
        }
    }

    #[test]
    fn rejects_invalid_addresses_with_specific_rules() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let long_domain = format!("a@{}com", "abcdefghi.".repeat(26));
        let long_address = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        for (input, rule) in [
            ("", "empty"),
            ("ada.example.com", "missing_at"),
            ("@example.com", "local_part_empty"),
            ("ada@", "domain_empty"),
            ("ada@localhost", "invalid_domain"),
            ("ada@exa_mple.com", "invalid_domain"),
            ("ada@-example.com", "invalid_domain"),
            ("ada@example-.com", "invalid_domain"),
            ("ada@example..com", "invalid_domain"),
            ("ada@example.com.", "invalid_domain"),
            ("ada@192.168.0.1", "invalid_domain"),
            ("ada@[192.168.0.1]", "domain_literal_unsupported"),
            ("ada@xn--zz-.example", "invalid_domain"),
            (".ada@example.com", "invalid_local_part"),
            ("ada.@example.com", "invalid_local_part"),
            ("a..da@example.com", "invalid_local_part"),
            ("a(da)@example.com", "invalid_local_part"),
            ("a,da@example.com", "invalid_local_part"),
            ("a@b@example.com", "invalid_local_part"),
            ("\"ada lovelace\"@example.com", "forbidden_character"),
            ("\"ada\"@example.com", "quoted_local_part_unsupported"),
            ("ada lovelace@example.com", "forbidden_character"),
            ("<ada@example.com>", "forbidden_character"),
            ("ada@example.com>", "forbidden_character"),
            ("ada\r\n@example.com", "header_injection"),
            ("ada@example.com\r\nBcc: x@evil.com", "header_injection"),
            ("ada\0@example.com", "header_injection"),
            ("ada\u{7}@example.com", "forbidden_character"),
            ("ada\t@example.com", "forbidden_character"),
            ("ada@exa\u{85}mple.com", "forbidden_character"),
            (long_local.as_str(), "local_part_too_long"),
            (long_label.as_str(), "label_too_long"),
            (long_domain.as_str(), "domain_too_long"),
            (long_address.as_str(), "address_too_long"),
        ] {
            match EmailAddress::parse(input) {
                Ok(address) => panic!("{input:?} was accepted as {address}"),
                Err(error) => assert_eq!(error.rule(), rule, "{input:?}: {error}"),
            }
        }
    }

    #[test]
    fn parses_mailboxes_in_every_accepted_form() {
        for (input, name, address) in [
            ("ada@example.com", None, "ada@example.com"),
            ("  ada@example.com  ", None, "ada@example.com"),
            ("<ada@example.com>", None, "ada@example.com"),
            (
                "Ada Lovelace <ada@example.com>",
                Some("Ada Lovelace"),
                "ada@example.com",
            ),
            (
                "\"Lovelace, Ada\" <ada@example.com>",
                Some("Lovelace, Ada"),
                "ada@example.com",
            ),
            (
                "\"Say \\\"hi\\\"\" <ada@example.com>",
                Some("Say \"hi\""),
                "ada@example.com",
            ),
            (
                "Zoë Ñandú <zoe@bücher.example>",
                Some("Zoë Ñandú"),
                "zoe@xn--bcher-kva.example",
            ),
            ("\"\" <ada@example.com>", None, "ada@example.com"),
        ] {
            let mailbox = Mailbox::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(mailbox.name.as_deref(), name, "{input}");
            assert_eq!(mailbox.address.to_string(), address, "{input}");
        }
    }

    #[test]
    fn rejects_malformed_mailboxes() {
        for (input, rule) in [
            ("Ada <ada@example.com", "malformed_mailbox"),
            ("Ada <ada@example.com> trailing", "malformed_mailbox"),
            ("\"Ada <ada@example.com>", "malformed_mailbox"),
            (
                "Ada\r\nBcc: evil@example.com <ada@example.com>",
                "header_injection",
            ),
            ("Ada\u{1b}[31m <ada@example.com>", "invalid_display_name"),
            ("Ada <ada@example.com\r\n>", "header_injection"),
            // Line breaks at the edges would be trimmed away; they are refused.
            ("Ada\r <ada@example.com>", "header_injection"),
            ("ada@example.com\r\n", "header_injection"),
            ("\nada@example.com", "header_injection"),
            ("ada@example.com\u{0}", "header_injection"),
            ("Ada <>", "empty"),
        ] {
            match Mailbox::parse(input) {
                Ok(mailbox) => panic!("{input:?} was accepted as {mailbox}"),
                Err(error) => assert_eq!(error.rule(), rule, "{input:?}: {error}"),
            }
        }
        let error = Mailbox::from_parts(Some("Ada\nLovelace"), "ada@example.com").unwrap_err();
        assert!(error.is_injection());
        for (name, email) in [
            (Some("Ada\r"), "ada@example.com"),
            (None, "ada@example.com\n"),
            (Some("Ada"), "\r\nada@example.com"),
        ] {
            let error = Mailbox::from_parts(name, email).unwrap_err();
            assert!(error.is_injection(), "{name:?} {email:?}: {error}");
        }
    }

    #[test]
    fn address_serde_round_trips_and_validates() {
        let address: EmailAddress = serde_json::from_str("\"ada@Example.com\"").unwrap();
        assert_eq!(
            serde_json::to_string(&address).unwrap(),
            "\"ada@example.com\""
        );
        assert!(serde_json::from_str::<EmailAddress>("\"not an address\"").is_err());
    }
}
