//! The field blocks of a `message/delivery-status` body (RFC 3464 §2.1):
//! groups of `Name: value` lines separated by blank lines, with folded
//! continuation lines, and the xtext and address-type forms their values use.
//!
//! Owns that reading. Must not: know what a field means.

/// One block's fields in order, names as written.
pub type Block = Vec<(String, String)>;

/// Splits `body` into blocks of unfolded fields. Lines that are neither a
/// field nor a continuation are skipped; at most `max_blocks` are read.
pub fn blocks(body: &str, max_blocks: usize) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut current: Block = Vec::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                if out.len() >= max_blocks {
                    return out;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') {
                current.push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    if !current.is_empty() && out.len() < max_blocks {
        out.push(current);
    }
    out
}

/// The value of the first field called `name` (case-insensitive).
pub fn get<'a>(block: &'a Block, name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Decodes xtext (RFC 3461 §4): `+HH` is the byte HH, in upper-case hex.
/// A `+` not followed by two upper-case hex digits is kept as written, and
/// so is the whole text when its escapes do not decode to UTF-8: some
/// servers (Postfix among them) echo an ORCPT already decoded, and an
/// address such as `user+ab@example.net` must survive that.
pub fn xtext_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'+'
            && let Some(&[hi, lo]) = bytes.get(i + 1..i + 3)
            && let (Some(hi), Some(lo)) = (upper_hex(hi), upper_hex(lo))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

fn upper_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The address of a typed address field (`rfc822; bob@example.net`): the
/// part after the type, without angle brackets, xtext-decoded for an
/// `Original-Recipient`.
pub fn typed_address(value: &str, decode: bool) -> String {
    let address = value
        .split_once(';')
        .map(|(_, a)| a)
        .unwrap_or(value)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    if decode {
        xtext_decode(address)
    } else {
        address.to_string()
    }
}

/// Whether `word` is an enhanced status code (RFC 3463): `2`, `4` or `5`,
/// then two numbers of one to three digits.
pub fn is_enhanced_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts.first(), Some(&"2" | &"4" | &"5"))
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_unfold_and_split() {
        let body = "Reporting-MTA: dns; mx.example\r\nOriginal-Envelope-Id: a+2Bb\r\n\r\n\
                    Final-Recipient: rfc822; x@example.net\r\nAction: failed\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1 no\r\n    such user\r\n\r\n\r\n";
        let got = blocks(body, 10);
        assert_eq!(got.len(), 2);
        assert_eq!(get(&got[0], "reporting-mta"), Some("dns; mx.example"));
        assert_eq!(
            get(&got[1], "Diagnostic-Code"),
            Some("smtp; 550 5.1.1 no such user")
        );
        assert_eq!(blocks(body, 1).len(), 1, "bounded");
    }

    #[test]
    fn xtext_and_typed_addresses() {
        let table = [
            ("plain", "plain"),
            ("a+2Bb", "a+b"),
            ("+C3+BC", "ü"),
            ("bad+zz", "bad+zz"),
            ("end+", "end+"),
            // Lower-case hex is not xtext: an address written decoded.
            ("user+ab@x.net", "user+ab@x.net"),
            ("a+2b", "a+2b"),
            // Escapes that are not UTF-8: the text was not xtext.
            ("user+AB@x.net", "user+AB@x.net"),
            ("+E2+82", "+E2+82"),
        ];
        for (input, want) in table {
            assert_eq!(xtext_decode(input), want, "{input}");
        }
        assert_eq!(
            typed_address("rfc822; <Bob@Example.net>", false),
            "Bob@Example.net"
        );
        assert_eq!(typed_address("rfc822;a+2Bb@x.net", true), "a+b@x.net");
        assert_eq!(typed_address("bob@x.net", false), "bob@x.net");
    }
}
