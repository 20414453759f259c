//! Accept's own settings: who may send (`API_KEYS`, `PUBLISHABLE_KEYS`,
//! `QUEUE_PRODUCERS`), what is signed and how large it may be (`DKIM_KEYS`,
//! `UNSIGNED_DOMAINS`, `MAX_MESSAGE_BYTES`), and Turnstile for forms
//! (`TURNSTILE_SECRET`, `TURNSTILE_VERIFY_URL`).
//!
//! Owns: parsing and cross-checking those settings into [`AcceptSettings`],
//! whose slices ([`SendSettings`], [`FormSettings`]) are what accept's
//! functions take. Must not: read any other module's settings, or put a
//! setting's value into an error (API key digests and DKIM private keys are
//! secrets): errors name the setting and the entry (a key's id, a DKIM
//! selector and domain), never the text.
//!
//! | Setting | Kind | Format |
//! | --- | --- | --- |
//! | `API_KEYS` | secret | JSON list of `{"id", "sha256", "domains", "tenant"?, "streams"?, "unsubscribe_base_url"?}` (hex SHA-256 of the key); ids unique, not starting with `key_`; `streams` maps named streams to `transactional` or `marketing`; `unsubscribe_base_url` overrides `UNSUBSCRIBE_BASE_URL` for the key; `scopes` lists `send`, `read`, `admin` (absent: all); `limits` is `{"per_second"?, "per_day"?}` |
//! | `DKIM_KEYS` | secret | JSON list of `{"domain", "selector", "algorithm", "private_key"}` |
//! | `UNSIGNED_DOMAINS` | var | comma-separated sender domains allowed to send without a DKIM key (default none: fail closed) |
//! | `MAX_MESSAGE_BYTES` | var | largest composed message accepted, in bytes (default 10 MiB, at most 50 MiB); larger ones get 413 |
//! | `QUEUE_PRODUCERS` | var | JSON list of `{"id", "domains", "owner", "token_sha256", "tenant"?, "limits"?}`; `owner` is an id in `API_KEYS`, `token_sha256` the hex SHA-256 of the producer's secret token; `limits` as a key's |
//! | `PUBLISHABLE_KEYS` | var | JSON list of browser forms with their publishable keys (see [`super::publishable`]); form ids unique and distinct from API key ids |
//! | `TURNSTILE_SECRET` | secret | Turnstile secret, for forms that require a challenge |
//! | `TURNSTILE_VERIFY_URL` | var | Turnstile's server-side verification endpoint (default Cloudflare's) |
//! | `DNS_RESOLVER_FORMAT` | var | `json` (default: `?name=&type=TXT`, `application/dns-json`) or `wire` (RFC 8484: `?dns=`, `application/dns-message`) |
//! | `DNS_RESOLVER_URL` | var | a DNS-over-HTTPS JSON endpoint the dry run asks for DMARC and BIMI records (default Cloudflare's); `https://`, or `http://` to a loopback host |
//!
//! `UNSUBSCRIBE_SECRET` and `UNSUBSCRIBE_BASE_URL` are read through
//! `events::unsubscribe::settings` into [`SendSettings::unsubscribe`],
//! `TRACKING_SECRET` and `TRACKING_BASE_URL` through
//! `events::tracking::settings` into [`SendSettings::tracking`];
//! `RETURN_PATH_DOMAINS` through `inbound::settings` into
//! [`SendSettings::inbound`], and `QUEUE_SECRET` through `queue::seal` into
//! [`SendSettings::envelope_secrets`] (each checked by its owner).

use serde::Deserialize;

use crate::config::{ConfigError, ConfigSource, err, json_problem, number, split_list};
use crate::events::tracking::TrackingSettings;
use crate::events::unsubscribe::settings::check_base;
use crate::events::unsubscribe::{UnsubscribeSettings, stream};
use crate::inbound::InboundSettings;
use crate::message::dkim::Coverage;
use crate::message::validate::is_stream_name;
use crate::message::{DkimAlgorithm, DkimKey};
use crate::queue::QueueSecrets;

use super::issued_keys::ID_PREFIX as ISSUED_ID_PREFIX;
use super::keys::{ApiKeyRecord, TENANT_RULE, valid_tenant};
use super::producer::{QueueProducer, parse_producers};
use super::publishable::PublishableKeys;

