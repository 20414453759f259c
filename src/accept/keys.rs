//! API key authentication.
//!
//! Keys are stored only as SHA-256 digests. A presented key is hashed and
//! compared with every stored digest in constant time, so neither the timing
//! of a comparison nor the position of a match in the list leaks anything.
//! A key that matches none of them and has the form of a key issued through
//! `/v1/keys` (see `issued_keys`) comes back as its digest, for the edge to
//! look up among the issued keys; any other key is refused without that read.
//! Owns: the `Authorization: Bearer` check, each key's sender domains and
//! the scope check of a route.
//! Must not: hold a key in the clear, or stop comparing at the first match.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::events::unsubscribe::StreamKind;

use super::error::ApiError;

/// One API key as stored: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRecord {
    /// A name for the key, recorded with each message it sends.
    pub id: String,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    /// Sender domains this key may use. A key with none may send nothing.
    pub domains: Vec<String>,
    /// The sender the key acts for: its messages, events, suppressions and
    /// webhooks are the tenant's, shared by all its keys and kept when a key
    /// is rotated. Defaults to the key's id.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The key's named message streams and their kinds, beside the built-in
    /// `transactional` and `marketing`: `{"newsletter": "marketing"}`.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamKind>,
    /// Where this key's unsubscribe links point (the sender's own domain on
    /// the worker), instead of `UNSUBSCRIBE_BASE_URL`.
    #[serde(default)]
    pub unsubscribe_base_url: Option<String>,
    /// What the key may do. Absent: every scope (the operator's own keys in
    /// `API_KEYS` predate scopes).
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    /// The key's request and message limits; absent: none.
    #[serde(default)]
    pub limits: KeyLimits,
}

/// What a key may do. Each route needs one scope; `admin` implies `read`
/// and `send` does not imply `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send mail (single, batch, dry run).
    Send,
    /// Read the tenant's records: messages, events, suppressions, reports.
    Read,
    /// Change settings: keys, webhooks, suppressions, upstreams, privacy.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Send, Scope::Read, Scope::Admin];

    /// The scope's name as written in settings and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A key's limits: requests per second and messages per day. A batch counts
/// each of its messages against the daily limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests per second, over all routes the key calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    /// Messages accepted per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

impl ApiKeyRecord {
    /// The key's tenant: its `tenant`, or its id.
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or(&self.id)
    }
}

/// The configured keys, ready for constant-time lookup.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    keys: Vec<StoredKey>,
}

#[derive(Debug, Clone)]
struct StoredKey {
    digest: [u8; 32],
    id: String,
    domains: Vec<String>,
    tenant: String,
    streams: BTreeMap<String, StreamKind>,
    unsubscribe_base_url: Option<String>,
    scopes: Vec<Scope>,
    limits: KeyLimits,
}

/// A caller whose key matched: its id, the sender domains it may use and
/// the tenant it acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedKey {
    pub id: String,
    pub domains: Vec<String>,
    /// Whose records these are: every key of a tenant sees the same
    /// messages, events, suppressions and webhooks, and no other tenant's.
    pub tenant: String,
    /// The key's named message streams (see [`ApiKeyRecord::streams`]);
    /// empty for forms and producers, which have the built-in two.
    pub streams: BTreeMap<String, StreamKind>,
    /// The key's own base for unsubscribe links, when it has one (without a
    /// trailing slash); else `UNSUBSCRIBE_BASE_URL` applies.
    pub unsubscribe_base_url: Option<String>,
    /// What the key may do (see [`Scope`]).
    pub scopes: Vec<Scope>,
    /// The key's limits (see [`KeyLimits`]).
    pub limits: KeyLimits,
}

impl AuthenticatedKey {
    /// Whether this key may send as `domain` (exact match, case-insensitive).
    pub fn may_send_as(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether this key holds `scope`; `admin` implies `read`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
            || (scope == Scope::Read && self.scopes.contains(&Scope::Admin))
    }
}

/// What a tenant name may be, as said in a settings error.
pub const TENANT_RULE: &str =
    "tenant must be 1 to 64 characters of letters, digits, `.`, `_`, `:` and `-`";

