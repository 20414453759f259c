//! Amazon SES event notifications delivered through Amazon SNS: an SNS
//! message (JSON) whose `Message` is SES's notification (Bounce, Complaint,
//! Delivery, DeliveryDelay), signed by SNS with RSA over the message's
//! fields, with the signing certificate at `SigningCertURL`.
//!
//! edgerelay only accepts `SignatureVersion` 2 (SHA256withRSA): SNS topics
//! can be set to it, and version 1 (SHA1) is not worth trusting. The
//! certificate is fetched by the edge, only from an `https://sns.<region>.
//! amazonaws.com/...pem` URL (trusted through TLS, as the AWS SDKs do); the
//! topic must be one the settings list. edgerelay's message id travels as
//! an SES message tag (`X-SES-MESSAGE-TAGS: edgerelay_id=...`).
//! Owns: the SNS string to sign, the URL rule, verification against a
//! certificate, and reading SES's notification. Must not: fetch anything.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::Value;
use sha2::Sha256;

use crate::events::BounceClass;

use super::{MESSAGE_ID_FIELD, Provider, ProviderEvent, ProviderEventKind, Refused, quoted};

/// An SNS message as posted to the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// `Notification`, `SubscriptionConfirmation` or
    /// `UnsubscribeConfirmation`.
    pub kind: String,
    pub topic_arn: String,
    pub message: String,
    pub signing_cert_url: String,
    /// For a subscription confirmation: the URL that confirms it.
    pub subscribe_url: Option<String>,
    fields: Vec<(&'static str, String)>,
    signature: String,
    signature_version: String,
}

impl SnsMessage {
    /// Reads the JSON an SNS endpoint receives.
    pub fn parse(body: &[u8]) -> Result<SnsMessage, Refused> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Refused::Malformed(format!("not JSON: {e}")))?;
        let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
        let kind = text("Type").ok_or_else(|| Refused::Malformed("no Type".into()))?;
        // The fields signed, in the order SNS signs them.
        let names: &[&'static str] = match kind.as_str() {
            "Notification" => &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ],
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ],
            other => return Err(Refused::Malformed(format!("unknown Type {other}"))),
        };
        let mut fields = Vec::with_capacity(names.len());
        for name in names {
            match text(name) {
                Some(value) => fields.push((*name, value)),
                // Only a notification's Subject is optional.
                None if *name == "Subject" => {}
                None => return Err(Refused::Malformed(format!("no {name}"))),
            }
        }
        Ok(SnsMessage {
            topic_arn: text("TopicArn").unwrap_or_default(),
            message: text("Message").unwrap_or_default(),
            signing_cert_url: text("SigningCertURL").ok_or(Refused::Unsigned)?,
            subscribe_url: text("SubscribeURL"),
            signature: text("Signature").ok_or(Refused::Unsigned)?,
            signature_version: text("SignatureVersion").ok_or(Refused::Unsigned)?,
            kind,
            fields,
        })
    }

    /// What SNS signed: each field's name and value on their own lines.
    pub fn string_to_sign(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
        out
    }

    /// Verifies the signature with the certificate (PEM) fetched from
    /// `signing_cert_url`.
    pub fn verify(&self, certificate_pem: &str) -> Result<(), Refused> {
        if self.signature_version != "2" {
            return Err(Refused::Malformed(format!(
                "SignatureVersion {} is not accepted; set the topic's SignatureVersion to 2",
                self.signature_version.chars().take(4).collect::<String>()
            )));
        }
        let key = public_key(certificate_pem).ok_or(Refused::BadSignature)?;
        let raw = STANDARD
            .decode(self.signature.trim())
            .map_err(|_| Refused::BadSignature)?;
        let signature = Signature::try_from(raw.as_slice()).map_err(|_| Refused::BadSignature)?;
        VerifyingKey::<Sha256>::new(key)
            .verify(self.string_to_sign().as_bytes(), &signature)
            .map_err(|_| Refused::BadSignature)
    }
}

/// Whether SNS's signing certificate may be fetched from `url`:
/// `https://sns.<region>.amazonaws.com/<name>.pem` (or `.amazonaws.com.cn`),
/// no port, no credentials, no query.
pub fn cert_url_allowed(url: &str) -> bool {
    sns_path(url).is_some_and(|path| {
        path.ends_with(".pem") && !path.contains(['?', '#', '@', '\\']) && !path.contains("..")
    })
}

/// Whether a subscription may be confirmed by fetching `url` (a
/// `SubscribeURL`): `https://sns.<region>.amazonaws.com/?Action=ConfirmSubscription&...`.
pub fn subscribe_url_allowed(url: &str) -> bool {
    sns_path(url).is_some_and(|path| {
        path.starts_with("?Action=ConfirmSubscription&")
            && !path.contains(['#', '@', '\\'])
            && path.bytes().all(|b| b.is_ascii_graphic())
    })
}

