//! The Cloudflare Email Service `send_email` binding: the entry
//! `send-email://BINDING` (the binding's name in wrangler.toml) and the
//! binding's exceptions classified by their message (the runtime throws
//! plain errors; their texts are the only signal).
//! Must not: call the binding (the edge does).

use super::common::{Class, Classified, one_line};

/// The Email Service's documented maximum message size, 25 MiB.
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// The binding's name from the entry.
pub fn parse(rest: &str) -> Result<String, String> {
    let binding = rest.trim_end_matches('/');
    let valid = !binding.is_empty()
        && binding.len() <= 64
        && binding
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !binding.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if !valid {
        return Err("a send-email:// entry needs the binding's name (letters, digits, _)".into());
    }
    Ok(binding.to_string())
}

/// A binding exception, by its message.
pub fn classify_error(message: &str) -> Classified {
    let lower = message.to_ascii_lowercase();
    let class = if lower.contains("email from") && lower.contains("not allowed") {
        // The binding's allowed_sender_addresses: this upstream cannot send
        // for the sender at all.
        Class::Configuration
    } else if lower.contains("not allowed") || lower.contains("not verified") {
        // `destination_address` / `allowed_destination_addresses`, or an
        // unverified destination: this recipient cannot be reached this way.
        Class::Permanent
    } else if lower.contains("rate") || lower.contains("too many") || lower.contains("quota") {
        Class::Throttled
    } else if lower.contains("could not parse")
        || lower.contains("invalid message-id")
        || lower.contains("does not match mail from")
        || lower.contains("invalid headers")
        || lower.contains("too large")
    {
        Class::Permanent
    } else if lower.contains("binding") && lower.contains("missing") {
        Class::Configuration
    } else {
        Class::Transient
    };
    Classified::new(class, one_line(message))
}

/// The address of the message's `From:` header: the binding takes the
/// envelope sender only when it is the header's address (the Email
/// Service refuses "From: header does not match mail from"), so bounces
/// come back through the Email Service, not to edgerelay's return path.
pub fn header_from(message: &[u8]) -> Option<String> {
    let value = header(message, "from");
    let value = value?;
    let address = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => value.get(open + 1..close)?,
        _ => value.trim(),
    };
    let address = address.trim();
    (address.contains('@') && !address.contains([' ', ',', '"'])).then(|| address.to_string())
}

/// The message's own `Message-ID:` (the Email Service writes one of its
/// own; the record keeps both).
pub fn message_id(message: &[u8]) -> Option<String> {
    header(message, "message-id").map(|v| one_line(&v))
}

/// The first header field `name` (any case), unfolded.
fn header(message: &[u8], name: &str) -> Option<String> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(message.get(..end)?);
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            // A folded line of another field (a DKIM-Signature's `h=` list
            // names fields too).
            None if line.starts_with([' ', '\t']) => {}
            None => {
                if let Some((field, rest)) = line.split_once(':')
                    && field.trim().eq_ignore_ascii_case(name)
                {
                    value = Some(rest.to_string());
                }
            }
        }
    }
    value
}

#[cfg(test)]
mod header_from_tests {
    use super::header_from;

    #[test]
    fn the_from_header_address_is_read() {
        let table: &[(&[u8], Option<&str>)] = &[
            (
                b"To: b@x.net\r\nFrom: Edge <a@example.com>\r\n\r\nFrom: c@evil.test\r\n",
                Some("a@example.com"),
            ),
            (
                b"from:  a@example.com \r\nSubject: x\r\n\r\n",
                Some("a@example.com"),
            ),
            (
                b"From: \"Long,\r\n name\" <a@example.com>\r\nTo: b\r\n\r\n",
                Some("a@example.com"),
            ),
            (b"Subject: no from\r\n\r\nFrom: a@example.com\r\n", None),
            (b"From: a@example.com, b@example.com\r\n\r\n", None),
            (b"", None),
        ];
        for (message, want) in table {
            assert_eq!(
                header_from(message).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(message)
            );
        }
        let signed = b"DKIM-Signature: v=1; h=from:to:\r\n\tmessage-id:date; bh=x\r\nMessage-ID: <a@b>\r\n\r\n";
        assert_eq!(super::message_id(signed).as_deref(), Some("<a@b>"));
        let table: &[(&[u8], Option<&str>)] = &[(b"X: y\r\n from: a@example.com\r\n\r\n", None)];
        for (message, want) in table {
            assert_eq!(
                header_from(message).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(message)
            );
        }
    }
}