/// Whether `name` may name a tenant ([`TENANT_RULE`]).
pub fn valid_tenant(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// SHA-256 of a key, as lower-case hex: the form kept in `API_KEYS`.
pub fn key_digest_hex(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

pub(super) fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ApiKeys {
    /// Builds the lookup table. Records were checked when settings were parsed;
    /// one that still fails to decode can never match.
    pub fn new(records: &[ApiKeyRecord]) -> Self {
        let keys = records
            .iter()
            .filter_map(|r| {
                Some(StoredKey {
                    digest: decode_hex32(&r.sha256)?,
                    id: r.id.clone(),
                    domains: r.domains.clone(),
                    tenant: r.tenant().to_string(),
                    streams: r.streams.clone(),
                    unsubscribe_base_url: r
                        .unsubscribe_base_url
                        .as_ref()
                        .map(|b| b.trim().trim_end_matches('/').to_string()),
                    scopes: r.scopes.clone().unwrap_or_else(|| Scope::ALL.to_vec()),
                    limits: r.limits,
                })
            })
            .collect();
        ApiKeys { keys }
    }

    /// Checks an `Authorization` header value (`Bearer <key>`) against the
    /// keys of `API_KEYS`, comparing every digest. When none matches and
    /// the key has the form of a key issued through `/v1/keys`, the answer
    /// is the digest to look up among those (see `issued_keys`); any other
    /// key is refused here, without a database read.
    pub fn lookup(&self, authorization: Option<&str>) -> Result<Lookup, ApiError> {
        let header = authorization.ok_or_else(|| {
            ApiError::unauthorized(
                "missing_credentials",
                "send `Authorization: Bearer <api key>`",
            )
        })?;
        let (scheme, token) = header.trim().split_once(' ').ok_or_else(|| {
            ApiError::unauthorized("malformed_authorization", "expected `Bearer <api key>`")
        })?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthorized(
                "malformed_authorization",
                "expected the Bearer scheme",
            ));
        }
        let token = token.trim();
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&StoredKey> = None;
        // Every stored digest is compared, match or not.
        for key in &self.keys {
            let hit: Choice = key.digest.ct_eq(&presented);
            if bool::from(hit) && found.is_none() {
                found = Some(key);
            }
        }
        match found {
            Some(k) => Ok(Lookup::Found(AuthenticatedKey {
                id: k.id.clone(),
                domains: k.domains.clone(),
                tenant: k.tenant.clone(),
                streams: k.streams.clone(),
                unsubscribe_base_url: k.unsubscribe_base_url.clone(),
                scopes: k.scopes.clone(),
                limits: k.limits,
            })),
            None if has_issued_form(token) => Ok(Lookup::Issued {
                sha256: hex(&presented),
            }),
            None => Err(invalid_api_key()),
        }
    }
}

/// What [`ApiKeys::lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A key of `API_KEYS`.
    Found(AuthenticatedKey),
    /// No key of `API_KEYS`; a key issued through `/v1/keys` may have this
    /// digest (lower-case hex SHA-256).
    Issued { sha256: String },
}

/// 401 for a key that matches nothing.
pub fn invalid_api_key() -> ApiError {
    ApiError::unauthorized("invalid_api_key", "the API key is not valid")
}

/// 403 unless `key` holds `scope` (`admin` implies `read`). The message
/// names the scope the route needs.
pub fn require_scope(key: &AuthenticatedKey, scope: Scope) -> Result<(), ApiError> {
    if key.has_scope(scope) {
        return Ok(());
    }
    let held: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    Err(ApiError::forbidden(
        "insufficient_scope",
        "Authorization",
        format!(
            "this route needs an API key with the `{}` scope; this key has: {}",
            scope.as_str(),
            if held.is_empty() {
                "none".to_string()
            } else {
                held.join(", ")
            }
        ),
    ))
}

/// The prefix of every key issued through `/v1/keys`.
pub const ISSUED_KEY_PREFIX: &str = "er_";

/// Characters after [`ISSUED_KEY_PREFIX`]: 32 random bytes in URL-safe
/// base64 without padding.
pub const ISSUED_KEY_CHARS: usize = 43;

