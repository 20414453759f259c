//! Every setting, parsed once from the worker's vars and secrets.
//!
//! Owns: gathering each module's typed settings into one value the edge keeps
//! for the isolate's life. Must not: be imported by the core (each stage takes
//! only its own slice), or put a setting's value into an error.
//!
//! | Setting | Kind | Format |
//! | --- | --- | --- |
//! | `API_KEYS` | secret | JSON list of `{"id", "sha256", "domains"}` (hex SHA-256 of the key) |
//! | `DKIM_KEYS` | secret | JSON list of `{"domain", "selector", "algorithm", "private_key"}` |
//! | `SMTP_UPSTREAMS` | secret or var | comma-separated URLs, by priority: `smtps://user:pass@host:465`, `smtp://user:pass@host:587` (STARTTLS required), `smtp+insecure://host:1025` (plaintext, local development only) |
//! | `EHLO_NAME` | var | host name announced to upstreams (default `edgerelay.invalid`) |
//! | `UNSIGNED_DOMAINS` | var | comma-separated sender domains allowed to send without a DKIM key (default none: fail closed) |
//! | `RETRY_BASE_DELAY_SECONDS` | var | first retry delay (default 60) |
//! | `RETRY_MAX_DELAY_SECONDS` | var | longest retry delay (default 43200, the queue's limit) |
//! | `MESSAGE_LIFETIME_SECONDS` | var | give up after this long (default 432000, five days) |
//! | `SMTP_TIMEOUT_SECONDS` | var | per-command timeout towards upstreams (default 30) |
//! | `PUBLISHABLE_KEYS` | var | JSON list of browser forms with their publishable keys (see `api::publishable`) |
//! | `TURNSTILE_SECRET` | secret | Turnstile secret, for forms that require a challenge |
//! | `TURNSTILE_VERIFY_URL` | var | Turnstile's server-side verification endpoint (default Cloudflare's) |
//! | `DEAD_LETTER_QUEUE_NAME` | var | name of the dead-letter queue, as in wrangler.toml (default `edgerelay-dead-letters`) |
//! | `SMTP_PIPELINING` | var | `on` (default): pipeline where the upstream offers it; `off`: lock-step |
//! | `UPSTREAM_FAILURE_THRESHOLD` | var | consecutive failed sessions before an upstream cools down (default 3) |
//! | `UPSTREAM_COOLDOWN_SECONDS` | var | first cool-down, doubling per further failure (default 60) |
//! | `UPSTREAM_MAX_COOLDOWN_SECONDS` | var | longest cool-down (default 3600) |
//! | `MAX_MESSAGE_BYTES` | var | largest composed message accepted, in bytes (default 10 MiB, at most 50 MiB); larger ones get 413 |
//! | `BENCH_ROUTES` | var | `on` serves `GET /bench/signing` and `POST /bench/smtp` (benchmarks); default `off`, never `on` in production |

use serde::Deserialize;

use crate::accept::publishable::PublishableKeys;
use crate::accept::{ApiKeyRecord, QueueProducer};
use crate::config::{ConfigError, ConfigSource, err, number, split_list};
use crate::delivery::DeliverySettings;
use crate::message::{DkimAlgorithm, DkimKey};

/// The stored form of one DKIM key, as written in `DKIM_KEYS`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DkimKeyRecord {
    domain: String,
    selector: String,
    #[serde(default)]
    algorithm: Option<String>,
    private_key: String,
}

/// Everything the worker needs, typed.
#[derive(Debug)]
pub struct Settings {
    pub api_keys: Vec<ApiKeyRecord>,
    pub dkim_keys: Vec<DkimKey>,
    pub unsigned_domains: Vec<String>,
    /// Upstreams, timeouts, retries: what delivery reads (see `delivery::settings`).
    pub delivery: DeliverySettings,
    pub dead_letter_queue_name: String,
    /// Other Workers allowed to send through the jobs queue (`QUEUE_PRODUCERS`).
    pub queue_producers: Vec<QueueProducer>,
    /// Largest composed message accepted (`MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Whether the benchmark routes are served (`BENCH_ROUTES=on`).
    pub bench_routes: bool,
    pub publishable: PublishableKeys,
    pub turnstile_secret: Option<String>,
    pub turnstile_verify_url: String,
}

