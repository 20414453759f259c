//! The Cloudflare Email Service `send_email` binding: the entry
//! `send-email://BINDING` (the binding's name in wrangler.toml) and the
//! binding's exceptions classified by their message (the runtime throws
//! plain errors; their texts are the only signal).
//! Must not: call the binding (the edge does).

use super::{ApiUpstream, Class, Classified, one_line};

/// The Email Service's documented maximum message size, 25 MiB.
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

pub fn parse(rest: &str) -> Result<ApiUpstream, String> {
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
    Ok(ApiUpstream::SendEmail {
        binding: binding.to_string(),
    })
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