/// Default for `MAX_MESSAGE_BYTES`: what common smarthosts accept.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 10 * 1024 * 1024;
/// Ceiling for `MAX_MESSAGE_BYTES`: the request body is held in memory (128 MB
/// per isolate) while it is decoded, composed and signed.
pub const MAX_MESSAGE_BYTES_CEILING: u64 = 50 * 1024 * 1024;

/// Cloudflare's DNS-over-HTTPS JSON endpoint.
pub const DEFAULT_DNS_RESOLVER_URL: &str = "https://cloudflare-dns.com/dns-query";

/// Cloudflare's Turnstile verification endpoint.
pub const TURNSTILE_DEFAULT_VERIFY_URL: &str =
    "https://challenges.cloudflare.com/turnstile/v0/siteverify";

/// What composing and signing a message needs: the keys, the domains that may
/// go unsigned, and the size limit.
#[derive(Debug, Default)]
pub struct SendSettings {
    pub dkim_keys: Vec<DkimKey>,
    /// Lower-case sender domains allowed without a DKIM key.
    pub unsigned_domains: Vec<String>,
    /// Largest composed message accepted (`MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// The unsubscribe links' secrets and base URL (`UNSUBSCRIBE_SECRET`,
    /// `UNSUBSCRIBE_BASE_URL`).
    pub unsubscribe: UnsubscribeSettings,
    /// Each sender domain's return-path domain (`RETURN_PATH_DOMAINS`):
    /// mail from a domain that has one goes out with a VERP MAIL FROM there.
    pub inbound: InboundSettings,
    /// What signs each copy's return path and envelope id (`QUEUE_SECRET`);
    /// `None` only in a default value, which then writes neither.
    pub envelope_secrets: Option<QueueSecrets>,
    /// The tracking tokens' secrets and host (`TRACKING_SECRET`,
    /// `TRACKING_BASE_URL`).
    pub tracking: TrackingSettings,
    /// Which headers the DKIM signatures cover: all but Message-ID when an
    /// upstream in `SMTP_UPSTREAMS` is a `send-email://` binding, because
    /// Cloudflare Email Service writes a Message-ID of its own
    /// (`DeliverySettings::dkim_coverage`).
    pub dkim_coverage: Coverage,
}

impl SendSettings {
    /// Whether a domain may send without a DKIM signature.
    pub fn may_send_unsigned(&self, domain: &str) -> bool {
        self.unsigned_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// Browser forms: their publishable keys and Turnstile.
#[derive(Debug, Default)]
pub struct FormSettings {
    pub publishable: PublishableKeys,
    pub turnstile_secret: Option<String>,
    pub turnstile_verify_url: String,
}

/// Every setting accept reads.
#[derive(Debug)]
pub struct AcceptSettings {
    /// The secret API keys (`API_KEYS`), as stored: digests only.
    pub api_keys: Vec<ApiKeyRecord>,
    pub send: SendSettings,
    pub forms: FormSettings,
    /// Other Workers allowed to send through the jobs queue (`QUEUE_PRODUCERS`).
    pub queue_producers: Vec<QueueProducer>,
    /// Where the dry run asks DNS (`DNS_RESOLVER_URL`).
    pub dns_resolver_url: String,
    /// Whether the resolver is asked in RFC 8484's wire format
    /// (`DNS_RESOLVER_FORMAT=wire`) rather than the JSON form.
    pub dns_wire_format: bool,
}

impl AcceptSettings {
    /// Reads and checks accept's settings; the first problem found is returned.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let api_keys = parse_api_keys(src)?;
        let send = SendSettings::from_source(src)?;
        let key_ids: Vec<&str> = api_keys.iter().map(|k| k.id.as_str()).collect();
        let key_tenants: Vec<(&str, &str)> = api_keys
            .iter()
            .map(|k| (k.id.as_str(), k.tenant()))
            .collect();
        let queue_producers = parse_producers(
            &src.get("QUEUE_PRODUCERS").unwrap_or_default(),
            &key_tenants,
        )
        .map_err(|e| err("QUEUE_PRODUCERS", e))?;
        let forms = FormSettings::from_source(src, &key_ids)?;
        let dns_resolver_url = match src.get("DNS_RESOLVER_URL").filter(|s| !s.trim().is_empty()) {
            None => DEFAULT_DNS_RESOLVER_URL.to_string(),
            Some(url) => check_resolver(url.trim()).map_err(|e| err("DNS_RESOLVER_URL", e))?,
        };
        let dns_wire_format = match src
            .get("DNS_RESOLVER_FORMAT")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "json") => false,
            Some("wire") => true,
            Some(_) => return Err(err("DNS_RESOLVER_FORMAT", "is neither json nor wire")),
        };
        Ok(AcceptSettings {
            api_keys,
            send,
            forms,
            queue_producers,
            dns_resolver_url,
            dns_wire_format,
        })
    }
}

