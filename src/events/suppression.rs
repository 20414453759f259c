//! The suppression list's rules: what an entry is (address, scope, reason,
//! origin, expiry), which entries apply to a recipient of a message of a
//! given stream and topic, and what a permanent refusal adds to the list.
//!
//! Owns: the stored names of scopes and reasons (`as_str`, `parse`), the
//! rules of stream and topic names, the address form entries are kept under
//! (trimmed, lower-cased, or hashed once erased: [`erased_address`]), when
//! an entry is active, and that only a hard
//! bounce ([`BounceClass::Hard`]: the address is bad) suppresses, for all
//! streams and without expiry; a policy or content refusal never does.
//! Must not: perform I/O or read the clock (the time is passed in), or
//! decide what a delivery does about an entry (`delivery::screen` does).

use super::bounce::BounceClass;

/// The longest stream or topic name.
pub const MAX_NAME_LEN: usize = 64;

/// Which mail an entry holds back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every message, whatever its stream or topic.
    All,
    /// Messages of this stream (`transactional` for messages sent without
    /// one, see `queue::DEFAULT_STREAM`).
    Stream(String),
    /// Messages of this topic, whatever their stream.
    Topic(String),
}

impl Scope {
    /// The stored and shown form: `all`, `stream:<name>` or `topic:<name>`.
    pub fn as_stored(&self) -> String {
        match self {
            Scope::All => "all".to_string(),
            Scope::Stream(name) => format!("stream:{name}"),
            Scope::Topic(name) => format!("topic:{name}"),
        }
    }

    /// Reads a stored or requested scope; the error says the rule broken.
    pub fn parse(text: &str) -> Result<Scope, &'static str> {
        const FORMS: &str = "must be `all`, `stream:<name>` or `topic:<name>`";
        if text == "all" {
            return Ok(Scope::All);
        }
        let (kind, name) = text.split_once(':').ok_or(FORMS)?;
        let name = checked_name(name)?.to_string();
        match kind {
            "stream" => Ok(Scope::Stream(name)),
            "topic" => Ok(Scope::Topic(name)),
            _ => Err(FORMS),
        }
    }

    /// Whether mail of `stream` (`DeliveryJob::stream`: `transactional`
    /// when the message names none) and `topic` is held back by this scope.
    pub fn covers(&self, stream: &str, topic: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Stream(name) => stream == name,
            Scope::Topic(name) => topic == Some(name.as_str()),
        }
    }

    /// Broader scopes first: the entry shown for a suppressed recipient is
    /// the broadest that applies.
    fn breadth_rank(&self) -> u8 {
        match self {
            Scope::All => 0,
            Scope::Stream(_) => 1,
            Scope::Topic(_) => 2,
        }
    }
}

/// A stream or topic name: 1 to 64 of ASCII letters, digits, `-`, `_`, `.`.
pub fn checked_name(name: &str) -> Result<&str, &'static str> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err("a stream or topic name has 1 to 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("a stream or topic name has only ASCII letters, digits, `-`, `_` and `.`");
    }
    Ok(name)
}

/// Why an address is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The address is bad: a permanent refusal that says so (5.1.x, ...).
    HardBounce,
    /// The recipient reported a message as spam.
    Complaint,
    /// The recipient asked for no more mail of the scope.
    Unsubscribe,
    /// Added through the API.
    Manual,
    /// The address was erased (`DELETE /v1/privacy/data`): the entry keeps
    /// only its hash ([`erased_address`]).
    Erased,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::HardBounce,
        Reason::Complaint,
        Reason::Unsubscribe,
        Reason::Manual,
        Reason::Erased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::HardBounce => "hard_bounce",
            Reason::Complaint => "complaint",
            Reason::Unsubscribe => "unsubscribe",
            Reason::Manual => "manual",
            Reason::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One entry of a tenant's list (one row of `suppressions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub tenant: String,
    /// Trimmed and lower-cased (see [`address_key`]).
    pub address: String,
    pub scope: Scope,
    pub reason: Reason,
    /// The message whose outcome (or unsubscribe) added it, if any.
    pub message_id: Option<String>,
    /// What caused it: the refusal's reply, or the caller's note.
    pub detail: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// Unix milliseconds; `None` never expires.
    pub expires_at_ms: Option<u64>,
}

impl Entry {
    /// Holds mail back until it expires; at its expiry time it no longer does.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| now_ms < at)
    }

    /// Whether this entry holds back mail of `stream` and `topic` to `address`.
    pub fn applies(&self, address: &str, stream: &str, topic: Option<&str>, now_ms: u64) -> bool {
        self.is_active(now_ms)
            && (self.address == address_key(address)
                || (self.address.starts_with(ERASED_PREFIX)
                    && self.address == erased_address(&self.tenant, address)))
            && self.scope.covers(stream, topic)
    }
}

