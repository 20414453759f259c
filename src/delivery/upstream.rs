//! One upstream smarthost as configured: host, port, transport security,
//! credentials and the provider it is (whose event header edgerelay adds),
//! parsed from `SMTP_UPSTREAMS` URLs. Entries of the API kinds
//! (`send-email://`, `ses://`, `mailgun://`) are read by `transport` and
//! carried in [`Upstream::api`].
//!
//! Owns the URL format and its defaults. Must not: connect, or let a password
//! reach a log line or an error message: errors describe what is wrong
//! without quoting any part of the entry.

use std::fmt;

use super::transport::ApiUpstream;
use crate::inbound::providers::Provider;

/// How the connection to an upstream is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamSecurity {
    /// TLS from the first byte (`smtps://`, port 465).
    ImplicitTls,
    /// Plaintext greeting, then STARTTLS, which the upstream must offer (`smtp://`, 587).
    StartTls,
    /// No TLS at all (`smtp+insecure://`). Only for local development servers.
    Insecure,
}

/// One upstream smarthost.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub security: UpstreamSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The smarthost provider it is, whose custom-data header carries
    /// edgerelay's message id into the provider's events: `?provider=`, or
    /// known by its host; `None` for any other server (or `?provider=none`).
    pub provider: Option<Provider>,
    /// An upstream reached through an API instead of SMTP; `None` for the
    /// SMTP schemes.
    pub api: Option<ApiUpstream>,
}

impl fmt::Debug for Upstream {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("provider", &self.provider)
            .field("api", &self.api)
            .finish()
    }
}

impl Upstream {
    /// Parses `scheme://[user[:pass]@]host[:port][?provider=name]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            "is not a URL (expected smtps://, smtp:// or smtp+insecure://)".to_string()
        })?;
        if let Some(api) = ApiUpstream::parse(scheme, rest) {
            let api = api?;
            return Ok(Upstream {
                host: api.label(),
                port: 443,
                security: UpstreamSecurity::ImplicitTls,
                username: None,
                password: None,
                provider: api.provider(),
                api: Some(api),
            });
        }
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "smtps" => (UpstreamSecurity::ImplicitTls, 465),
            "smtp" => (UpstreamSecurity::StartTls, 587),
            "smtp+insecure" => (UpstreamSecurity::Insecure, 25),
            _ => {
                return Err(
                    "has an unknown scheme (expected smtps, smtp, smtp+insecure, send-email, ses \
                     or mailgun)"
                        .into(),
                );
            }
        };
        // The query follows the host: a `?` in the credentials is theirs.
        let host_start = rest.rfind('@').map_or(0, |at| at + 1);
        let (rest, query) = match rest.get(host_start..).and_then(|h| h.find('?')) {
            Some(q) => (
                rest.get(..host_start + q).unwrap_or_default(),
                rest.get(host_start + q + 1..),
            ),
            None => (rest, None),
        };
        let rest = rest.trim_end_matches('/');
        let named = match query {
            None => None,
            Some(query) => Some(parse_query(query)?),
        };
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(percent_decode(user)?), Some(percent_decode(pass)?)),
                None => (Some(percent_decode(u)?), None),
            },
        };
        let (host, port) = split_host_port(hostport, default_port)?;
        if host.is_empty()
            || host
                .bytes()
                .any(|b| b.is_ascii_control() || b == b' ' || b == b'/')
        {
            return Err("has no valid host".into());
        }
        if username.is_some() != password.is_some() {
            return Err("credentials need both a user name and a password".into());
        }
        let provider = match named {
            Some(named) => named,
            None => provider_of_host(&host),
        };
        Ok(Upstream {
            host,
            port,
            security,
            username,
            password,
            provider,
            api: None,
        })
    }

    /// A short label for logs, records and routing rules: `host:port`, or
    /// the API kind's label (`ses:eu-west-1`, see `transport`).
    pub fn label(&self) -> String {
        match &self.api {
            Some(api) => api.label(),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// `provider=<name>` (`none`: no provider header even for a known host).
fn parse_query(query: &str) -> Result<Option<Provider>, String> {
    let mut provider = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "provider" || provider.is_some() {
            return Err(
                "has an unknown or repeated query parameter (only `provider` is read)".into(),
            );
        }
        provider = Some(match value.to_ascii_lowercase().as_str() {
            "sendgrid" => Some(Provider::SendGrid),
            "mailgun" => Some(Provider::Mailgun),
            "postmark" => Some(Provider::Postmark),
            "ses" => Some(Provider::Ses),
            "none" => None,
            _ => {
                return Err(
                    "has a `provider` that is not sendgrid, mailgun, postmark, ses or none".into(),
                );
            }
        });
    }
    provider.ok_or_else(|| "has an empty query".to_string())
}

/// The provider a smarthost's host name says it is.
fn provider_of_host(host: &str) -> Option<Provider> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.as_str() {
        "smtp.sendgrid.net" => Some(Provider::SendGrid),
        "smtp.mailgun.org" | "smtp.eu.mailgun.org" => Some(Provider::Mailgun),
        "smtp.postmarkapp.com" | "smtp-broadcasts.postmarkapp.com" => Some(Provider::Postmark),
        _ => {
            // email-smtp.<region>.amazonaws.com (and its FIPS variant).
            let region = host
                .strip_prefix("email-smtp.")
                .or_else(|| host.strip_prefix("email-smtp-fips."))
                .and_then(|h| h.strip_suffix(".amazonaws.com"));
            region
                .filter(|r| {
                    !r.is_empty()
                        && r.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                .map(|_| Provider::Ses)
        }
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    // Bracketed IPv6 literal: [::1]:2525
    if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "the IPv6 address has no closing bracket".to_string())?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => default_port,
            None => return Err("has something after the IPv6 address".into()),
        };
        return Ok((host.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), parse_port(port)?)),
        None => Ok((hostport.to_string(), default_port)),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port is not a number between 1 and 65535".into()),
        Ok(n) => Ok(n),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-escape in credentials".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_string())
}

