//! One upstream smarthost as configured: host, port, transport security and
//! credentials, parsed from `SMTP_UPSTREAMS` URLs.
//!
//! Owns the URL format and its defaults. Must not: connect, or let a password
//! reach a log line or an error message: errors describe what is wrong
//! without quoting any part of the entry.

use std::fmt;

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
            .finish()
    }
}

impl Upstream {
    /// Parses `scheme://[user[:pass]@]host[:port]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            "is not a URL (expected smtps://, smtp:// or smtp+insecure://)".to_string()
        })?;
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "smtps" => (UpstreamSecurity::ImplicitTls, 465),
            "smtp" => (UpstreamSecurity::StartTls, 587),
            "smtp+insecure" => (UpstreamSecurity::Insecure, 25),
            _ => {
                return Err("has an unknown scheme (expected smtps, smtp or smtp+insecure)".into());
            }
        };
        let rest = rest.trim_end_matches('/');
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
        Ok(Upstream {
            host,
            port,
            security,
            username,
            password,
        })
    }

    /// A short label for logs and records: `host:port`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
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