/// The form an address is kept and looked up under: trimmed and
/// lower-cased. Mailbox providers treat local parts without case, and a
/// list that missed `Bob@` for `bob@` would let a complaint through again.
pub fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The prefix of an erased entry's stored address: never a valid address,
/// so it cannot collide with a plain entry.
pub const ERASED_PREFIX: &str = "sha256:";

/// What an erased address is kept under in `tenant`'s list: `sha256:` and
/// the hex SHA-256 of the tenant and the address (lower-cased). The tenant
/// is part of the hash, so two tenants' entries for one person do not
/// match each other. Anyone who knows (or guesses) the address can compute
/// it: that is how a later send to it is still held back.
pub fn erased_address(tenant: &str, address: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"edgerelay erased address\n");
    hash.update(tenant.as_bytes());
    hash.update(b"\n");
    hash.update(address_key(address).as_bytes());
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("{ERASED_PREFIX}{hex}")
}

/// The entry that holds back mail of `stream` and `topic` to `address`, if
/// any: the broadest in scope, then the one that expires last, then the oldest.
pub fn applying<'a>(
    entries: &'a [Entry],
    address: &str,
    stream: &str,
    topic: Option<&str>,
    now_ms: u64,
) -> Option<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.applies(address, stream, topic, now_ms))
        .min_by_key(|e| {
            (
                e.scope.breadth_rank(),
                // `None` (never) sorts last among the expiries, so it wins.
                std::cmp::Reverse(e.expires_at_ms.map_or(u64::MAX, |at| at)),
                e.created_at_ms,
            )
        })
}

/// A recipient refused for good, as the upstream answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal<'a> {
    pub address: &'a str,
    pub code: u16,
    /// The enhanced status code, e.g. `5.1.1`.
    pub enhanced: Option<&'a str>,
    pub text: &'a str,
}