/// Whether `token` has the form of an issued key: `er_` and 43 URL-safe
/// base64 characters. Only such a key costs a database read.
pub fn has_issued_form(token: &str) -> bool {
    token.strip_prefix(ISSUED_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == ISSUED_KEY_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ApiKeys {
        /// [`ApiKeys::lookup`] against the keys of `API_KEYS` only. Not for
        /// routes: the edge's `authorize` also looks up issued keys and
        /// checks the route's scope.
        fn authenticate(&self, authorization: Option<&str>) -> Result<AuthenticatedKey, ApiError> {
            match self.lookup(authorization)? {
                Lookup::Found(key) => Ok(key),
                Lookup::Issued { .. } => Err(invalid_api_key()),
            }
        }
    }

    fn keys() -> ApiKeys {
        ApiKeys::new(&[
            ApiKeyRecord {
                id: "one".into(),
                sha256: key_digest_hex("er_key_one"),
                domains: vec!["example.com".into()],
                tenant: None,
                streams: BTreeMap::new(),
                unsubscribe_base_url: None,
                scopes: None,
                limits: KeyLimits::default(),
            },
            ApiKeyRecord {
                id: "two".into(),
                sha256: key_digest_hex("er_key_two"),
                domains: vec!["example.org".into(), "example.net".into()],
                tenant: Some("acme".into()),
                streams: BTreeMap::new(),
                unsubscribe_base_url: None,
                scopes: None,
                limits: KeyLimits::default(),
            },
        ])
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            key_digest_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn authorization_header_table() {
        let k = keys();
        let table: &[(Option<&str>, Result<&str, &str>)] = &[
            (None, Err("missing_credentials")),
            (Some(""), Err("malformed_authorization")),
            (Some("er_key_one"), Err("malformed_authorization")),
            (Some("Basic er_key_one"), Err("malformed_authorization")),
            (Some("Bearer er_key_three"), Err("invalid_api_key")),
            (Some("Bearer er_key_on"), Err("invalid_api_key")),
            (Some("Bearer "), Err("malformed_authorization")),
            (Some("Bearer er_key_one"), Ok("one")),
            (Some("bearer er_key_two"), Ok("two")),
            (Some("  Bearer   er_key_two "), Ok("two")),
        ];
        for (header, expected) in table {
            let got = k.authenticate(*header);
            match (expected, got) {
                (Ok(id), Ok(key)) => assert_eq!(&key.id, id, "{header:?}"),
                (Err(rule), Err(e)) => {
                    assert_eq!(e.status, 401, "{header:?}");
                    assert_eq!(e.rule, *rule, "{header:?}");
                }
                (exp, got) => panic!("{header:?}: expected {exp:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_key_of_the_issued_form_is_looked_up_by_its_digest() {
        let k = keys();
        let issued = format!("er_{}", "A".repeat(ISSUED_KEY_CHARS));
        assert_eq!(
            k.lookup(Some(&format!("Bearer {issued}"))).unwrap(),
            Lookup::Issued {
                sha256: key_digest_hex(&issued)
            }
        );
        // Only API_KEYS for `authenticate`.
        assert_eq!(
            k.authenticate(Some(&format!("Bearer {issued}")))
                .unwrap_err()
                .rule,
            "invalid_api_key"
        );
        // Anything else is refused without a lookup.
        for other in [
            format!("er_{}", "A".repeat(ISSUED_KEY_CHARS - 1)),
            format!("er_{}", "A".repeat(ISSUED_KEY_CHARS + 1)),
            format!("xx_{}", "A".repeat(ISSUED_KEY_CHARS)),
            format!("er_{}+", "A".repeat(ISSUED_KEY_CHARS - 1)),
            format!("er_{}é", "A".repeat(ISSUED_KEY_CHARS - 2)),
        ] {
            assert_eq!(
                k.lookup(Some(&format!("Bearer {other}"))).unwrap_err().rule,
                "invalid_api_key",
                "{other}"
            );
        }
        // A key of API_KEYS is found, whatever its form.
        assert!(matches!(
            k.lookup(Some("Bearer er_key_one")),
            Ok(Lookup::Found(_))
        ));
    }

    #[test]
    fn a_route_scope_is_held_or_refused_naming_it() {
        let key = |scopes: &[Scope]| AuthenticatedKey {
            id: "k".into(),
            domains: vec![],
            tenant: "t".into(),
            streams: BTreeMap::new(),
            unsubscribe_base_url: None,
            scopes: scopes.to_vec(),
            limits: KeyLimits::default(),
        };
        use Scope::*;
        let table: &[(&[Scope], Scope, bool)] = &[
            (&[Send], Send, true),
            (&[Send], Read, false),
            (&[Send], Admin, false),
            (&[Read], Read, true),
            (&[Read], Send, false),
            (&[Read], Admin, false),
            (&[Admin], Admin, true),
            (&[Admin], Read, true),
            (&[Admin], Send, false),
            (&[Send, Read, Admin], Send, true),
            (&[], Read, false),
        ];
        for (held, needed, ok) in table {
            match require_scope(&key(held), *needed) {
                Ok(()) => assert!(ok, "{held:?} {needed:?}"),
                Err(e) => {
                    assert!(!ok, "{held:?} {needed:?}");
                    assert_eq!((e.status, e.rule), (403, "insufficient_scope"));
                    assert!(
                        e.message.contains(&format!("`{}` scope", needed.as_str())),
                        "{}",
                        e.message
                    );
                }
            }
        }
    }

    #[test]
    fn keys_are_scoped_to_their_domains() {
        let k = keys();
        let one = k.authenticate(Some("Bearer er_key_one")).unwrap();
        assert!(one.may_send_as("example.com"));
        assert!(one.may_send_as("EXAMPLE.COM"));
        assert!(!one.may_send_as("example.org"));
        assert!(!one.may_send_as("sub.example.com"));
        let two = k.authenticate(Some("Bearer er_key_two")).unwrap();
        assert!(two.may_send_as("example.net"));
        assert!(!two.may_send_as("example.com"));
    }

    #[test]
    fn a_key_acts_for_its_tenant_or_itself() {
        let k = keys();
        assert_eq!(
            k.authenticate(Some("Bearer er_key_one")).unwrap().tenant,
            "one"
        );
        assert_eq!(
            k.authenticate(Some("Bearer er_key_two")).unwrap().tenant,
            "acme"
        );
    }
}
