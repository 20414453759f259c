//! Erasing one address from a tenant's records (GDPR article 17): the
//! hashed form its suppression entry keeps, the placeholder that replaces it
//! in records that must stay (a message with other recipients), how it is
//! found and replaced in stored text, and which messages go whole.
//!
//! Owns: the entry an erasure leaves ([`erased_entry`]: the address only
//! as `suppression::erased_address`, which the list matches a recipient
//! against, so the erased person is still never mailed), [`placeholder`], [`scrub`] and
//! [`mentions`] (an address found whole, ASCII letters in any case, never
//! inside a longer address), [`names`] (whether a stored address field is
//! the address) and [`deleted_whole`] (which messages are deleted rather
//! than anonymised).
//! Must not: perform I/O, read the clock, or know the tables (the edge
//! finds the rows and writes what this returns).

use super::suppression::{ERASED_PREFIX, Entry, Reason, Scope, address_key, erased_address};
use crate::queue::MessageStatus;

/// The domain of placeholders: `.invalid` never resolves (RFC 2606).
pub const PLACEHOLDER_DOMAIN: &str = "erased.invalid";

/// What replaces `address` in the tenant's records that stay:
/// `erased-<16 hex>@erased.invalid`, the same for every record, so a message
/// still reads as one recipient, and never a deliverable address.
pub fn placeholder(tenant: &str, address: &str) -> String {
    let hashed = erased_address(tenant, address);
    let hex = hashed
        .get(ERASED_PREFIX.len()..ERASED_PREFIX.len() + 16)
        .unwrap_or("");
    format!("erased-{hex}@{PLACEHOLDER_DOMAIN}")
}

/// The entry that keeps an erased address from being mailed again: scope
/// all, no expiry, reason `erased`, the address only as its hash.
pub fn erased_entry(tenant: &str, address: &str, now_ms: u64) -> Entry {
    Entry {
        tenant: tenant.to_string(),
        address: erased_address(tenant, address),
        scope: Scope::All,
        reason: Reason::Erased,
        message_id: None,
        detail: None,
        created_at_ms: now_ms,
        expires_at_ms: None,
    }
}

/// Bytes that may stand in a local part: one of them before a match means
/// the match is the tail of a longer address.
fn local_part_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
}

/// Whether a match ending before `rest` is a whole address: the domain must
/// not go on (a letter, digit, `-`, or a dot followed by one).
fn domain_ends(rest: &[u8]) -> bool {
    let more = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80;
    match rest {
        [] => true,
        [b, ..] if more(*b) => false,
        [b'.', next, ..] if more(*next) => false,
        _ => true,
    }
}

