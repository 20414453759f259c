//! The provider event receivers a deployment has (`PROVIDER_WEBHOOKS`):
//! each endpoint's id (the last segment of its URL), its provider, the
//! tenant whose messages it may speak for, and what verifies its requests.
//!
//! Owns: reading the setting's JSON into [`ProviderEndpoint`]s. Must not:
//! put any part of a value into an error (the entry is named by its index
//! and field), or keep a secret it does not need (Postmark's password is
//! kept only as the digest it is checked against), or show a secret in
//! `Debug`.

use std::fmt;

use p256::ecdsa::VerifyingKey;
use serde_json::{Map, Value};

use super::{Provider, postmark, sendgrid};
use crate::config::{ConfigError, err};

/// The setting these are read from.
pub const SETTING: &str = "PROVIDER_WEBHOOKS";

/// What proves a request to one endpoint came from its provider.
#[derive(Clone, PartialEq, Eq)]
pub enum Verification {
    /// Mailgun's webhook signing keys (HMAC-SHA256); more than one while
    /// one is rotated.
    Mailgun { signing_keys: Vec<String> },
    /// SendGrid's Event Webhook verification keys (ECDSA P-256).
    SendGrid { public_keys: Vec<VerifyingKey> },
    /// SHA-256 digests of the `user:password` pairs in Postmark's webhook
    /// URL.
    Postmark { credential_digests: Vec<[u8; 32]> },
    /// The SNS topics whose notifications are taken (each message's own
    /// signature verifies it).
    Ses { topic_arns: Vec<String> },
}

impl fmt::Debug for Verification {
    // Keys and digests never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::Mailgun { signing_keys } => {
                write!(f, "Mailgun({} signing keys)", signing_keys.len())
            }
            Verification::SendGrid { public_keys } => {
                write!(f, "SendGrid({} verification keys)", public_keys.len())
            }
            Verification::Postmark { credential_digests } => {
                write!(f, "Postmark({} credentials)", credential_digests.len())
            }
            Verification::Ses { topic_arns } => write!(f, "Ses({topic_arns:?})"),
        }
    }
}

impl Verification {
    pub fn provider(&self) -> Provider {
        match self {
            Verification::Mailgun { .. } => Provider::Mailgun,
            Verification::SendGrid { .. } => Provider::SendGrid,
            Verification::Postmark { .. } => Provider::Postmark,
            Verification::Ses { .. } => Provider::Ses,
        }
    }
}

/// One receiver: `POST /v1/provider-events/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoint {
    /// 1 to 64 letters, digits, `_` or `-`: a URL segment as it is.
    pub id: String,
    /// Only this tenant's messages may be changed through it; `None`: any
    /// tenant's (a smarthost account shared by all of them).
    pub tenant: Option<String>,
    pub verification: Verification,
}

impl ProviderEndpoint {
    pub fn provider(&self) -> Provider {
        self.verification.provider()
    }
}

/// The endpoint an id names.
pub fn find<'a>(endpoints: &'a [ProviderEndpoint], id: &str) -> Option<&'a ProviderEndpoint> {
    endpoints.iter().find(|e| e.id == id)
}

const FORMAT: &str = "must be a JSON list of endpoints: {\"id\", \"provider\": \"mailgun\" | \
     \"sendgrid\" | \"postmark\" | \"ses\", optional \"tenant\", and the provider's verification: \
     mailgun \"signing_key\", sendgrid \"public_key\", postmark \"username\" and \"password\", \
     ses \"topic_arns\"}";

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The tenant rule of `API_KEYS`, checked here too: a tenant nobody's keys
/// can name would see nothing.
fn valid_tenant(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// One entry's problem, naming it by position (from 1) and field.
fn problem(index: usize, field: &str, rule: &str) -> ConfigError {
    err(SETTING, format!("entry {index}: `{field}` {rule}"))
}

/// A string, or a non-empty list of strings (several while one rotates).
fn strings(
    entry: &Map<String, Value>,
    index: usize,
    field: &str,
) -> Result<Vec<String>, ConfigError> {
    let bad = || problem(index, field, "must be a non-empty string or a list of them");
    let list = match entry.get(field) {
        None => return Err(problem(index, field, "is required for this provider")),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
        return Err(bad());
    }
    Ok(list.into_iter().map(|s| s.trim().to_string()).collect())
}

fn text<'a>(
    entry: &'a Map<String, Value>,
    index: usize,
    field: &str,
) -> Result<&'a str, ConfigError> {
    match entry.get(field) {
        None => Err(problem(index, field, "is required for this provider")),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(problem(index, field, "must be a non-empty string")),
    }
}

