//! Mailgun's `POST /v3/{domain}/messages.mime`: the entry
//! `mailgun://api:KEY@DOMAIN[?region=eu|us][&endpoint=URL]`, the request
//! (basic auth `api:KEY`, a multipart form with each `to`, the `message`
//! file and `v:edgerelay_id`) and Mailgun's documented answers classified.
//! Must not: perform I/O.

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::common::{
    Class, Classified, HttpAnswer, HttpRequest, decode, endpoint_override, one_line,
};
use crate::inbound::providers::MESSAGE_ID_FIELD;

/// Mailgun takes at most 1,000 recipients per message.
pub const MAX_RECIPIENTS: u32 = 1_000;

/// Mailgun's documented maximum message size, 25 MB.
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct MailgunUpstream {
    pub domain: String,
    pub api_key: String,
    /// `https://api.mailgun.net` (US), `https://api.eu.mailgun.net` (EU),
    /// or the `endpoint` override.
    pub base_url: String,
}

impl MailgunUpstream {
    pub fn parse(rest: &str) -> Result<MailgunUpstream, String> {
        let (userinfo, domain, query) = super::common::split_entry(rest);
        let key = userinfo
            .map(|u| {
                u.split_once(':')
                    .map_or(u, |(user, key)| if user == "api" { key } else { u })
            })
            .ok_or_else(|| "a mailgun:// entry needs api:KEY@ before the domain".to_string())?;
        let api_key = decode(key)?;
        if api_key.is_empty() {
            return Err("a mailgun:// entry needs an API key".into());
        }
        let domain = domain.to_ascii_lowercase();
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err("a mailgun:// entry needs its sending domain as the host".into());
        }
        let mut base_url = "https://api.mailgun.net".to_string();
        let mut endpoint = None;
        for (name, value) in super::common::query_pairs(query.unwrap_or_default()) {
            match (name, value.to_ascii_lowercase().as_str()) {
                ("region", "us") => base_url = "https://api.mailgun.net".into(),
                ("region", "eu") => base_url = "https://api.eu.mailgun.net".into(),
                ("region", _) => return Err("has a `region` that is not us or eu".into()),
                ("endpoint", _) => endpoint = Some(endpoint_override(value)?),
                _ => {
                    return Err(
                        "has a query parameter mailgun:// does not read (only `region`, `endpoint`)"
                            .into(),
                    );
                }
            }
        }
        Ok(MailgunUpstream {
            domain,
            api_key,
            base_url: endpoint.unwrap_or(base_url),
        })
    }

    /// The request that sends `message` to `recipients`, with edgerelay's
    /// message id as the `edgerelay_id` user variable of Mailgun's events.
    pub fn request(&self, recipients: &[String], message_id: &str, message: &[u8]) -> HttpRequest {
        // The boundary comes from the message's own hash: it cannot occur
        // in the message unless the message contains its own hash.
        let boundary = format!("edgerelay-{}", hex32(&Sha256::digest(message)));
        let mut body = Vec::with_capacity(message.len() + 512);
        let mut field = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        for r in recipients {
            field("to", &r.replace(['\r', '\n', '"'], ""));
        }
        if super::super::provider_header::header(
            crate::inbound::providers::Provider::Mailgun,
            message_id,
        )
        .is_some()
        {
            field(&format!("v:{MESSAGE_ID_FIELD}"), message_id);
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"message\"; \
                 filename=\"message.mime\"\r\nContent-Type: message/rfc822\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(message);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("api:{}", self.api_key));
        HttpRequest {
            url: format!("{}/v3/{}/messages.mime", self.base_url, self.domain),
            headers: vec![
                (
                    "content-type".into(),
                    format!("multipart/form-data; boundary={boundary}"),
                ),
                ("authorization".into(), format!("Basic {auth}")),
            ],
            body,
        }
    }
}

fn hex32(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Mailgun's answers: 200 with `id`; 400 a bad request (about the message,
/// unless it names the domain or the sender's setup), 401 and 403 the key,
/// 402 the account, 404 the domain, 413 too large, 429 throttled, 5xx
/// Mailgun's trouble.
pub fn classify(answer: &HttpAnswer) -> Classified {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(one_line)
        .unwrap_or_else(|| one_line(&String::from_utf8_lossy(&answer.body)));
    if (200..300).contains(&answer.status) {
        let id = body.get("id").and_then(Value::as_str).map(one_line);
        return match id {
            Some(id) => Classified::new(Class::Delivered(Some(id)), message),
            None => Classified::new(Class::Transient, "a success without an id"),
        };
    }
    let lower = message.to_ascii_lowercase();
    let class = match answer.status {
        400 if lower.contains("domain")
            && (lower.contains("not found") || lower.contains("disabled")) =>
        {
            Class::Configuration
        }
        400 if lower.contains("sandbox") || lower.contains("not allowed to send") => {
            Class::Configuration
        }
        400 if lower.contains("rate limit") || lower.contains("too many") => Class::Throttled,
        status => super::common::class_of_status(status),
    };
    Classified::new(class, format!("HTTP {}: {message}", answer.status))
}
