//! Other Workers as senders: the `QUEUE_PRODUCERS` setting, how a producer
//! proves who it is, and what it may do.
//!
//! A producer Worker binds edgerelay's jobs queue and sends
//! `{"v": 1, "type": "send", "producer": "<id>", "token": "<its secret token>",
//! "message": {...}}`, where `message` has exactly the fields of
//! `POST /v1/messages`. The queue is not a trust boundary: any Worker of the
//! account can send to it and write any `producer`. So the id counts only
//! with its token, whose SHA-256 is configured as the producer's
//! `token_sha256` (compared in constant time, like API keys); the message is
//! then validated like an HTTP request, and the producer may only send as the
//! domains configured for its id. Its messages belong to the API key named as
//! its `owner`, which sees them (and refusals of messages claiming its
//! producer's id) through the status API.
//! Must not: read the environment or touch the queue; settings and the edge do.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::json_problem;

use super::keys::{KeyLimits, TENANT_RULE, decode_hex32, valid_tenant};

/// One configured producer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueProducer {
    /// What the producer writes in `"producer"`.
    pub id: String,
    /// Sender domains it may use.
    pub domains: Vec<String>,
    /// The API key id that owns its messages (sees them in the status API).
    pub owner: String,
    /// Hex SHA-256 of the producer's secret token (the token itself is the
    /// producer Worker's secret, never edgerelay's).
    pub token_sha256: String,
    /// The tenant its messages belong to; once parsed, always set (the
    /// owner key's tenant unless given).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Its limits, as an API key's: each queue message is one request and
    /// one message. A message over a limit waits on the queue (see
    /// `accept::limits::producer_delay`); absent: none.
    #[serde(default)]
    pub limits: KeyLimits,
}

impl QueueProducer {
    /// The tenant its messages, events and suppressions belong to.
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or(&self.owner)
    }
}

/// Parses `QUEUE_PRODUCERS`; `api_keys` are the configured keys as
/// `(id, tenant)`: each producer's `owner` must be one of the ids, and a
/// producer without a `tenant` joins its owner's.
pub fn parse_producers(raw: &str, api_keys: &[(&str, &str)]) -> Result<Vec<QueueProducer>, String> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut producers: Vec<QueueProducer> = serde_json::from_str(raw)
        .map_err(|e| json_problem(&e, "a JSON list of {id, domains, owner, token_sha256}"))?;
    for (i, p) in producers.iter_mut().enumerate() {
        if p.id.trim().is_empty() {
            return Err(format!("producer {i}: id is empty"));
        }
        if p.domains.is_empty() {
            return Err(format!("producer `{}`: lists no sender domains", p.id));
        }
        let Some((_, owner_tenant)) = api_keys.iter().find(|(id, _)| *id == p.owner) else {
            return Err(format!(
                "producer `{}`: owner `{}` is not an API key id in API_KEYS",
                p.id, p.owner
            ));
        };
        match &p.tenant {
            Some(t) if !valid_tenant(t) => {
                return Err(format!("producer `{}`: {TENANT_RULE}", p.id));
            }
            Some(_) => {}
            None => p.tenant = Some((*owner_tenant).to_string()),
        }
        if p.limits.per_second == Some(0) || p.limits.per_day == Some(0) {
            return Err(format!(
                "producer `{}`: a limit must be at least 1 (leave it out for none)",
                p.id
            ));
        }
        if decode_hex32(&p.token_sha256).is_none() {
            return Err(format!(
                "producer `{}`: token_sha256 must be 64 hex digits",
                p.id
            ));
        }
        p.domains.iter_mut().for_each(|d| d.make_ascii_lowercase());
        p.token_sha256.make_ascii_lowercase();
    }
    for (i, p) in producers.iter().enumerate() {
        if producers[..i].iter().any(|q| q.id == p.id) {
            return Err(format!("producer `{}` is listed twice", p.id));
        }
    }
    Ok(producers)
}

/// The producer with this id, if configured.
pub fn find<'a>(producers: &'a [QueueProducer], id: &str) -> Option<&'a QueueProducer> {
    producers.iter().find(|p| p.id == id)
}

/// Why a `send` body's producer is not taken at its word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerRefusal<'a> {
    /// No producer has this id: nobody to record the refusal for.
    Unknown,
    /// The id is configured, but the body does not prove it: the refusal is
    /// recorded for this producer's owner.
    Unproven {
        producer: &'a QueueProducer,
        reason: String,
    },
}