/// What each provider's entry may hold besides `id`, `provider`, `tenant`.
fn fields_of(provider: &str) -> &'static [&'static str] {
    match provider {
        "mailgun" => &["signing_key"],
        "sendgrid" => &["public_key"],
        "postmark" => &["username", "password"],
        _ => &["topic_arns"],
    }
}

fn topic_arn_ok(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && parts[3..].iter().all(|p| !p.is_empty())
        && arn.bytes().all(|b| b.is_ascii_graphic())
}

fn endpoint(index: usize, value: &Value) -> Result<ProviderEndpoint, ConfigError> {
    let entry = value
        .as_object()
        .ok_or_else(|| err(SETTING, format!("entry {index} is not a JSON object")))?;
    let id = match entry.get("id") {
        Some(Value::String(id)) if valid_id(id) => id.clone(),
        _ => {
            return Err(problem(
                index,
                "id",
                "must be 1 to 64 letters, digits, `_` or `-` (it is the last segment of the URL)",
            ));
        }
    };
    let tenant = match entry.get("tenant") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if valid_tenant(t) => Some(t.clone()),
        Some(_) => {
            return Err(problem(
                index,
                "tenant",
                "must be 1 to 64 characters of letters, digits, `.`, `_`, `:` and `-`",
            ));
        }
    };
    let provider = match entry.get("provider").and_then(Value::as_str) {
        Some(p @ ("mailgun" | "sendgrid" | "postmark" | "ses")) => p,
        _ => {
            return Err(problem(
                index,
                "provider",
                "must be one of mailgun, sendgrid, postmark, ses",
            ));
        }
    };
    let allowed = fields_of(provider);
    if let Some(unknown) = entry.keys().find(|k| {
        !matches!(k.as_str(), "id" | "provider" | "tenant") && !allowed.contains(&k.as_str())
    }) {
        // A misspelt field name is worth naming; anything else might be
        // a value pasted in the wrong place, and is not quoted.
        let named = (1..=32).contains(&unknown.len())
            && unknown.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let name = if named { unknown.as_str() } else { "?" };
        return Err(problem(
            index,
            name,
            &format!("is not a field of a {provider} endpoint"),
        ));
    }
    let verification = match provider {
        "mailgun" => Verification::Mailgun {
            signing_keys: strings(entry, index, "signing_key")?,
        },
        "sendgrid" => Verification::SendGrid {
            public_keys: strings(entry, index, "public_key")?
                .iter()
                .map(|k| {
                    sendgrid::parse_key(k).map_err(|_| {
                        problem(
                            index,
                            "public_key",
                            "must be the base64 DER P-256 verification key SendGrid shows",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        },
        "postmark" => {
            let username = text(entry, index, "username")?;
            if username.contains(':') {
                return Err(problem(
                    index,
                    "username",
                    "must not contain `:` (basic auth)",
                ));
            }
            let password = text(entry, index, "password")?;
            Verification::Postmark {
                credential_digests: vec![postmark::credential_digest(username, password)],
            }
        }
        _ => {
            let arns = match entry.get("topic_arns") {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|v| v.as_str().filter(|a| topic_arn_ok(a)).map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                None => {
                    return Err(problem(
                        index,
                        "topic_arns",
                        "is required for this provider",
                    ));
                }
                _ => None,
            };
            Verification::Ses {
                topic_arns: arns.ok_or_else(|| {
                    problem(
                        index,
                        "topic_arns",
                        "must be a non-empty list of SNS topic ARNs (arn:aws:sns:<region>:<account>:<name>)",
                    )
                })?,
            }
        }
    };
    Ok(ProviderEndpoint {
        id,
        tenant,
        verification,
    })
}

/// Reads the setting's value.
pub fn parse(raw: &str) -> Result<Vec<ProviderEndpoint>, ConfigError> {
    let value: Value = serde_json::from_str(raw).map_err(|_| err(SETTING, FORMAT))?;
    let entries = value.as_array().ok_or_else(|| err(SETTING, FORMAT))?;
    let mut endpoints: Vec<ProviderEndpoint> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let endpoint = endpoint(i + 1, entry)?;
        if endpoints.iter().any(|e| e.id == endpoint.id) {
            return Err(problem(
                i + 1,
                "id",
                "is the id of an earlier entry; ids must be unique",
            ));
        }
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A SendGrid verification key as SendGrid shows it: base64 of the
    /// DER SubjectPublicKeyInfo.
    fn sendgrid_key() -> String {
        use base64::Engine;
        let signing = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let point = signing.verifying_key().to_encoded_point(false);
        // The fixed DER prefix of a P-256 SubjectPublicKeyInfo, then the point.
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(point.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    #[test]
    fn every_provider_reads() {
        let raw = json!([
            {"id": "mg-main", "provider": "mailgun", "signing_key": "key-1", "tenant": "acme"},
            {"id": "mg_rot", "provider": "mailgun", "signing_key": ["key-new", "key-old"]},
            {"id": "sg", "provider": "sendgrid", "public_key": sendgrid_key()},
            {"id": "pm", "provider": "postmark", "username": "pm", "password": "s3cret"},
            {"id": "ses", "provider": "ses", "topic_arns": ["arn:aws:sns:us-east-1:123456789012:ses-events"]},
        ])
        .to_string();
        let got = parse(&raw).unwrap();
        let providers: Vec<Provider> = got.iter().map(ProviderEndpoint::provider).collect();
        assert_eq!(
            providers,
            [
                Provider::Mailgun,
                Provider::Mailgun,
                Provider::SendGrid,
                Provider::Postmark,
                Provider::Ses
            ]
        );
        assert_eq!(got[0].tenant.as_deref(), Some("acme"));
        assert_eq!(got[1].tenant, None);
        assert_eq!(
            got[1].verification,
            Verification::Mailgun {
                signing_keys: vec!["key-new".into(), "key-old".into()]
            }
        );
        assert_eq!(
            got[3].verification,
            Verification::Postmark {
                credential_digests: vec![postmark::credential_digest("pm", "s3cret")]
            }
        );
        assert_eq!(
            find(&got, "sg").map(|e| e.provider()),
            Some(Provider::SendGrid)
        );
        assert_eq!(find(&got, "nope"), None);
        // Secrets stay out of Debug.
        let shown = format!("{got:?}");
        assert!(
            !shown.contains("key-1") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!(parse("[]").unwrap(), vec![]);
    }

    #[test]
    fn problems_name_the_entry_and_field_never_the_value() {
        let table: &[(Value, &str)] = &[
            (json!([5]), "entry 1 is not a JSON object"),
            (
                json!([{"provider": "mailgun", "signing_key": "secretvalue"}]),
                "entry 1: `id`",
            ),
            (
                json!([{"id": "a/b", "provider": "mailgun", "signing_key": "secretvalue"}]),
                "entry 1: `id`",
            ),
            (
                json!([{"id": "a", "provider": "sparkpost"}]),
                "entry 1: `provider`",
            ),
            (
                json!([{"id": "a", "provider": "mailgun"}]),
                "entry 1: `signing_key` is required",
            ),
            (
                json!([{"id": "a", "provider": "mailgun", "signing_key": ""}]),
                "entry 1: `signing_key`",
            ),
            (
                json!([{"id": "a", "provider": "mailgun", "signing_key": "secretvalue", "tenant": "bad tenant"}]),
                "entry 1: `tenant`",
            ),
            (
                json!([{"id": "a", "provider": "mailgun", "signing_key": "secretvalue", "password": "secretvalue"}]),
                "entry 1: `password` is not a field of a mailgun endpoint",
            ),
            (
                json!([{"id": "a", "provider": "mailgun", "signing_key": "k", "secretvalue-x": 1}]),
                "entry 1: `?` is not a field",
            ),
            (
                json!([{"id": "a", "provider": "sendgrid", "public_key": "secretvalue"}]),
                "entry 1: `public_key`",
            ),
            (
                json!([{"id": "a", "provider": "postmark", "username": "u"}]),
                "entry 1: `password` is required",
            ),
            (
                json!([{"id": "a", "provider": "postmark", "username": "u:secretvalue", "password": "p"}]),
                "entry 1: `username`",
            ),
            (
                json!([{"id": "a", "provider": "ses", "topic_arns": []}]),
                "entry 1: `topic_arns`",
            ),
            (
                json!([{"id": "a", "provider": "ses", "topic_arns": ["secretvalue"]}]),
                "entry 1: `topic_arns`",
            ),
            (
                json!([{"id": "a", "provider": "mailgun", "signing_key": "secretvalue"},
                       {"id": "a", "provider": "mailgun", "signing_key": "secretvalue"}]),
                "entry 2: `id` is the id of an earlier entry",
            ),
        ];
        for (raw, want) in table {
            let e = parse(&raw.to_string()).unwrap_err();
            assert_eq!(e.setting, SETTING);
            let shown = e.to_string();
            assert!(shown.contains(want), "{raw}: {shown}");
            assert!(!shown.contains("secretvalue"), "{shown}");
        }
        for raw in ["not json", "{}", "\"x\""] {
            assert_eq!(parse(raw).unwrap_err().problem, FORMAT, "{raw}");
        }
    }
}
