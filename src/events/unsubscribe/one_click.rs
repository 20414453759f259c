//! The body of an unsubscribe POST: RFC 8058's `List-Unsubscribe=One-Click`,
//! sent by a mailbox provider as `application/x-www-form-urlencoded` or
//! `multipart/form-data`, or by the preference page's buttons (which may add
//! `scope=topic|stream`).
//!
//! Owns: reading those two encodings far enough to find the two fields, and
//! the refusal of anything else. Must not: look at the token, cookies or any
//! credential (RFC 8058: the POST carries none), or decide what is recorded.

use std::fmt;

/// The largest body read; the form a provider posts is 26 bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Which scope the poster chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeChoice {
    /// What the link names: the topic when it has one, else the stream.
    AsLinked,
    /// The topic only (the page's first button).
    Topic,
    /// The whole stream (the page's second button).
    Stream,
}

/// Why a POST is not a one-click unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneClickError {
    /// Neither form encoding (or a multipart type without a boundary).
    UnsupportedMediaType(String),
    /// No `List-Unsubscribe=One-Click` in the body.
    MissingOneClick,
    /// A `scope` other than `topic` or `stream`.
    UnknownScope,
    /// Over [`MAX_BODY_BYTES`].
    TooLarge,
}

impl fmt::Display for OneClickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OneClickError::UnsupportedMediaType(got) => write!(
                f,
                "an unsubscribe is posted as application/x-www-form-urlencoded or multipart/form-data (RFC 8058), not {got:?}"
            ),
            OneClickError::MissingOneClick => f.write_str(
                "the body must carry List-Unsubscribe=One-Click (RFC 8058); nothing was changed",
            ),
            OneClickError::UnknownScope => {
                f.write_str("scope must be \"topic\" or \"stream\"; nothing was changed")
            }
            OneClickError::TooLarge => write!(
                f,
                "an unsubscribe body is at most {MAX_BODY_BYTES} bytes; nothing was changed"
            ),
        }
    }
}

/// Reads a POST's body by its `Content-Type`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ScopeChoice, OneClickError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(OneClickError::TooLarge);
    }
    let raw_type = content_type.unwrap_or("").trim();
    let (media, params) = raw_type.split_once(';').unwrap_or((raw_type, ""));
    let fields = match media.trim().to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => urlencoded(body),
        "multipart/form-data" => {
            let boundary = parameter(params, "boundary")
                .filter(|b| !b.is_empty() && b.len() <= 70)
                .ok_or_else(|| OneClickError::UnsupportedMediaType(raw_type.to_string()))?;
            multipart(body, &boundary)
        }
        _ => return Err(OneClickError::UnsupportedMediaType(shown(raw_type))),
    };
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if value("List-Unsubscribe").as_deref() != Some("One-Click") {
        return Err(OneClickError::MissingOneClick);
    }
    match value("scope").as_deref() {
        None => Ok(ScopeChoice::AsLinked),
        Some("topic") => Ok(ScopeChoice::Topic),
        Some("stream") => Ok(ScopeChoice::Stream),
        Some(_) => Err(OneClickError::UnknownScope),
    }
}

/// A content type as quoted back in an error: short and printable.
fn shown(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(80)
        .collect()
}

fn parameter(params: &str, name: &str) -> Option<String> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn urlencoded(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let key = percent_decode(parts.next().unwrap_or_default());
            let value = percent_decode(parts.next().unwrap_or_default());
            (key, value)
        })
        .collect()
}

fn percent_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The named text fields of a `multipart/form-data` body (RFC 7578).
fn multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut fields = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((headers, content)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            continue;
        };
        let name = headers.lines().find_map(|line| {
            let (field, value) = line.split_once(':')?;
            if !field.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            parameter(value, "name")
        });
        if let Some(name) = name {
            let content = content
                .strip_suffix("\r\n")
                .or_else(|| content.strip_suffix('\n'))
                .unwrap_or(content);
            fields.push((name, content.to_string()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "application/x-www-form-urlencoded";

    #[test]
    fn one_click_bodies_by_table() {
        let multipart_type = "multipart/form-data; boundary=----x1";
        let multipart_body = "------x1\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n------x1--\r\n";
        let multipart_scope = "------x1\r\nContent-Disposition: form-data; name=\"scope\"\r\n\r\nstream\r\n------x1\r\ncontent-disposition: form-data; name=List-Unsubscribe\r\n\r\nOne-Click\r\n------x1--\r\n";
        let multipart_other = "------x1\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nTwo-Click\r\n------x1--\r\n";
        let table: Vec<(Option<&str>, &str, Result<ScopeChoice, OneClickError>)> = vec![
            (
                Some(FORM),
                "List-Unsubscribe=One-Click",
                Ok(ScopeChoice::AsLinked),
            ),
            (
                Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
                "List-Unsubscribe=One-Click",
                Ok(ScopeChoice::AsLinked),
            ),
            (
                Some(FORM),
                "List-Unsubscribe=One%2DClick",
                Ok(ScopeChoice::AsLinked),
            ),
            (
                Some(FORM),
                "List%2DUnsubscribe=One-Click&scope=topic",
                Ok(ScopeChoice::Topic),
            ),
            (
                Some(FORM),
                "scope=stream&List-Unsubscribe=One-Click",
                Ok(ScopeChoice::Stream),
            ),
            (
                Some(multipart_type),
                multipart_body,
                Ok(ScopeChoice::AsLinked),
            ),
            (
                Some("multipart/form-data; boundary=\"----x1\""),
                multipart_scope,
                Ok(ScopeChoice::Stream),
            ),
            (Some(FORM), "", Err(OneClickError::MissingOneClick)),
            (
                Some(FORM),
                "List-Unsubscribe=one-click",
                Err(OneClickError::MissingOneClick),
            ),
            (
                Some(FORM),
                "List-Unsubscribe=One-Click&scope=all",
                Err(OneClickError::UnknownScope),
            ),
            (
                Some(FORM),
                "unsubscribe=1",
                Err(OneClickError::MissingOneClick),
            ),
            (Some(FORM), "%zz%", Err(OneClickError::MissingOneClick)),
            (
                Some(multipart_type),
                multipart_other,
                Err(OneClickError::MissingOneClick),
            ),
            (
                Some("multipart/form-data"),
                multipart_body,
                Err(OneClickError::UnsupportedMediaType(
                    "multipart/form-data".into(),
                )),
            ),
            (
                Some("application/json"),
                "{\"List-Unsubscribe\":\"One-Click\"}",
                Err(OneClickError::UnsupportedMediaType(
                    "application/json".into(),
                )),
            ),
            (
                Some("text/plain"),
                "List-Unsubscribe=One-Click",
                Err(OneClickError::UnsupportedMediaType("text/plain".into())),
            ),
            (
                None,
                "List-Unsubscribe=One-Click",
                Err(OneClickError::UnsupportedMediaType(String::new())),
            ),
        ];
        for (row, (content_type, body, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                parse(content_type, body.as_bytes()),
                expected,
                "row {row}: {content_type:?} {body}"
            );
        }
        let big = format!(
            "List-Unsubscribe=One-Click&pad={}",
            "x".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(
            parse(Some(FORM), big.as_bytes()),
            Err(OneClickError::TooLarge)
        );
    }

    #[test]
    fn percent_decoding_never_panics_on_truncated_escapes() {
        for input in ["%", "%4", "a%", "%%", "%41", "+%2B+"] {
            let _ = percent_decode(input.as_bytes());
        }
        assert_eq!(percent_decode(b"%41+b%2B"), "A b+");
        assert_eq!(percent_decode(b"a%4"), "a%4");
    }
}