/// Default for `MAX_MESSAGE_BYTES`: what common smarthosts accept.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 10 * 1024 * 1024;
/// Ceiling for `MAX_MESSAGE_BYTES`: the request body is held in memory (128 MB
/// per isolate) while it is decoded, composed and signed.
pub const MAX_MESSAGE_BYTES_CEILING: u64 = 50 * 1024 * 1024;

/// Cloudflare's Turnstile verification endpoint.
pub const TURNSTILE_DEFAULT_VERIFY_URL: &str =
    "https://challenges.cloudflare.com/turnstile/v0/siteverify";

impl Settings {
    /// Reads and checks every setting; the first problem found is returned.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let api_keys = parse_api_keys(src)?;
        let dkim_keys = parse_dkim_keys(src)?;
        let delivery = DeliverySettings::from_source(src)?;
        let unsigned_domains = src
            .get("UNSIGNED_DOMAINS")
            .map(|s| split_list(&s).map(|d| d.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        let key_ids: Vec<&str> = api_keys.iter().map(|k| k.id.as_str()).collect();
        let queue_producers = crate::accept::producer::parse_producers(
            &src.get("QUEUE_PRODUCERS").unwrap_or_default(),
            &key_ids,
        )
        .map_err(|e| err("QUEUE_PRODUCERS", e))?;
        let max_message_bytes = number(src, "MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)?;
        if !(1024..=MAX_MESSAGE_BYTES_CEILING).contains(&max_message_bytes) {
            return Err(err(
                "MAX_MESSAGE_BYTES",
                format!("must be between 1024 and {MAX_MESSAGE_BYTES_CEILING}"),
            ));
        }
        let bench_routes = match src.get("BENCH_ROUTES").as_deref().map(str::trim) {
            None | Some("") | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(err(
                    "BENCH_ROUTES",
                    format!("`{other}` is neither `on` nor `off`"),
                ));
            }
        };
        Ok(Settings {
            queue_producers,
            api_keys,
            dkim_keys,
            unsigned_domains,
            delivery,
            dead_letter_queue_name: src
                .get("DEAD_LETTER_QUEUE_NAME")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "edgerelay-dead-letters".to_string()),
            max_message_bytes: usize::try_from(max_message_bytes).unwrap_or(usize::MAX),
            bench_routes,
            publishable: match src.get("PUBLISHABLE_KEYS").filter(|s| !s.trim().is_empty()) {
                None => PublishableKeys::default(),
                Some(raw) => {
                    PublishableKeys::parse(&raw).map_err(|e| err("PUBLISHABLE_KEYS", e))?
                }
            },
            turnstile_secret: src.get("TURNSTILE_SECRET").filter(|s| !s.trim().is_empty()),
            turnstile_verify_url: src
                .get("TURNSTILE_VERIFY_URL")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| TURNSTILE_DEFAULT_VERIFY_URL.to_string()),
        })
    }

    /// DKIM keys for a sender domain (case-insensitive).
    pub fn dkim_keys_for(&self, domain: &str) -> Vec<&DkimKey> {
        self.dkim_keys
            .iter()
            .filter(|k| k.identity().domain.as_str().eq_ignore_ascii_case(domain))
            .collect()
    }

    /// Whether a domain may send without a DKIM signature.
    pub fn may_send_unsigned(&self, domain: &str) -> bool {
        self.unsigned_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

fn parse_api_keys(src: &impl ConfigSource) -> Result<Vec<ApiKeyRecord>, ConfigError> {
    let raw = src
        .get("API_KEYS")
        .ok_or_else(|| err("API_KEYS", "is not set (see README: API keys)"))?;
    let keys: Vec<ApiKeyRecord> = serde_json::from_str(&raw).map_err(|e| {
        err(
            "API_KEYS",
            format!("is not a JSON list of {{id, sha256, domains}}: {e}"),
        )
    })?;
    for k in &keys {
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
            format!("is not a JSON list of {{domain, selector, algorithm, private_key}}: {e}"),
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
                            "{}._domainkey.{}: unknown algorithm `{name}` (use rsa or ed25519)",
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
mod documented;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn source(pairs: &[(&str, &str)]) -> impl ConfigSource {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    fn minimal() -> Vec<(&'static str, String)> {
        vec![
            (
                "API_KEYS",
                format!(r#"[{{"id":"backend","sha256":"{HASH}","domains":["Example.com"]}}]"#),
            ),
            ("SMTP_UPSTREAMS", "smtp://u:p@mail.example.net".to_string()),
        ]
    }

    fn settings_with(extra: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let base = minimal();
        let mut pairs: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            pairs.push((k, v));
        }
        Settings::from_source(&source(&pairs))
    }

    #[test]
    fn minimal_settings_parse_with_defaults() {
        let s = settings_with(&[]).unwrap();
        assert_eq!(s.api_keys[0].domains, vec!["example.com"]);
        assert_eq!(s.delivery.upstreams[0].label(), "mail.example.net:587");
        assert_eq!(s.delivery.retry.base_delay_seconds, 60);
        assert!(s.dkim_keys.is_empty());
        assert_eq!(s.max_message_bytes, 10 * 1024 * 1024);
        assert!(!s.bench_routes);
    }

    #[test]
    fn message_size_and_bench_routes_are_read() {
        let s = settings_with(&[("MAX_MESSAGE_BYTES", "2048"), ("BENCH_ROUTES", "on")]).unwrap();
        assert_eq!(s.max_message_bytes, 2048);
        assert!(s.bench_routes);
        let s = settings_with(&[("BENCH_ROUTES", "off")]).unwrap();
        assert!(!s.bench_routes);
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("API_KEYS", "not json", "API_KEYS"),
            (
                "API_KEYS",
                r#"[{"id":"a","sha256":"zz","domains":["a.com"]}]"#,
                "API_KEYS",
            ),
            (
                "API_KEYS",
                &format!(r#"[{{"id":"a","sha256":"{HASH}","domains":[]}}]"#),
                "API_KEYS",
            ),
            // Delivery's own settings are checked in `delivery::settings`;
            // these show its errors come through unchanged.
            ("SMTP_UPSTREAMS", "http://x", "SMTP_UPSTREAMS"),
            ("SMTP_TIMEOUT_SECONDS", "0", "SMTP_TIMEOUT_SECONDS"),
            ("DKIM_KEYS", "{}", "DKIM_KEYS"),
            ("PUBLISHABLE_KEYS", "[{}]", "PUBLISHABLE_KEYS"),
            (
                "DKIM_KEYS",
                r#"[{"domain":"example.com","selector":"s1","algorithm":"ed25519","private_key":"not a key"}]"#,
                "DKIM_KEYS",
            ),
            ("MAX_MESSAGE_BYTES", "big", "MAX_MESSAGE_BYTES"),
            ("MAX_MESSAGE_BYTES", "100", "MAX_MESSAGE_BYTES"),
            ("MAX_MESSAGE_BYTES", "104857600", "MAX_MESSAGE_BYTES"),
            ("BENCH_ROUTES", "yes", "BENCH_ROUTES"),
        ];
        for (name, value, expected) in cases {
            let e = settings_with(&[(name, value)]).unwrap_err();
            assert_eq!(e.setting, *expected, "{name}={value}: {e}");
            assert!(e.to_string().contains(expected));
        }
    }

    #[test]
    fn missing_required_settings_are_named() {
        let e = Settings::from_source(&source(&[("SMTP_UPSTREAMS", "smtp://h")])).unwrap_err();
        assert_eq!(e.setting, "API_KEYS");
        let keys = format!(r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"]}}]"#);
        let e = Settings::from_source(&source(&[("API_KEYS", &keys)])).unwrap_err();
        assert_eq!(e.setting, "SMTP_UPSTREAMS");
    }
}
