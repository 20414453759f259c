//! What the API upstream kinds share: the HTTP request the edge sends, the
//! answer it reads back, the classes an answer falls in (and the SMTP-like
//! reply each stands for), and the parsing helpers of their entries.
//! Must not: perform I/O, or quote credentials in an error.

use crate::smtp::{
    EnhancedCode, Outcome, OutcomeKind, RecipientOutcome, Reply, TransactionOutcome,
};

/// An HTTP request for the edge to send as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What an HTTP API answered, as the edge read it (the body bounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// `x-amzn-ErrorType`, when present.
    pub error_type: Option<String>,
    pub body: Vec<u8>,
}

/// What one answer means, like an SMTP reply's class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Taken; the provider's id for the message when it gave one.
    Delivered(Option<String>),
    /// Slow down: the message waits, it did not fail.
    Throttled,
    /// Try again later (the provider's trouble, or a timeout).
    Transient,
    /// This message will not go, here or anywhere.
    Permanent,
    /// This upstream is set up wrong (credentials, domain, account).
    Configuration,
}

/// A classified answer with its reason, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub class: Class,
    pub text: String,
}

impl Classified {
    pub fn new(class: Class, text: impl Into<String>) -> Self {
        Classified {
            class,
            text: text.into(),
        }
    }

    /// The SMTP-like reply that stands for it in records and for shaping.
    pub fn reply(&self, kind_label: &str) -> Reply {
        let text = one_line(&self.text);
        let (code, enhanced, text) = match &self.class {
            Class::Delivered(Some(id)) => (
                250,
                (2, 0, 0),
                format!("{kind_label} accepted the message as {}", one_line(id)),
            ),
            Class::Delivered(None) => {
                (250, (2, 0, 0), format!("{kind_label} accepted the message"))
            }
            Class::Throttled => (454, (4, 7, 0), format!("Throttling: {kind_label}: {text}")),
            Class::Transient => (451, (4, 3, 0), format!("{kind_label}: {text}")),
            Class::Permanent => (554, (5, 6, 0), format!("{kind_label}: {text}")),
            Class::Configuration => (535, (5, 7, 8), format!("{kind_label}: {text}")),
        };
        let mut reply = Reply::new(code, &text);
        reply.enhanced = Some(EnhancedCode {
            class: enhanced.0,
            subject: enhanced.1,
            detail: enhanced.2,
        });
        reply
    }

    pub fn outcome_kind(&self) -> OutcomeKind {
        match self.class {
            Class::Delivered(_) => OutcomeKind::Delivered,
            Class::Throttled | Class::Transient => OutcomeKind::Transient,
            Class::Permanent => OutcomeKind::Permanent,
            Class::Configuration => OutcomeKind::Configuration,
        }
    }

    /// Whether the upstream itself is in trouble, so the rest of the batch
    /// should not be offered to it now (the session ends with this as its
    /// failure).
    pub fn ends_session(&self) -> bool {
        matches!(
            self.class,
            Class::Throttled | Class::Transient | Class::Configuration
        )
    }

    /// The job's outcome: every recipient shares the answer (one request
    /// carries them all).
    pub fn transaction(
        &self,
        id: u64,
        recipients: &[String],
        kind_label: &str,
    ) -> TransactionOutcome {
        let outcome = self.outcome(kind_label);
        TransactionOutcome {
            id,
            outcome: outcome.clone(),
            recipients: recipients
                .iter()
                .map(|address| RecipientOutcome {
                    address: address.clone(),
                    outcome: outcome.clone(),
                })
                .collect(),
        }
    }

    pub fn outcome(&self, kind_label: &str) -> Outcome {
        Outcome {
            kind: self.outcome_kind(),
            cause: crate::smtp::Cause::Reply,
            reply: Some(self.reply(kind_label)),
        }
    }
}

/// The class of a bare HTTP status, when the body names nothing more
/// precise: 429 throttled, 5xx and 408 transient, 401/403 configuration,
/// 413 permanent, other 4xx permanent.
pub fn class_of_status(status: u16) -> Class {
    match status {
        200..=299 => Class::Delivered(None),
        429 => Class::Throttled,
        408 | 500..=599 => Class::Transient,
        401..=404 => Class::Configuration,
        _ => Class::Permanent,
    }
}

/// At most one line of 200 characters of a provider's text.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Whether an endpoint override may be used: `https://` anywhere,
/// `http://` only on loopback. Returns the base URL without a trailing
/// slash.
pub fn endpoint_override(value: &str) -> Result<String, String> {
    let value = value.trim().trim_end_matches('/');
    let (https, authority) = if let Some(rest) = value.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = value.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("has an `endpoint` that is not an https:// URL".into());
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err("has an `endpoint` that is not a bare scheme://host[:port]".into());
    }
    if !https {
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        let loopback = host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(
                "has an http:// `endpoint` that is not on loopback (only https elsewhere)".into(),
            );
        }
    }
    Ok(value.to_string())
}

/// `name=value` pairs of a query (no percent-decoding: the values read
/// here are host names, regions and URLs).
pub fn query_pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// Percent-decodes credentials; errors never quote them.
pub fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'%') {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-escape in credentials".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.extend(bytes.get(i));
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_string())
}

/// Splits `userinfo@host?query` into its parts (the last `@` before the
/// query starts the host; a `?` inside the credentials is theirs).
pub fn split_entry(rest: &str) -> (Option<&str>, &str, Option<&str>) {
    let host_start = rest.rfind('@').map_or(0, |at| at + 1);
    let userinfo = rest
        .get(..host_start.saturating_sub(1))
        .filter(|_| host_start > 0);
    let tail = rest.get(host_start..).unwrap_or_default();
    let (host, query) = match tail.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (tail, None),
    };
    (userinfo, host.trim_end_matches('/'), query)
}