#[cfg(test)]
mod provider_tests {
    use super::*;

    #[test]
    fn the_provider_is_named_or_known_by_its_host() {
        let table: &[(&str, Option<Provider>)] = &[
            (
                "smtps://apikey:SG.x@smtp.sendgrid.net:465",
                Some(Provider::SendGrid),
            ),
            ("smtp://u:p@SMTP.Mailgun.org", Some(Provider::Mailgun)),
            (
                "smtp://u:p@smtp.eu.mailgun.org:2525",
                Some(Provider::Mailgun),
            ),
            ("smtp://u:p@smtp.postmarkapp.com", Some(Provider::Postmark)),
            (
                "smtps://u:p@email-smtp.eu-west-1.amazonaws.com",
                Some(Provider::Ses),
            ),
            ("smtps://u:p@email-smtp.amazonaws.com.evil.test", None),
            ("smtps://u:p@smtp.sendgrid.net.evil.test", None),
            ("smtp://u:p@mail.example.net", None),
            (
                "smtp+insecure://127.0.0.1:2525?provider=sendgrid",
                Some(Provider::SendGrid),
            ),
            (
                "smtp+insecure://127.0.0.1:2525/?provider=SES",
                Some(Provider::Ses),
            ),
            ("smtps://u:p@smtp.sendgrid.net?provider=none", None),
            (
                "smtps://u:p@relay.example.net:465?provider=mailgun",
                Some(Provider::Mailgun),
            ),
        ];
        for (url, want) in table {
            let u = Upstream::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(u.provider, *want, "{url}");
        }
        // A `?` in the credentials belongs to them.
        let u =
            Upstream::parse("smtps://user:pa?ss@relay.example.net:465?provider=postmark").unwrap();
        assert_eq!(u.password.as_deref(), Some("pa?ss"));
        assert_eq!((u.host.as_str(), u.port), ("relay.example.net", 465));
        assert_eq!(u.provider, Some(Provider::Postmark));
    }

    #[test]
    fn a_bad_query_is_named_without_the_entry() {
        for url in [
            "smtps://u:secret@h?provider=sparkpost",
            "smtps://u:secret@h?provider=sendgrid&provider=mailgun",
            "smtps://u:secret@h?region=eu",
            "smtps://u:secret@h?",
        ] {
            let e = Upstream::parse(url).unwrap_err();
            assert!(
                !e.contains("secret") && !e.contains("sparkpost"),
                "{url}: {e}"
            );
        }
    }
}