/// The path (after the first `/`) of an https URL on SNS's own host.
fn sns_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let region_host = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
        .and_then(|h| h.strip_prefix("sns."));
    let region_ok = region_host.is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    region_ok.then_some(path)
}

/// The RSA public key of a PEM certificate.
fn public_key(pem: &str) -> Option<RsaPublicKey> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    let der = STANDARD.decode(body.trim()).ok()?;
    RsaPublicKey::from_public_key_der(spki_of(&der)?).ok()
}

/// One DER element at the start of `input`: (tag, whole element, contents).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, input.get(..end)?, input.get(header..end)?))
}

/// The SubjectPublicKeyInfo of an X.509 certificate (DER): the seventh
/// element of tbsCertificate, or the sixth without the explicit version.
fn spki_of(cert: &[u8]) -> Option<&[u8]> {
    let (_, _, certificate) = element(cert)?;
    let (_, _, mut tbs) = element(certificate)?;
    let mut index = 0;
    while !tbs.is_empty() {
        let (tag, whole, _) = element(tbs)?;
        tbs = tbs.get(whole.len()..)?;
        if index == 0 && tag == 0xa0 {
            continue;
        }
        if index == 5 {
            return Some(whole);
        }
        index += 1;
    }
    None
}

/// Reads SES's notification (the SNS `Message`): one event per recipient.
pub fn read_notification(message: &str) -> Result<Vec<ProviderEvent>, Refused> {
    let v: Value = serde_json::from_str(message)
        .map_err(|e| Refused::Malformed(format!("the SES notification is not JSON: {e}")))?;
    let kind = v
        .get("notificationType")
        .or_else(|| v.get("eventType"))
        .and_then(Value::as_str)
        .ok_or_else(|| Refused::Malformed("no notificationType or eventType".into()))?;
    let mail = v.get("mail");
    let provider_id = mail
        .and_then(|m| m.get("messageId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    // Tags are lists of values per name.
    let message_id = mail
        .and_then(|m| m.get("tags"))
        .and_then(|t| t.get(MESSAGE_ID_FIELD))
        .and_then(|t| t.get(0))
        .and_then(Value::as_str)
        .map(str::to_string);
    let event = |recipient: &str, kind: ProviderEventKind, reply| ProviderEvent {
        provider: Provider::Ses,
        kind,
        message_id: message_id.clone(),
        recipient: recipient.to_string(),
        provider_id: provider_id.clone(),
        at_ms: None,
        reply,
    };
    let list = |section: &str, field: &str| -> Vec<Value> {
        v.get(section)
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let address = |r: &Value| -> Option<String> {
        r.get("emailAddress")
            .and_then(Value::as_str)
            .or_else(|| r.as_str())
            .map(str::to_string)
    };
    let events = match kind {
        "Bounce" => {
            let permanent = v
                .get("bounce")
                .and_then(|b| b.get("bounceType"))
                .and_then(Value::as_str)
                == Some("Permanent");
            list("bounce", "bouncedRecipients")
                .iter()
                .filter_map(|r| {
                    let to = address(r)?;
                    let status = r.get("status").and_then(Value::as_str);
                    let diagnostic = r
                        .get("diagnosticCode")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let code = if permanent { 550 } else { 450 };
                    let reply = quoted(code, status, diagnostic.trim_start_matches("smtp;").trim());
                    let kind = if permanent {
                        let class = BounceClass::of(code, reply.enhanced.as_deref(), &reply.text);
                        ProviderEventKind::Bounced {
                            class: if class == BounceClass::Transient {
                                BounceClass::Soft
                            } else {
                                class
                            },
                        }
                    } else {
                        ProviderEventKind::Delayed
                    };
                    Some(event(&to, kind, Some(reply)))
                })
                .collect()
        }
        "Complaint" => list("complaint", "complainedRecipients")
            .iter()
            .filter_map(|r| Some(event(&address(r)?, ProviderEventKind::Complained, None)))
            .collect(),
        "Delivery" => list("delivery", "recipients")
            .iter()
            .filter_map(|r| Some(event(&address(r)?, ProviderEventKind::Delivered, None)))
            .collect(),
        "DeliveryDelay" => list("deliveryDelay", "delayedRecipients")
            .iter()
            .filter_map(|r| Some(event(&address(r)?, ProviderEventKind::Delayed, None)))
            .collect(),
        other => {
            let to = mail
                .and_then(|m| m.get("destination"))
                .and_then(|d| d.get(0))
                .and_then(Value::as_str)
                .unwrap_or_default();
            vec![event(to, ProviderEventKind::Other(other.to_string()), None)]
        }
    };
    Ok(events)
}

#[cfg(test)]
mod tests;