impl SendSettings {
    /// Reads `DKIM_KEYS`, `UNSIGNED_DOMAINS` and `MAX_MESSAGE_BYTES`.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let dkim_keys = parse_dkim_keys(src)?;
        let unsigned_domains = src
            .get("UNSIGNED_DOMAINS")
            .map(|s| split_list(&s).map(|d| d.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        let max_message_bytes = number(src, "MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)?;
        if !(1024..=MAX_MESSAGE_BYTES_CEILING).contains(&max_message_bytes) {
            return Err(err(
                "MAX_MESSAGE_BYTES",
                format!("must be between 1024 and {MAX_MESSAGE_BYTES_CEILING}"),
            ));
        }
        Ok(SendSettings {
            // Set from the parsed upstreams (`settings::Settings`).
            dkim_coverage: Coverage::Full,
            unsubscribe: UnsubscribeSettings::from_source(src)?,
            tracking: TrackingSettings::from_source(src)?,
            inbound: InboundSettings::from_source(src)?,
            // QUEUE_SECRET is checked by its owner; a bad one fails there.
            envelope_secrets: QueueSecrets::from_source(src).ok(),
            dkim_keys,
            unsigned_domains,
            max_message_bytes: usize::try_from(max_message_bytes).unwrap_or(usize::MAX),
        })
    }
}

impl FormSettings {
    /// Reads `PUBLISHABLE_KEYS` and Turnstile's settings. A form's id must
    /// differ from every API key id: both name the sender in records and
    /// logs, and a form's messages are recorded as `form:<id>`.
    pub fn from_source(src: &impl ConfigSource, api_key_ids: &[&str]) -> Result<Self, ConfigError> {
        let publishable = match src.get("PUBLISHABLE_KEYS").filter(|s| !s.trim().is_empty()) {
            None => PublishableKeys::default(),
            Some(raw) => PublishableKeys::parse(&raw).map_err(|e| err("PUBLISHABLE_KEYS", e))?,
        };
        for id in publishable.form_ids() {
            let recorded = format!("form:{id}");
            if let Some(key) = api_key_ids
                .iter()
                .find(|k| **k == id || **k == recorded.as_str())
            {
                return Err(err(
                    "PUBLISHABLE_KEYS",
                    format!("form `{id}` collides with the API key id `{key}` in API_KEYS"),
                ));
            }
        }
        Ok(FormSettings {
            publishable,
            turnstile_secret: src.get("TURNSTILE_SECRET").filter(|s| !s.trim().is_empty()),
            turnstile_verify_url: src
                .get("TURNSTILE_VERIFY_URL")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| TURNSTILE_DEFAULT_VERIFY_URL.to_string()),
        })
    }
}

/// A resolver URL: `https://`, or `http://` to a loopback host (a local
/// resolver in tests), with no query (the dry run adds `name` and `type`).
fn check_resolver(url: &str) -> Result<String, &'static str> {
    const RULE: &str = "must be an https:// URL of a DNS-over-HTTPS JSON endpoint (http:// only for a loopback host), without a query";
    let parsed = url::Url::parse(url).map_err(|_| RULE)?;
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
    if !scheme_ok || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(RULE);
    }
    Ok(url.to_string())
}