/// The producer a `send` body names, if its token proves it. The token's
/// digest is compared in constant time.
pub fn authenticate<'a>(
    producers: &'a [QueueProducer],
    id: &str,
    token: Option<&str>,
) -> Result<&'a QueueProducer, ProducerRefusal<'a>> {
    let producer = find(producers, id).ok_or(ProducerRefusal::Unknown)?;
    let unproven = |why: &str| ProducerRefusal::Unproven {
        producer,
        reason: format!(
            "producer `{id}`: {why}; message refused (a queue message must prove its producer)"
        ),
    };
    let token = token.ok_or_else(|| unproven("the message carries no token"))?;
    let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let expected = decode_hex32(&producer.token_sha256).unwrap_or([0; 32]);
    if bool::from(expected.ct_eq(&presented)) {
        Ok(producer)
    } else {
        Err(unproven(
            "its token does not match the producer's token_sha256",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "pt_billing_0123456789abcdef";

    fn digest(token: &str) -> String {
        crate::accept::keys::key_digest_hex(token)
    }

    fn billing() -> String {
        format!(
            r#"[{{"id":"billing","domains":["Example.COM"],"owner":"backend","token_sha256":"{}"}}]"#,
            digest(TOKEN).to_uppercase()
        )
    }

    #[test]
    fn parses_and_checks_producers() {
        let keys = [("backend", "acme")];
        let ok = parse_producers(&billing(), &keys).unwrap();
        assert_eq!(
            ok[0].tenant(),
            "acme",
            "a producer joins its owner's tenant"
        );
        assert_eq!(ok[0].domains, vec!["example.com"]);
        assert_eq!(ok[0].token_sha256, digest(TOKEN));
        assert_eq!(
            find(&ok, "billing").map(|p| p.owner.as_str()),
            Some("backend")
        );
        assert!(find(&ok, "other").is_none());
        assert_eq!(ok[0].limits, Default::default(), "no limits unless given");
        let limited = billing().replace(
            r#""owner""#,
            r#""limits":{"per_second":2,"per_day":100},"owner""#,
        );
        let limited = parse_producers(&limited, &keys).unwrap();
        assert_eq!(
            (limited[0].limits.per_second, limited[0].limits.per_day),
            (Some(2), Some(100))
        );
        assert_eq!(parse_producers("  ", &keys).unwrap(), vec![]);

        let t = digest(TOKEN);
        let entry = |fields: &str| format!("[{{{fields}}}]");
        let bad = [
            ("not json".to_string(), "valid JSON"),
            (
                "{}".into(),
                "JSON list of {id, domains, owner, token_sha256}",
            ),
            (
                entry(&format!(
                    r#""id":"","domains":["a.com"],"owner":"backend","token_sha256":"{t}""#
                )),
                "id is empty",
            ),
            (
                entry(&format!(
                    r#""id":"p","domains":[],"owner":"backend","token_sha256":"{t}""#
                )),
                "no sender domains",
            ),
            (
                entry(&format!(
                    r#""id":"p","domains":["a.com"],"owner":"nobody","token_sha256":"{t}""#
                )),
                "owner `nobody`",
            ),
            (
                entry(r#""id":"p","domains":["a.com"],"owner":"backend""#),
                "missing field `token_sha256`",
            ),
            (
                entry(r#""id":"p","domains":["a.com"],"owner":"backend","token_sha256":"abc""#),
                "token_sha256 must be 64 hex digits",
            ),
            (
                entry(&format!(
                    r#""id":"p","domains":["a.com"],"owner":"backend","token_sha256":"{t}","admin":true"#
                )),
                "unknown field",
            ),
            (
                entry(&format!(
                    r#""id":"p","domains":["a.com"],"owner":"backend","token_sha256":"{t}","tenant":"a b""#
                )),
                "tenant must be",
            ),
            (
                entry(&format!(
                    r#""id":"p","domains":["a.com"],"owner":"backend","token_sha256":"{t}","limits":{{"per_day":0}}"#
                )),
                "a limit must be at least 1",
            ),
            (
                entry(&format!(
                    r#""id":"p","domains":["a.com"],"owner":"backend","token_sha256":"{t}","limits":{{"per_hour":5}}"#
                )),
                "unknown field `per_hour`",
            ),
            (
                format!(
                    r#"[{{"id":"p","domains":["a.com"],"owner":"backend","token_sha256":"{t}"}},{{"id":"p","domains":["b.com"],"owner":"backend","token_sha256":"{t}"}}]"#
                ),
                "listed twice",
            ),
        ];
        for (raw, needle) in bad {
            let e = parse_producers(&raw, &keys).unwrap_err();
            assert!(e.contains(needle), "{raw}: {e}");
        }
    }

    #[test]
    fn a_producer_is_only_who_its_token_proves() {
        let producers = parse_producers(&billing(), &[("backend", "backend")]).unwrap();
        let wrong = format!("{TOKEN}x");
        // (claimed id, token, outcome)
        let table: [(&str, Option<&str>, &str); 6] = [
            ("billing", Some(TOKEN), "ok billing"),
            ("billing", None, "unproven: carries no token"),
            ("billing", Some(&wrong), "unproven: does not match"),
            ("billing", Some(""), "unproven: does not match"),
            // The digest itself is not the token.
            (
                "billing",
                Some(&producers[0].token_sha256),
                "unproven: does not match",
            ),
            ("payroll", Some(TOKEN), "unknown"),
        ];
        for (id, token, want) in table {
            let got = match authenticate(&producers, id, token) {
                Ok(p) => format!("ok {}", p.id),
                Err(ProducerRefusal::Unknown) => "unknown".into(),
                Err(ProducerRefusal::Unproven { producer, reason }) => {
                    assert_eq!(producer.owner, "backend");
                    assert!(reason.starts_with("producer `billing`: "), "{reason}");
                    assert!(!reason.contains(TOKEN), "{reason}");
                    let words = want.trim_start_matches("unproven: ");
                    assert!(reason.contains(words), "{id} {token:?}: {reason}");
                    want.into()
                }
            };
            assert_eq!(got, want, "{id} {token:?}");
        }
    }
}