/// What a permanent refusal adds to the list: an entry for all streams,
/// without expiry, when the refusal says the address is bad (a hard
/// bounce); nothing for any other refusal (policy, content, size: the next
/// message may well pass) or for a temporary one.
pub fn from_refusal(
    tenant: &str,
    message_id: &str,
    refusal: Refusal<'_>,
    now_ms: u64,
) -> Option<Entry> {
    let class = BounceClass::of(refusal.code, refusal.enhanced, refusal.text);
    class.suppresses().then(|| Entry {
        tenant: tenant.to_string(),
        address: address_key(refusal.address),
        scope: Scope::All,
        reason: Reason::HardBounce,
        message_id: Some(message_id.to_string()),
        detail: Some(
            [
                refusal.code.to_string().as_str(),
                refusal.enhanced.unwrap_or(""),
                refusal.text,
            ]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        ),
        created_at_ms: now_ms,
        expires_at_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: &str, scope: Scope, expires_at_ms: Option<u64>) -> Entry {
        Entry {
            tenant: "acme".into(),
            address: address_key(address),
            scope,
            reason: Reason::Manual,
            message_id: None,
            detail: None,
            created_at_ms: 1_000,
            expires_at_ms,
        }
    }

    #[test]
    fn scopes_parse_and_print_table() {
        let stream = |n: &str| Scope::Stream(n.into());
        let topic = |n: &str| Scope::Topic(n.into());
        let table: &[(&str, Result<Scope, &str>)] = &[
            ("all", Ok(Scope::All)),
            ("stream:marketing", Ok(stream("marketing"))),
            ("stream:transactional", Ok(stream("transactional"))),
            ("topic:weekly-news", Ok(topic("weekly-news"))),
            ("topic:a.b_c", Ok(topic("a.b_c"))),
            ("ALL", Err("must be")),
            ("", Err("must be")),
            ("stream", Err("must be")),
            ("list:x", Err("must be")),
            ("stream:", Err("1 to 64")),
            ("topic:has space", Err("only ASCII")),
            ("topic:a:b", Err("only ASCII")),
            ("topic:é", Err("only ASCII")),
        ];
        for (text, want) in table {
            match (Scope::parse(text), want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(&got, want, "{text}");
                    assert_eq!(got.as_stored(), *text, "{text}");
                }
                (Err(got), Err(words)) => assert!(got.contains(words), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        let long = format!("topic:{}", "t".repeat(MAX_NAME_LEN + 1));
        assert!(Scope::parse(&long).is_err());
        let longest = format!("topic:{}", "t".repeat(MAX_NAME_LEN));
        assert!(Scope::parse(&longest).is_ok());
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("bounce"), None);
        assert_eq!(Reason::parse("Manual"), None);
    }

    /// Which entries apply to a recipient of a message of a stream and a
    /// topic: (entry scope, message stream, message topic, applies).
    #[test]
    fn which_scopes_apply_table() {
        let stream = |n: &str| Scope::Stream(n.into());
        let topic = |n: &str| Scope::Topic(n.into());
        let table: Vec<(Scope, &str, Option<&str>, bool)> = vec![
            (Scope::All, "transactional", None, true),
            (Scope::All, "marketing", Some("news"), true),
            // An unsubscribe from marketing never holds back a password reset.
            (stream("marketing"), "transactional", None, false),
            (stream("marketing"), "marketing", None, true),
            (stream("marketing"), "marketing", Some("news"), true),
            (stream("marketing"), "product-updates", None, false),
            (stream("transactional"), "transactional", None, true),
            (stream("transactional"), "marketing", None, false),
            (topic("news"), "marketing", Some("news"), true),
            (topic("news"), "marketing", Some("offers"), false),
            (topic("news"), "marketing", None, false),
            (topic("news"), "transactional", None, false),
            // Names are compared exactly.
            (stream("marketing"), "Marketing", None, false),
        ];
        for (scope, s, t, want) in table {
            let e = entry("bob@example.net", scope.clone(), None);
            assert_eq!(
                e.applies("bob@example.net", s, t, 2_000),
                want,
                "{} for stream {s} topic {t:?}",
                scope.as_stored()
            );
        }
    }

    #[test]
    fn addresses_compare_without_case_and_expiry_ends_an_entry() {
        let e = entry("  Bob@Example.NET ", Scope::All, Some(5_000));
        assert_eq!(e.address, "bob@example.net");
        let table: &[(&str, u64, bool)] = &[
            ("bob@example.net", 4_999, true),
            ("BOB@example.net", 1_000, true),
            (" bob@EXAMPLE.net", 1_000, true),
            ("bob@example.net", 5_000, false),
            ("bob@example.net", 9_000, false),
            ("bobby@example.net", 1_000, false),
            ("bob@example.ne", 1_000, false),
        ];
        for (address, now, want) in table {
            let applies = e.applies(address, "transactional", None, *now);
            assert_eq!(applies, *want, "{address} at {now}");
        }
        let forever = entry("bob@example.net", Scope::All, None);
        assert!(forever.applies("bob@example.net", "transactional", None, u64::MAX));
    }

    #[test]
    fn the_broadest_longest_entry_is_the_one_shown() {
        let mut list = vec![
            entry("bob@example.net", Scope::Topic("news".into()), None),
            entry("bob@example.net", Scope::Stream("marketing".into()), None),
            entry("bob@example.net", Scope::All, Some(9_000)),
            entry("bob@example.net", Scope::All, Some(3_000)),
            entry("carol@example.net", Scope::All, None),
        ];
        let shown = |list: &[Entry], now| {
            applying(list, "Bob@example.net", "marketing", Some("news"), now)
                .map(|e| (e.scope.as_stored(), e.expires_at_ms))
        };
        assert_eq!(shown(&list, 2_000), Some(("all".into(), Some(9_000))));
        assert_eq!(shown(&list, 9_000), Some(("stream:marketing".into(), None)));
        list.push(entry("bob@example.net", Scope::All, None));
        assert_eq!(shown(&list, 2_000), Some(("all".into(), None)));
        // A transactional message to bob is held back only by `all`.
        assert!(applying(&list[..2], "bob@example.net", "transactional", None, 0).is_none());
        assert!(applying(&list, "dave@example.net", "transactional", None, 0).is_none());
    }

    /// What a permanent refusal adds: (code, enhanced, text, suppressed).
    #[test]
    fn only_hard_bounces_suppress_table() {
        let table: &[(u16, Option<&str>, &str, bool)] = &[
            (550, Some("5.1.1"), "No such user", true),
            (550, Some("5.1.10"), "Recipient address rejected", true),
            (553, Some("5.1.3"), "Bad recipient address syntax", true),
            (550, Some("5.2.1"), "Mailbox disabled", true),
            (550, None, "No such user here", true),
            // Policy, content and size refusals: the address is fine.
            (550, Some("5.7.1"), "Message rejected as spam", false),
            (554, Some("5.7.1"), "Relay access denied", false),
            (552, Some("5.3.4"), "Message too big", false),
            (550, Some("5.6.0"), "Content rejected", false),
            (552, Some("5.2.2"), "Mailbox full", false),
            // Temporary refusals never suppress.
            (450, Some("4.1.1"), "Try again later", false),
            (451, Some("4.3.0"), "Local error", false),
            (421, None, "Service not available", false),
        ];
        for (code, enhanced, text, want) in table {
            let refusal = Refusal {
                address: "Gone@Example.net",
                code: *code,
                enhanced: *enhanced,
                text,
            };
            let got = from_refusal("acme", "msg_1", refusal, 7_000);
            assert_eq!(got.is_some(), *want, "{code} {enhanced:?} {text}");
            if let Some(e) = got {
                assert_eq!(e.address, "gone@example.net");
                assert_eq!((e.scope, e.reason), (Scope::All, Reason::HardBounce));
                assert_eq!(e.tenant, "acme");
                assert_eq!(e.message_id.as_deref(), Some("msg_1"));
                assert_eq!(e.expires_at_ms, None);
                assert_eq!(e.created_at_ms, 7_000);
                let detail = e.detail.unwrap_or_default();
                assert!(detail.starts_with(&code.to_string()), "{detail}");
                assert!(detail.ends_with(text), "{detail}");
            }
        }
    }
}