/// Where `key` (an address as [`address_key`] keeps it) stands whole in
/// `text`: byte offsets of each match.
fn matches(text: &str, key: &str) -> Vec<usize> {
    let (hay, needle) = (text.as_bytes(), key.as_bytes());
    let mut found = Vec::new();
    if needle.is_empty() || hay.len() < needle.len() {
        return found;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let whole = hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
            && (i == 0 || !local_part_byte(hay[i - 1]))
            && domain_ends(&hay[i + needle.len()..]);
        if whole {
            found.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    found
}

/// Whether `text` names the address `key` anywhere, whole.
pub fn mentions(text: &str, key: &str) -> bool {
    !matches(text, key).is_empty()
}

/// `text` with every whole occurrence of `key` replaced by `with`; `None`
/// when it has none.
pub fn scrub(text: &str, key: &str, with: &str) -> Option<String> {
    let found = matches(text, key);
    if found.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for at in found {
        // Matches start and end on ASCII or on the key's own characters,
        // so these are character boundaries.
        out.push_str(text.get(from..at)?);
        out.push_str(with);
        from = at + key.len();
    }
    out.push_str(text.get(from..)?);
    Some(out)
}

/// A row's text columns with the address replaced in each; `None` when
/// none of them names it (the row is left alone).
pub fn scrub_row(values: &[Option<String>], key: &str, with: &str) -> Option<Vec<Option<String>>> {
    let mut changed = false;
    let out = values
        .iter()
        .map(|v| {
            v.as_ref().map(|text| match scrub(text, key, with) {
                Some(new) => {
                    changed = true;
                    new
                }
                None => text.clone(),
            })
        })
        .collect();
    changed.then_some(out)
}

/// Whether a stored address field (`mail_from`, `sender`, a recipient:
/// `bob@x` or `Bob <bob@x>`) is the address `key`.
pub fn names(field: &str, key: &str) -> bool {
    let inner = match (field.rfind('<'), field.rfind('>')) {
        (Some(open), Some(close)) if open < close => &field[open + 1..close],
        _ => field,
    };
    address_key(inner) == key
}

/// Whether a message (its status and recipients, `rcpt_to` as stored: a JSON
/// list) is deleted whole when `key` is erased: it is final, and every
/// recipient is the address. Others (other recipients, or only the From)
/// stay with the address replaced; a message not final stays until its
/// delivery ends (the queue still holds its job).
pub fn deleted_whole(status: &str, rcpt_to: &str, key: &str) -> bool {
    let recipients: Vec<String> = serde_json::from_str(rcpt_to).unwrap_or_default();
    MessageStatus::parse(status).is_some_and(MessageStatus::is_final)
        && !recipients.is_empty()
        && recipients.iter().all(|r| names(r, key))
}

/// Whether a message (as stored: `rcpt_to` a JSON list, the envelope
/// `mail_from` and the From `sender`) is about `key`: sent to it or from it.
pub fn message_names(rcpt_to: &str, mail_from: &str, sender: Option<&str>, key: &str) -> bool {
    let recipients: Vec<String> = serde_json::from_str(rcpt_to).unwrap_or_default();
    recipients.iter().any(|r| names(r, key))
        || names(mail_from, key)
        || sender.is_some_and(|s| names(s, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::suppression::applying;

    #[test]
    fn scrub_table() {
        let key = "bob@example.com";
        let p = "P";
        let cases: &[(&str, Option<&str>)] = &[
            ("bob@example.com", Some("P")),
            ("BOB@Example.COM", Some("P")),
            ("<bob@example.com>", Some("<P>")),
            (
                r#"["a@x.net","bob@example.com"]"#,
                Some(r#"["a@x.net","P"]"#),
            ),
            (
                "550 5.1.1 <bob@example.com>: unknown; bob@example.com.",
                Some("550 5.1.1 <P>: unknown; P."),
            ),
            // Never inside a longer address.
            ("jimbob@example.com", None),
            ("bob.smith+bob@example.com", None),
            ("x.bob@example.com", None),
            ("bob@example.com.au", None),
            ("bob@example.community", None),
            ("bob@example.com-mail.net", None),
            ("bob@example.co", None),
            ("nothing here", None),
            ("", None),
            // Non-ASCII around a match is kept intact.
            ("héllo bob@example.com ✓", Some("héllo P ✓")),
            ("ébob@example.com", None),
        ];
        for (text, want) in cases {
            assert_eq!(scrub(text, key, p).as_deref(), *want, "{text}");
            assert_eq!(mentions(text, key), want.is_some(), "{text}");
        }
    }

    #[test]
    fn rows_are_scrubbed_column_by_column() {
        let key = "bob@x.net";
        let row = [
            Some("Bob@x.net".to_string()),
            None,
            Some("to jimbob@x.net".to_string()),
            Some("[\"bob@x.net\"]".to_string()),
        ];
        assert_eq!(
            scrub_row(&row, key, "P"),
            Some(vec![
                Some("P".to_string()),
                None,
                Some("to jimbob@x.net".to_string()),
                Some("[\"P\"]".to_string()),
            ])
        );
        assert_eq!(scrub_row(&row[1..3], key, "P"), None);
    }

    #[test]
    fn names_table() {
        let key = "bob@example.com";
        for (field, want) in [
            ("bob@example.com", true),
            (" Bob@Example.com ", true),
            ("Bob <BOB@example.com>", true),
            ("\"Bob, B\" <bob@example.com>", true),
            ("bob@example.com.au", false),
            ("alice@example.com", false),
            ("", false),
        ] {
            assert_eq!(names(field, key), want, "{field}");
        }
    }

    #[test]
    fn which_messages_go_whole() {
        let key = "bob@example.com";
        let cases: &[(&str, &str, bool)] = &[
            ("delivered", r#"["bob@example.com"]"#, true),
            ("failed", r#"["Bob@Example.com","bob@example.com"]"#, true),
            ("suppressed", r#"["bob@example.com"]"#, true),
            // Another recipient keeps the message (anonymised).
            (
                "delivered",
                r#"["bob@example.com","amy@example.com"]"#,
                false,
            ),
            // Not final: the queue still holds it.
            ("queued", r#"["bob@example.com"]"#, false),
            ("deferred", r#"["bob@example.com"]"#, false),
            // Not to the address at all (e.g. only from it).
            ("delivered", r#"["amy@example.com"]"#, false),
            ("delivered", "[]", false),
            ("delivered", "not json", false),
        ];
        for (status, rcpt, want) in cases {
            assert_eq!(deleted_whole(status, rcpt, key), *want, "{status} {rcpt}");
        }
        assert!(message_names(
            r#"["amy@x.net"]"#,
            "bob@example.com",
            None,
            key
        ));
        assert!(message_names(
            r#"["amy@x.net"]"#,
            "b@x.net",
            Some("Bob <bob@example.com>"),
            key
        ));
        assert!(message_names(
            r#"["BOB@example.com"]"#,
            "a@x.net",
            None,
            key
        ));
        assert!(!message_names(
            r#"["jimbob@example.com"]"#,
            "a@x.net",
            None,
            key
        ));
    }

    #[test]
    fn erased_entries_are_hashed_and_still_suppress() {
        let entry = erased_entry("acme", " Bob@Example.com ", 5);
        assert_eq!(entry.reason, Reason::Erased);
        assert_eq!(entry.scope, Scope::All);
        assert_eq!(entry.expires_at_ms, None);
        assert!(entry.address.starts_with(ERASED_PREFIX));
        assert_eq!(entry.address.len(), ERASED_PREFIX.len() + 64);
        assert!(!entry.address.contains("bob"), "{}", entry.address);
        // The same address in any case, for the same tenant, is held back;
        // in every stream and topic.
        let entries = [entry.clone()];
        for (address, stream, topic) in [
            ("bob@example.com", "transactional", None),
            ("BOB@example.com", "marketing", Some("news")),
        ] {
            assert!(
                applying(&entries, address, stream, topic, 10).is_some(),
                "{address}"
            );
        }
        assert!(applying(&entries, "amy@example.com", "transactional", None, 10).is_none());
        // Another tenant's hash differs: acme's lookups never find it.
        let other = erased_entry("globex", "bob@example.com", 5);
        assert_ne!(other.address, entry.address);
        assert_ne!(other.address, erased_address("acme", "bob@example.com"));
    }

    #[test]
    fn placeholders_are_stable_and_undeliverable() {
        let p = placeholder("acme", "Bob@example.com");
        assert_eq!(p, placeholder("acme", "bob@example.com"));
        assert_ne!(p, placeholder("globex", "bob@example.com"));
        assert!(p.starts_with("erased-"), "{p}");
        assert!(p.ends_with("@erased.invalid"), "{p}");
        assert!(!mentions(&p, "bob@example.com"));
    }
}
