//! Keys as data: API keys issued through `/v1/keys` and kept in D1 beside
//! the `API_KEYS` secret, so a new key needs no redeploy.
//!
//! Owns: what a new key may be given (never more than the admin key that
//! asks for it: its own tenant, a subset of its sender domains and named
//! streams, no scope it lacks, limits no looser than its own), the form of
//! a key and of its id, the columns a key is stored in, and how a stored
//! key becomes the same [`AuthenticatedKey`] a key of `API_KEYS` becomes.
//!
//! Only the key's SHA-256 and its first [`DISPLAY_PREFIX_CHARS`] characters
//! are stored. The keys of `API_KEYS` are compared in constant time over
//! every digest (`keys`); an issued key is found instead by one indexed
//! lookup of the presented key's digest. That lookup is not a timing
//! oracle: an issued key is 32 random bytes, so what an index might reveal
//! about a stored digest (how much of it a guess's digest shares) brings no
//! guess closer to a key with that digest, short of inverting SHA-256.
//! Must not: perform I/O, read the clock or make random bytes (the edge
//! passes them in).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::events::unsubscribe::StreamKind;

use super::error::ApiError;
use super::keys::{
    AuthenticatedKey, ISSUED_KEY_CHARS, ISSUED_KEY_PREFIX, KeyLimits, Scope, key_digest_hex,
};

/// Random bytes in a key.
pub const KEY_BYTES: usize = 32;
/// Random bytes in a key's id.
pub const ID_BYTES: usize = 12;
/// The prefix of an issued key's id; no id in `API_KEYS` may start with it.
pub const ID_PREFIX: &str = "key_";
/// How much of a key is kept in the clear, to tell keys apart: `er_` and 5
/// of its 43 random characters (30 of its 256 bits).
pub const DISPLAY_PREFIX_CHARS: usize = 8;
/// The most issued keys in force one tenant may have.
pub const MAX_KEYS_PER_TENANT: usize = 100;
/// The most issued keys a list shows (newest first, revoked ones included).
pub const MAX_LISTED_KEYS: usize = 200;
/// The longest a rotated key may keep working beside its successor.
pub const MAX_GRACE_SECONDS: u64 = 3600;

/// A new key: the secret (answered once, never stored), its digest and
/// its display prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub secret: String,
    pub sha256: String,
    pub prefix: String,
}

/// A key from 32 random bytes: `er_` and the bytes in URL-safe base64
/// without padding (43 characters).
pub fn new_key(random: &[u8; KEY_BYTES]) -> NewKey {
    let secret = format!("{ISSUED_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    debug_assert_eq!(secret.len(), ISSUED_KEY_PREFIX.len() + ISSUED_KEY_CHARS);
    NewKey {
        sha256: key_digest_hex(&secret),
        prefix: secret.chars().take(DISPLAY_PREFIX_CHARS).collect(),
        secret,
    }
}

/// A key's id: `key_` and 24 hex digits.
pub fn new_id(random: &[u8; ID_BYTES]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{ID_PREFIX}{hex}")
}

/// Everything a key holds but its secret: what it may do and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    /// Sorted, each once.
    pub scopes: Vec<Scope>,
    /// Lower case, each once.
    pub domains: Vec<String>,
    pub streams: BTreeMap<String, StreamKind>,
    /// Without a trailing slash.
    pub unsubscribe_base_url: Option<String>,
    pub limits: KeyLimits,
}

/// A grant as asked for, checked for form (by `http::keys`) but not yet
/// against the key that asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub domains: Vec<String>,
    pub streams: BTreeMap<String, StreamKind>,
    /// Absent: the creator's.
    pub unsubscribe_base_url: Option<String>,
    /// Each absent limit is the creator's.
    pub limits: KeyLimits,
}

fn escalation(field: String, message: String) -> ApiError {
    ApiError::forbidden("privilege_escalation", &field, message)
}