fn parse_api_keys(src: &impl ConfigSource) -> Result<Vec<ApiKeyRecord>, ConfigError> {
    let raw = src.get("API_KEYS").ok_or_else(|| {
        err(
            "API_KEYS",
            "is not set (see docs/configuration.md: API keys)",
        )
    })?;
    let keys: Vec<ApiKeyRecord> = serde_json::from_str(&raw).map_err(|e| {
        err(
            "API_KEYS",
            json_problem(
                &e,
                "a JSON list of {id, sha256, domains, tenant?, streams?, unsubscribe_base_url?, scopes?, limits?}",
            ),
        )
    })?;
    for (i, k) in keys.iter().enumerate() {
        if k.id.trim().is_empty() {
            return Err(err("API_KEYS", format!("key {i}: id is empty")));
        }
        if k.id.starts_with(ISSUED_ID_PREFIX) {
            return Err(err(
                "API_KEYS",
                format!(
                    "key `{}`: ids starting with `{ISSUED_ID_PREFIX}` are kept for keys issued through /v1/keys",
                    k.id
                ),
            ));
        }
        if keys[..i].iter().any(|other| other.id == k.id) {
            return Err(err(
                "API_KEYS",
                format!("key `{}` is listed twice (ids must be unique)", k.id),
            ));
        }
        if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(
                "API_KEYS",
                format!("key `{}`: sha256 must be 64 hex digits", k.id),
            ));
        }
        if k.domains.is_empty() {
            return Err(err(
                "API_KEYS",
                format!("key `{}`: lists no sender domains", k.id),
            ));
        }
        if k.scopes.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(err(
                "API_KEYS",
                format!(
                    "key `{}`: scopes is empty (list send, read or admin, or leave it out for all)",
                    k.id
                ),
            ));
        }
        if k.limits.per_second == Some(0) || k.limits.per_day == Some(0) {
            return Err(err(
                "API_KEYS",
                format!(
                    "key `{}`: a limit must be at least 1 (leave it out for none)",
                    k.id
                ),
            ));
        }
        if let Some(tenant) = &k.tenant
            && !valid_tenant(tenant)
        {
            return Err(err("API_KEYS", format!("key `{}`: {TENANT_RULE}", k.id)));
        }
        if let Some(base) = &k.unsubscribe_base_url
            && let Err(e) = check_base(base.trim())
        {
            return Err(err(
                "API_KEYS",
                format!("key `{}`: unsubscribe_base_url {e}", k.id),
            ));
        }
        if let Some(name) = k.streams.keys().find(|name| {
            !is_stream_name(name) || *name == stream::TRANSACTIONAL || *name == stream::MARKETING
        }) {
            return Err(err(
                "API_KEYS",
                format!(
                    "key `{}`: stream {name:?} must be 1-64 lower-case letters, digits, '_' or '-', and not transactional or marketing (they always exist)",
                    k.id
                ),
            ));
        }
    }
    // A key without a `tenant` is its own tenant, named by its id. If
    // another key names that as its tenant, the two would share records
    // without either entry saying so: the operator must say it.
    for k in keys.iter().filter(|k| k.tenant.is_none()) {
        if let Some(other) = keys
            .iter()
            .find(|o| o.tenant.as_deref() == Some(k.id.as_str()))
        {
            return Err(err(
                "API_KEYS",
                format!(
                    "key `{}` has no tenant, so it is tenant `{}`, which key `{}` also names; \
                     give key `{}` a tenant explicitly",
                    k.id, k.id, other.id, k.id
                ),
            ));
        }
    }
    Ok(keys
        .into_iter()
        .map(|mut k| {
            k.sha256.make_ascii_lowercase();
            k.domains.iter_mut().for_each(|d| d.make_ascii_lowercase());
            k
        })
        .collect())
}

/// The stored form of one DKIM key, as written in `DKIM_KEYS`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DkimKeyRecord {
    domain: String,
    selector: String,
    #[serde(default)]
    algorithm: Option<String>,
    private_key: String,
}

fn parse_dkim_keys(src: &impl ConfigSource) -> Result<Vec<DkimKey>, ConfigError> {
    let Some(raw) = src.get("DKIM_KEYS") else {
        return Ok(Vec::new());
    };
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let records: Vec<DkimKeyRecord> = serde_json::from_str(&raw).map_err(|e| {
        err(
            "DKIM_KEYS",
            json_problem(
                &e,
                "a JSON list of {domain, selector, algorithm, private_key}",
            ),
        )
    })?;
    records
        .into_iter()
        .map(|r| {
            let algorithm = match r.algorithm.as_deref() {
                None => DkimAlgorithm::Ed25519Sha256,
                Some(name) => DkimAlgorithm::parse(name).ok_or_else(|| {
                    err(
                        "DKIM_KEYS",
                        format!(
                            "{}._domainkey.{}: unknown algorithm (use rsa or ed25519)",
                            r.selector, r.domain
                        ),
                    )
                })?,
            };
            DkimKey::from_config(&r.domain, &r.selector, algorithm, &r.private_key).map_err(|e| {
                err(
                    "DKIM_KEYS",
                    format!("{}._domainkey.{}: {e}", r.selector, r.domain),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
