//! What the server said it supports in its EHLO reply (RFC 5321 §4.1.1.1).
//!
//! Owns: reading the keywords (case-insensitive, unknown ones ignored, the
//! pre-standard `AUTH=` form too). Must not: decide which extension is used
//! (the session and transactions do, within `SmtpConfig`). The session
//! discards these after STARTTLS and reads them anew (RFC 3207 §4.2), and a
//! HELO fallback leaves them all off.

use super::reply::Reply;

/// SASL mechanisms the server advertised that this client can use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthMechanisms {
    pub plain: bool,
    pub login: bool,
    pub xoauth2: bool,
}

/// Extensions from the EHLO reply. After a HELO fallback everything is off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 3030 (BDAT).
    pub chunking: bool,
    /// RFC 1870: `Some(limit)` when SIZE was advertised; `Some(0)` means
    /// advertised without a fixed limit.
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
    /// RFC 3461 (delivery status notifications).
    pub dsn: bool,
    /// RFC 4954.
    pub auth: AuthMechanisms,
}

impl Capabilities {
    /// Reads the keywords of a 250 EHLO reply. The first line is the
    /// server's greeting and carries no keyword. Unknown keywords are
    /// ignored; keywords are case-insensitive.
    pub fn from_ehlo_reply(reply: &Reply) -> Self {
        let mut capabilities = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => capabilities.pipelining = true,
                "CHUNKING" => capabilities.chunking = true,
                "8BITMIME" => capabilities.eight_bit_mime = true,
                "SMTPUTF8" => capabilities.smtputf8 = true,
                "STARTTLS" => capabilities.starttls = true,
                "ENHANCEDSTATUSCODES" => capabilities.enhanced_status_codes = true,
                "DSN" => capabilities.dsn = true,
                // A limit that does not parse is treated as "no fixed limit":
                // the server will still reject an oversized message itself.
                "SIZE" => {
                    capabilities.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
                }
                "AUTH" => capabilities.auth.add(words),
                // Pre-standard form still sent by some servers.
                _ if keyword.starts_with("AUTH=") => {
                    let first = keyword.get("AUTH=".len()..).unwrap_or_default();
                    capabilities.auth.add(std::iter::once(first).chain(words));
                }
                _ => {}
            }
        }
        capabilities
    }
}

impl AuthMechanisms {
    fn add<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        for name in names {
            match name.to_ascii_uppercase().as_str() {
                "PLAIN" => self.plain = true,
                "LOGIN" => self.login = true,
                "XOAUTH2" => self.xoauth2 = true,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Reply {
        Reply {
            code: 250,
            enhanced: None,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn reads_all_known_keywords() {
        let reply = ehlo(&[
            "mx.example greets you",
            "PIPELINING",
            "chunking",
            "SIZE 35882577",
            "8BITMIME",
            "SMTPUTF8",
            "STARTTLS",
            "ENHANCEDSTATUSCODES",
            "AUTH LOGIN plain XOAUTH2 CRAM-MD5",
            "DSN",
        ]);
        let expected = Capabilities {
            pipelining: true,
            chunking: true,
            size: Some(35_882_577),
            eight_bit_mime: true,
            smtputf8: true,
            starttls: true,
            enhanced_status_codes: true,
            dsn: true,
            auth: AuthMechanisms {
                plain: true,
                login: true,
                xoauth2: true,
            },
        };
        assert_eq!(Capabilities::from_ehlo_reply(&reply), expected);
    }

    #[test]
    fn greeting_line_is_not_a_keyword() {
        let caps = Capabilities::from_ehlo_reply(&ehlo(&["PIPELINING"]));
        assert!(!caps.pipelining);
    }

    #[test]
    fn size_without_number_means_no_fixed_limit() {
        for line in ["SIZE", "SIZE 0", "SIZE lots"] {
            let caps = Capabilities::from_ehlo_reply(&ehlo(&["mx", line]));
            assert_eq!(caps.size, Some(0), "{line}");
        }
        assert_eq!(Capabilities::from_ehlo_reply(&ehlo(&["mx"])).size, None);
    }

    #[test]
    fn legacy_auth_equals_form() {
        let caps = Capabilities::from_ehlo_reply(&ehlo(&["mx", "AUTH=LOGIN PLAIN"]));
        assert!(caps.auth.login && caps.auth.plain && !caps.auth.xoauth2);
    }
}