/// What `creator` may give a new key of its tenant: every scope asked for
/// must be one it holds (`admin` implying `read`), every domain one of its
/// own, every named stream one of its own with the same kind, and each
/// limit no looser than its own (an absent limit is the creator's). 403
/// `privilege_escalation` naming the first field that asks for more.
pub fn grant(request: GrantRequest, creator: &AuthenticatedKey) -> Result<Grant, ApiError> {
    if let Some(scope) = request.scopes.iter().find(|s| !creator.has_scope(**s)) {
        return Err(escalation(
            "scopes".into(),
            format!(
                "this key does not hold the `{}` scope, so it cannot give it",
                scope.as_str()
            ),
        ));
    }
    if let Some((i, domain)) = request
        .domains
        .iter()
        .enumerate()
        .find(|(_, d)| !creator.may_send_as(d))
    {
        return Err(escalation(
            format!("domains[{i}]"),
            format!("this key may not send as {domain}, so it cannot give that domain"),
        ));
    }
    if let Some((name, _)) = request
        .streams
        .iter()
        .find(|(name, kind)| creator.streams.get(*name) != Some(*kind))
    {
        return Err(escalation(
            format!("streams.{name}"),
            format!("this key has no {name} stream of that kind, so it cannot give it"),
        ));
    }
    let limit = |field: &str, asked: Option<u32>, own: Option<u32>| match (asked, own) {
        (Some(a), Some(o)) if a > o => Err(escalation(
            format!("limits.{field}"),
            format!("this key's own {field} limit is {o}; a key it creates cannot have more"),
        )),
        (None, own) => Ok(own),
        (asked, _) => Ok(asked),
    };
    let limits = KeyLimits {
        per_second: limit(
            "per_second",
            request.limits.per_second,
            creator.limits.per_second,
        )?,
        per_day: limit("per_day", request.limits.per_day, creator.limits.per_day)?,
    };
    Ok(Grant {
        name: request.name,
        scopes: request.scopes,
        domains: request.domains,
        streams: request.streams,
        unsubscribe_base_url: request
            .unsubscribe_base_url
            .or_else(|| creator.unsubscribe_base_url.clone()),
        limits,
    })
}

/// An issued key's row, as stored (see migrations/0014_keys.sql); the list
/// columns are JSON text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssuedKeyRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub domains: String,
    pub streams: String,
    pub unsubscribe_base_url: Option<String>,
    pub limits: String,
    /// Unix ms.
    pub created_at: f64,
    pub created_by: String,
    /// Unix ms.
    pub revoked_at: Option<f64>,
    pub rotated_from: Option<String>,
}

/// A grant's list columns as stored: JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantColumns {
    pub scopes: String,
    pub domains: String,
    pub streams: String,
    pub limits: String,
}

impl Grant {
    pub fn columns(&self) -> GrantColumns {
        let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
        GrantColumns {
            scopes: json(serde_json::to_string(&self.scopes)),
            domains: json(serde_json::to_string(&self.domains)),
            streams: json(serde_json::to_string(&self.streams)),
            limits: json(serde_json::to_string(&self.limits)),
        }
    }
}

impl IssuedKeyRow {
    /// The row's grant; `None` when a column does not read (such a key
    /// authenticates nothing).
    pub fn grant(&self) -> Option<Grant> {
        Some(Grant {
            name: self.name.clone(),
            scopes: serde_json::from_str(&self.scopes).ok()?,
            domains: serde_json::from_str(&self.domains).ok()?,
            streams: serde_json::from_str(&self.streams).ok()?,
            unsubscribe_base_url: self.unsubscribe_base_url.clone(),
            limits: serde_json::from_str(&self.limits).ok()?,
        })
    }

    /// Whether the key is refused at `now_ms`.
    pub fn revoked(&self, now_ms: u64) -> bool {
        self.revoked_at.is_some_and(|at| at as u64 <= now_ms)
    }

