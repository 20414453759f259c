//! The worker's log lines: one JSON object per line (`{"level", "event",
//! ...fields}`), and how an address appears in one.
//!
//! Logs leave edgerelay's control (the platform keeps them, operators copy
//! them), so they carry no full address: an address is shown as a short
//! SHA-256 prefix of the whole address (lower-cased) and its domain,
//! `h:3f9a2c1b@example.com`, enough to follow one recipient through the log
//! and to find lines about an address one already knows, not to read it
//! back. Free text (an error, an SMTP reply: `550 5.1.1 <bob@example.com>:
//! user unknown`) has every address-looking part masked the same way, and is
//! cut to [`MAX_TEXT`] bytes. A line has no field for a body, a subject or a
//! header, and callers never hand it a key or token.
//! Must not: do I/O (the edge writes the line), or keep any part of a local
//! part in clear.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest free text a field keeps, in bytes.
pub const MAX_TEXT: usize = 600;

/// How urgent a line is; the edge writes each level to its console stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One field's value, by what it is: that decides how it is shown.
#[derive(Debug, Clone, Copy)]
pub enum LogValue<'a> {
    /// Free text (an error, a reason, an SMTP reply): addresses masked, cut.
    Text(&'a str),
    /// One email address: masked.
    Address(&'a str),
    /// An identifier edgerelay made (a message id, an upstream's
    /// `host:port`): kept, but addresses masked and cut like text, in case.
    Id(&'a str),
    Num(u64),
    Bool(bool),
    /// A structured value (counts, names): every string in it is treated as
    /// free text.
    Json(&'a Value),
}

/// The line for `event` with `fields`, as one line of JSON text: `level`
/// and `event` first, then the fields in the order given. Field names are
/// the caller's constants; a field cannot overwrite `level` or `event`, and
/// a name given twice keeps its first value.
pub fn line(level: Level, event: &str, fields: &[(&str, LogValue<'_>)]) -> String {
    let mut members: Vec<(&str, Value)> = vec![
        ("level", Value::from(level.as_str())),
        ("event", Value::from(mask_text(event))),
    ];
    for (name, value) in fields {
        if members.iter().any(|(n, _)| n == name) {
            continue;
        }
        let value = match value {
            LogValue::Text(t) | LogValue::Id(t) => Value::from(mask_text(t)),
            LogValue::Address(a) => Value::from(mask_address(a)),
            LogValue::Num(n) => Value::from(*n),
            LogValue::Bool(b) => Value::from(*b),
            LogValue::Json(v) => masked_json(v),
        };
        members.push((name, value));
    }
    let mut out = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(mask_text(name)).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

fn masked_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::from(mask_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(masked_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (mask_text(k), masked_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An address as logs show it: `h:` and the first 8 hex digits of the
/// SHA-256 of the lower-cased address, then `@` and the domain
/// (lower-cased). Text without an `@` is all hashed (`h:3f9a2c1b`).
pub fn mask_address(address: &str) -> String {
    let address = address.trim();
    let digest = Sha256::digest(address.to_lowercase().as_bytes());
    let prefix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    match address.rsplit_once('@') {
        Some((_, domain)) if !domain.is_empty() => {
            format!("h:{prefix}@{}", domain.to_lowercase())
        }
        _ => format!("h:{prefix}"),
    }
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b >= 0x80
}

/// `text` with every address-looking part (`local@domain`, the local part
/// plain or quoted) shown as [`mask_address`] shows it, cut to [`MAX_TEXT`]
/// bytes. A part already masked (`h:` and 8 hex digits before the `@`) is
/// left as it is.
pub fn mask_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len().min(MAX_TEXT + 8));
    let mut copied = 0; // bytes of `text` already in `out`
    let mut at = 0;
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|b| b.iter().position(|&c| c == b'@'))
    {
        let sign = at + offset;
        let mut start = sign;
        if sign > copied && bytes.get(sign - 1) == Some(&b'"') {
            // A quoted local part: back to its opening quote.
            if let Some(open) = bytes
                .get(copied..sign - 1)
                .and_then(|b| b.iter().rposition(|&c| c == b'"'))
            {
                start = copied + open;
            }
        } else {
            while start > copied && bytes.get(start - 1).copied().is_some_and(is_local_byte) {
                start -= 1;
            }
        }
        let mut end = sign + 1;
        while bytes.get(end).copied().is_some_and(is_domain_byte) {
            end += 1;
        }
        // A trailing dot ends a sentence, not the domain.
        while end > sign + 1 && bytes.get(end - 1) == Some(&b'.') {
            end -= 1;
        }
        let local = text.get(start..sign).unwrap_or_default();
        let domain = text.get(sign + 1..end).unwrap_or_default();
        let already = start >= 2
            && text.get(start - 2..start) == Some("h:")
            && local.len() == 8
            && local.bytes().all(|b| b.is_ascii_hexdigit());
        if local.is_empty() || domain.is_empty() || already {
            at = sign + 1;
            continue;
        }
        out.push_str(text.get(copied..start).unwrap_or_default());
        out.push_str(&mask_address(text.get(start..end).unwrap_or_default()));
        copied = end;
        at = end;
        if out.len() > MAX_TEXT {
            break;
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    if out.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(address: &str) -> String {
        mask_address(address)
    }

    #[test]
    fn an_address_keeps_its_domain_only() {
        let bob = h("bob@example.com");
        assert!(
            bob.starts_with("h:") && bob.ends_with("@example.com"),
            "{bob}"
        );
        assert_eq!(bob.len(), "h:12345678@example.com".len());
        assert!(!bob.contains("bob"));
        // Case does not change the hash; the same address, the same mask.
        assert_eq!(h("Bob@Example.COM"), bob);
        assert_eq!(h(" bob@example.com "), bob);
        assert_ne!(h("alice@example.com"), bob);
        // The known digest: SHA-256("bob@example.com") begins 5ff860bf.
        assert_eq!(bob, "h:5ff860bf@example.com");
        // Not an address: all hashed.
        assert!(!h("bob").contains("bob"));
        assert!(h("bob@").starts_with("h:") && !h("bob@").contains("bob"));
    }

    #[test]
    fn every_address_in_a_text_is_masked() {
        let bob = h("bob@example.com");
        let table: Vec<(&str, String)> = vec![
            ("no address here", "no address here".into()),
            (
                "550 5.1.1 <bob@example.com>: user unknown",
                format!("550 5.1.1 <{bob}>: user unknown"),
            ),
            (
                "bob@example.com and carol+x@mail.example.org.",
                format!("{bob} and {}.", h("carol+x@mail.example.org")),
            ),
            (
                "RCPT TO:<bob@example.com> refused",
                format!("RCPT TO:<{bob}> refused"),
            ),
            (
                "to=\"bob smith\"@example.com;",
                format!("to={};", h("\"bob smith\"@example.com")),
            ),
            ("an @ alone, a@ and @b", "an @ alone, a@ and @b".into()),
            (
                "d.o.t@x-y.z (bob@example.com)",
                format!("{} ({bob})", h("d.o.t@x-y.z")),
            ),
            // Already masked: left as it is (masking twice changes nothing).
            ("h:5ff860bf@example.com", "h:5ff860bf@example.com".into()),
            ("ünï@exämple.com", h("ünï@exämple.com")),
        ];
        for (text, want) in table {
            let got = mask_text(text);
            assert_eq!(got, want, "{text}");
            assert_eq!(mask_text(&got), got, "idempotent: {text}");
        }
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let got = mask_text(&long);
        assert!(got.len() <= MAX_TEXT + '…'.len_utf8(), "{}", got.len());
        assert!(got.ends_with('…'));
        let many = "bob@example.com ".repeat(200);
        let got = mask_text(&many);
        assert!(!got.contains("bob@"), "{got}");
        assert!(got.len() <= MAX_TEXT + '…'.len_utf8());
    }

    #[test]
    fn a_line_is_one_json_object() {
        let counts = serde_json::json!({"messages": 3, "note": "to bob@example.com"});
        let text = line(
            Level::Warn,
            "delivery_deferred",
            &[
                ("message_id", LogValue::Id("msg_1")),
                ("recipient", LogValue::Address("bob@example.com")),
                ("error", LogValue::Text("550 <bob@example.com> unknown\nx")),
                ("attempt", LogValue::Num(2)),
                ("final", LogValue::Bool(false)),
                ("counts", LogValue::Json(&counts)),
                ("level", LogValue::Text("forged")),
                ("attempt", LogValue::Num(9)),
            ],
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with(r#"{"level":"warn","event":"delivery_deferred","message_id":"#),
            "{text}"
        );
        assert!(!text.contains("bob@"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let bob = h("bob@example.com");
        assert_eq!(
            v,
            serde_json::json!({
                "level": "warn",
                "event": "delivery_deferred",
                "message_id": "msg_1",
                "recipient": bob,
                "error": format!("550 <{bob}> unknown\nx"),
                "attempt": 2,
                "final": false,
                "counts": {"messages": 3, "note": format!("to {bob}")},
            })
        );
        assert_eq!(Level::Info.as_str(), "info");
        assert_eq!(Level::Error.as_str(), "error");
    }
}
