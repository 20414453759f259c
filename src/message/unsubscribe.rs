//! The one-click unsubscribe headers (RFC 8058) and the `{{unsubscribe_url}}`
//! placeholder, as composition sees them: a per-recipient URL in, two header
//! fields and the bodies with the URL in place out.
//!
//! Both fields are written by the relay, after the caller's own headers, and
//! the DKIM signer over-signs both names (see [`super::dkim`]), so every
//! signature covers them and nobody downstream can add a second pair.
//! Owns: the field names and values, the placeholder, and what a URL must be
//! to go into them verbatim. Must not: know how the URL's token is made, or
//! decide which messages carry the headers (`accept` does).

use std::borrow::Cow;

/// The placeholder a body may use for the recipient's own unsubscribe link.
pub const PLACEHOLDER: &str = "{{unsubscribe_url}}";

/// `List-Unsubscribe`: the header field carrying the link.
pub const LIST_UNSUBSCRIBE: &str = "List-Unsubscribe";
/// `List-Unsubscribe-Post`: says the link takes a one-click POST.
pub const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe-Post";
/// The only value RFC 8058 defines for `List-Unsubscribe-Post`, and the body
/// a mailbox provider posts.
pub const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

/// A recipient's one-click unsubscribe link, checked to go verbatim into a
/// header, an HTML attribute and plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneClick {
    url: String,
}

impl OneClick {
    /// The link, if it is an `https://` URL (or `http://` for a loopback
    /// host, for local development) made only of characters that need no
    /// escaping anywhere it goes: letters, digits and `-._~:/%`; at most
    /// 900 bytes, so the header stays within a line.
    pub fn new(url: &str) -> Option<OneClick> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://").filter(|r| is_loopback(r)))?;
        let host = rest.split('/').next().unwrap_or_default();
        let plain = url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/%".contains(&b));
        (plain && !host.is_empty() && url.len() <= 900).then(|| OneClick {
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The header fields, name and value, in the order they are written.
    pub fn header_fields(&self) -> [(&'static str, String); 2] {
        [
            (LIST_UNSUBSCRIBE, format!("<{}>", self.url)),
            (LIST_UNSUBSCRIBE_POST, ONE_CLICK.to_string()),
        ]
    }

    /// `body` with every placeholder replaced by the link.
    pub fn fill<'a>(&self, body: &'a str) -> Cow<'a, str> {
        if body.contains(PLACEHOLDER) {
            Cow::Owned(body.replace(PLACEHOLDER, &self.url))
        } else {
            Cow::Borrowed(body)
        }
    }
}

/// `host[:port]/...` naming a loopback host.
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "localhost" | "127.0.0.1")
}

/// Whether a body uses the placeholder.
pub fn has_placeholder(body: Option<&str>) -> bool {
    body.is_some_and(|b| b.contains(PLACEHOLDER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_https_links_go_into_headers() {
        for (url, ok) in [
            ("https://mail.example.com/unsubscribe/abc-_9", true),
            ("https://mail.example.com:8443/u/unsubscribe/x", true),
            ("http://127.0.0.1:8787/unsubscribe/x", true),
            ("http://localhost/unsubscribe/x", true),
            ("http://[::1]:80/unsubscribe/x", false),
            ("http://mail.example.com/unsubscribe/x", false),
            ("http://127.0.0.1.example.com/unsubscribe/x", false),
            ("ftp://mail.example.com/x", false),
            ("https:///unsubscribe/x", false),
            (
                "https://mail.example.com/unsubscribe/x>, <https://evil.example",
                false,
            ),
            ("https://mail.example.com/unsubscribe/x\r\nBcc: a@b", false),
            ("https://mail.example.com/?a=1&b=\"2\"", false),
            ("https://mail.example.com/<script>", false),
        ] {
            assert_eq!(OneClick::new(url).is_some(), ok, "{url}");
        }
        assert!(OneClick::new(&format!("https://a.example/{}", "x".repeat(900))).is_none());
    }

    #[test]
    fn headers_and_placeholder() {
        let link = OneClick::new("https://mail.example.com/unsubscribe/t0k").unwrap();
        assert_eq!(
            link.header_fields(),
            [
                (
                    "List-Unsubscribe",
                    "<https://mail.example.com/unsubscribe/t0k>".to_string()
                ),
                (
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_string()
                ),
            ]
        );
        assert_eq!(
            link.fill("a {{unsubscribe_url}} b {{unsubscribe_url}}"),
            "a https://mail.example.com/unsubscribe/t0k b https://mail.example.com/unsubscribe/t0k"
        );
        assert!(matches!(link.fill("no link"), Cow::Borrowed("no link")));
        assert!(has_placeholder(Some("x{{unsubscribe_url}}")));
        assert!(!has_placeholder(Some("x{{ unsubscribe_url }}")));
        assert!(!has_placeholder(None));
    }
}