    /// The caller this key authenticates at `now_ms`: `None` once revoked
    /// or when its row does not read.
    pub fn authenticated(&self, now_ms: u64) -> Option<AuthenticatedKey> {
        if self.revoked(now_ms) {
            return None;
        }
        let grant = self.grant()?;
        Some(AuthenticatedKey {
            id: self.id.clone(),
            domains: grant.domains,
            tenant: self.tenant.clone(),
            streams: grant.streams,
            unsubscribe_base_url: grant.unsubscribe_base_url,
            scopes: grant.scopes,
            limits: grant.limits,
        })
    }
}

/// When a rotated key stops working: at once, or `grace_seconds` later (at
/// most [`MAX_GRACE_SECONDS`], checked by `http::keys`).
pub fn rotated_key_revoked_at(now_ms: u64, grace_seconds: u64) -> u64 {
    now_ms.saturating_add(grace_seconds.min(MAX_GRACE_SECONDS).saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accept::keys::has_issued_form;

    fn creator() -> AuthenticatedKey {
        AuthenticatedKey {
            id: "ops".into(),
            domains: vec!["example.com".into(), "example.org".into()],
            tenant: "acme".into(),
            streams: BTreeMap::from([("news".to_string(), StreamKind::Marketing)]),
            unsubscribe_base_url: Some("https://mail.example.com".into()),
            scopes: vec![Scope::Send, Scope::Admin],
            limits: KeyLimits {
                per_second: Some(10),
                per_day: None,
            },
        }
    }

    fn request() -> GrantRequest {
        GrantRequest {
            name: "ci".into(),
            scopes: vec![Scope::Send],
            domains: vec!["example.com".into()],
            streams: BTreeMap::new(),
            unsubscribe_base_url: None,
            limits: KeyLimits::default(),
        }
    }

    #[test]
    fn a_new_key_has_the_issued_form_and_only_its_digest_is_kept() {
        let key = new_key(&[0xfb; KEY_BYTES]);
        assert!(key.secret.starts_with("er_-_v7"), "{}", key.secret);
        assert_eq!(key.secret.len(), 46);
        assert!(has_issued_form(&key.secret));
        assert_eq!(key.sha256, key_digest_hex(&key.secret));
        assert_eq!(key.prefix, &key.secret[..8]);
        assert_ne!(new_key(&[1; KEY_BYTES]).secret, key.secret);
        let id = new_id(&[0xab; ID_BYTES]);
        assert_eq!(id, format!("key_{}", "ab".repeat(12)));
    }

    #[test]
    fn a_grant_is_never_wider_than_its_creator() {
        type Edit = fn(&mut GrantRequest);
        let table: &[(&str, Edit, Result<(), &str>)] = &[
            ("as asked", |_| {}, Ok(())),
            ("admin", |r| r.scopes = vec![Scope::Admin], Ok(())),
            // Admin implies read.
            ("read", |r| r.scopes = vec![Scope::Read], Ok(())),
            (
                "both domains",
                |r| r.domains = vec!["example.org".into(), "example.com".into()],
                Ok(()),
            ),
            (
                "another domain",
                |r| r.domains = vec!["example.com".into(), "evil.test".into()],
                Err("domains[1]"),
            ),
            (
                "a subdomain",
                |r| r.domains = vec!["mail.example.com".into()],
                Err("domains[0]"),
            ),
            (
                "its stream",
                |r| r.streams = BTreeMap::from([("news".into(), StreamKind::Marketing)]),
                Ok(()),
            ),
            (
                "its stream as another kind",
                |r| r.streams = BTreeMap::from([("news".into(), StreamKind::Transactional)]),
                Err("streams.news"),
            ),
            (
                "a stream it lacks",
                |r| r.streams = BTreeMap::from([("alerts".into(), StreamKind::Transactional)]),
                Err("streams.alerts"),
            ),
            ("a lower rate", |r| r.limits.per_second = Some(5), Ok(())),
            ("its rate", |r| r.limits.per_second = Some(10), Ok(())),
            (
                "a higher rate",
                |r| r.limits.per_second = Some(11),
                Err("limits.per_second"),
            ),
            // The creator has no daily limit: any will do.
            ("a daily limit", |r| r.limits.per_day = Some(1), Ok(())),
        ];
        for (what, edit, want) in table {
            let mut r = request();
            edit(&mut r);
            match (grant(r, &creator()), want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(field)) => {
                    assert_eq!((e.status, e.rule), (403, "privilege_escalation"), "{what}");
                    assert_eq!(e.field.as_deref(), Some(*field), "{what}");
                }
                (got, want) => panic!("{what}: {got:?}, wanted {want:?}"),
            }
        }
        // A key without `admin` (nor read) cannot give read; one without send cannot give send.
        let mut reader = creator();
        reader.scopes = vec![Scope::Read];
        for scope in [Scope::Send, Scope::Admin] {
            let mut r = request();
            r.scopes = vec![scope];
            assert_eq!(
                grant(r, &reader).unwrap_err().field.as_deref(),
                Some("scopes"),
                "{scope:?}"
            );
        }
    }

    #[test]
    fn a_grant_inherits_the_creators_limits_and_unsubscribe_base() {
        let g = grant(request(), &creator()).unwrap();
        assert_eq!(g.limits.per_second, Some(10));
        assert_eq!(g.limits.per_day, None);
        assert_eq!(
            g.unsubscribe_base_url.as_deref(),
            Some("https://mail.example.com")
        );
        let mut r = request();
        r.unsubscribe_base_url = Some("https://other.example.com".into());
        r.limits.per_day = Some(100);
        let g = grant(r, &creator()).unwrap();
        assert_eq!(
            g.unsubscribe_base_url.as_deref(),
            Some("https://other.example.com")
        );
        assert_eq!(g.limits.per_day, Some(100));
    }

    fn row(grant: &Grant, revoked_at: Option<f64>) -> IssuedKeyRow {
        let c = grant.columns();
        IssuedKeyRow {
            id: "key_1".into(),
            tenant: "acme".into(),
            name: grant.name.clone(),
            prefix: "er_abcde".into(),
            scopes: c.scopes,
            domains: c.domains,
            streams: c.streams,
            unsubscribe_base_url: grant.unsubscribe_base_url.clone(),
            limits: c.limits,
            created_at: 1.0,
            created_by: "ops".into(),
            revoked_at,
            rotated_from: None,
        }
    }

    #[test]
    fn a_stored_key_authenticates_as_its_grant_until_revoked() {
        let mut r = request();
        r.streams = BTreeMap::from([("news".into(), StreamKind::Marketing)]);
        let g = grant(r, &creator()).unwrap();
        let stored = row(&g, None);
        assert_eq!(stored.grant(), Some(g.clone()));
        let key = stored.authenticated(5_000).unwrap();
        assert_eq!(key.id, "key_1");
        assert_eq!(key.tenant, "acme");
        assert_eq!(key.scopes, vec![Scope::Send]);
        assert_eq!(key.domains, vec!["example.com".to_string()]);
        assert_eq!(key.streams, g.streams);
        assert_eq!(key.limits, g.limits);
        assert_eq!(key.unsubscribe_base_url, g.unsubscribe_base_url);
        // Revoked at 5000: refused from then on, not before (a grace period).
        let revoked = row(&g, Some(5_000.0));
        assert!(revoked.authenticated(4_999).is_some());
        assert!(revoked.authenticated(5_000).is_none());
        // A row whose columns do not read authenticates nothing.
        let mut broken = row(&g, None);
        broken.scopes = "[\"root\"]".into();
        assert!(broken.authenticated(0).is_none());
    }

    #[test]
    fn a_grace_period_is_bounded() {
        assert_eq!(rotated_key_revoked_at(1_000, 0), 1_000);
        assert_eq!(rotated_key_revoked_at(1_000, 60), 61_000);
        assert_eq!(
            rotated_key_revoked_at(0, u64::MAX),
            MAX_GRACE_SECONDS * 1000
        );
    }
}
