//! Every setting, parsed once from the worker's vars and secrets.
//!
//! Owns: gathering each module's typed settings into one value the edge keeps
//! for the isolate's life. Must not: be imported by the core (each stage takes
//! only its own slice), or put a setting's value into an error.
//!
//! Accept's settings (`API_KEYS`, `DKIM_KEYS`, `UNSIGNED_DOMAINS`,
//! `MAX_MESSAGE_BYTES`, `QUEUE_PRODUCERS`, `PUBLISHABLE_KEYS`, `TURNSTILE_*`)
//! are parsed by [`crate::accept::AcceptSettings`]; the rest are here:
//!
//! | Setting | Kind | Format |
//! | --- | --- | --- |
//! | `SMTP_UPSTREAMS` | secret or var | comma-separated URLs, by priority: `smtps://user:pass@host:465`, `smtp://user:pass@host:587` (STARTTLS required), `smtp+insecure://host:1025` (plaintext, local development only) |
//! | `EHLO_NAME` | var | host name announced to upstreams (default `edgerelay.invalid`) |
//! | `RETRY_BASE_DELAY_SECONDS` | var | first retry delay (default 60) |
//! | `RETRY_MAX_DELAY_SECONDS` | var | longest retry delay (default 43200, the queue's limit) |
//! | `MESSAGE_LIFETIME_SECONDS` | var | give up after this long (default 432000, five days) |
//! | `SMTP_TIMEOUT_SECONDS` | var | per-command timeout towards upstreams (default 30) |
//! | `DEAD_LETTER_QUEUE_NAME` | var | name of the dead-letter queue, as in wrangler.toml (default `edgerelay-dead-letters`) |
//! | `SMTP_PIPELINING` | var | `on` (default): pipeline where the upstream offers it; `off`: lock-step |
//! | `UPSTREAM_FAILURE_THRESHOLD` | var | consecutive failed sessions before an upstream cools down (default 3) |
//! | `UPSTREAM_COOLDOWN_SECONDS` | var | first cool-down, doubling per further failure (default 60) |
//! | `UPSTREAM_MAX_COOLDOWN_SECONDS` | var | longest cool-down (default 3600) |

use crate::accept::AcceptSettings;
use crate::config::{ConfigError, ConfigSource, err, number, split_list};
use crate::delivery::upstream_settings;
use crate::delivery::{HealthSettings, RetrySettings, Upstream};

/// Everything the worker needs, typed.
#[derive(Debug)]
pub struct Settings {
    /// Keys, forms, producers, signing and size limits (see `accept::settings`).
    pub accept: AcceptSettings,
    pub upstreams: Vec<Upstream>,
    pub ehlo_name: String,
    pub retry: RetrySettings,
    pub smtp_timeout_seconds: u32,
    pub dead_letter_queue_name: String,
    /// Use PIPELINING where offered (`SMTP_PIPELINING`).
    pub smtp_pipelining: bool,
    /// When failing upstreams are skipped.
    pub upstream_health: HealthSettings,
}

/// The queue's own ceiling on a delay (12 hours).
pub const QUEUE_MAX_DELAY_SECONDS: u32 = 43_200;

impl Settings {
    /// Reads and checks every setting; the first problem found is returned.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let accept = AcceptSettings::from_source(src)?;
        let upstreams = parse_upstreams(src)?;
        let ehlo_name = src
            .get("EHLO_NAME")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "edgerelay.invalid".to_string());
        if !ehlo_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(err(
                "EHLO_NAME",
                "must be a host name (letters, digits, '.', '-')",
            ));
        }
        let base = number(src, "RETRY_BASE_DELAY_SECONDS", 60)?;
        let max = number(
            src,
            "RETRY_MAX_DELAY_SECONDS",
            QUEUE_MAX_DELAY_SECONDS as u64,
        )?;
        if max > QUEUE_MAX_DELAY_SECONDS as u64 {
            return Err(err(
                "RETRY_MAX_DELAY_SECONDS",
                format!("must be at most {QUEUE_MAX_DELAY_SECONDS} (the queue's longest delay)"),
            ));
        }
        if base == 0 || base > max {
            return Err(err(
                "RETRY_BASE_DELAY_SECONDS",
                "must be at least 1 and at most RETRY_MAX_DELAY_SECONDS",
            ));
        }
        let lifetime = number(src, "MESSAGE_LIFETIME_SECONDS", 432_000)?;
        let timeout = number(src, "SMTP_TIMEOUT_SECONDS", 30)?;
        if timeout == 0 || timeout > 600 {
            return Err(err("SMTP_TIMEOUT_SECONDS", "must be between 1 and 600"));
        }
        Ok(Settings {
            accept,
            upstreams,
            ehlo_name,
            retry: RetrySettings {
                base_delay_seconds: base as u32,
                max_delay_seconds: max as u32,
                lifetime_seconds: lifetime,
            },
            smtp_timeout_seconds: timeout as u32,
            dead_letter_queue_name: src
                .get("DEAD_LETTER_QUEUE_NAME")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "edgerelay-dead-letters".to_string()),
            smtp_pipelining: upstream_settings::parse_pipelining(src)?,
            upstream_health: upstream_settings::parse_health(src)?,
        })
    }
}

fn parse_upstreams(src: &impl ConfigSource) -> Result<Vec<Upstream>, ConfigError> {
    let raw = src.get("SMTP_UPSTREAMS").ok_or_else(|| {
        err(
            "SMTP_UPSTREAMS",
            "is not set (e.g. smtps://user:pass@smtp.example.net:465)",
        )
    })?;
    let upstreams = split_list(&raw)
        .map(|u| Upstream::parse(u).map_err(|e| err("SMTP_UPSTREAMS", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if upstreams.is_empty() {
        return Err(err("SMTP_UPSTREAMS", "lists no upstream"));
    }
    Ok(upstreams)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::UpstreamSecurity;
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
        assert_eq!(s.accept.api_keys[0].domains, vec!["example.com"]);
        assert_eq!(s.upstreams[0].port, 587);
        assert_eq!(s.upstreams[0].security, UpstreamSecurity::StartTls);
        assert_eq!(s.retry.base_delay_seconds, 60);
        assert_eq!(s.retry.max_delay_seconds, QUEUE_MAX_DELAY_SECONDS);
        assert_eq!(s.ehlo_name, "edgerelay.invalid");
        assert!(s.accept.send.dkim_keys.is_empty());
        assert_eq!(s.accept.send.max_message_bytes, 10 * 1024 * 1024);
    }

    #[test]
    fn each_bad_setting_is_named() {
        // Accept's own settings have their table in `accept::settings`; one
        // row shows their errors come through here too.
        let cases: &[(&str, &str, &str)] = &[
            ("API_KEYS", "not json", "API_KEYS"),
            ("SMTP_UPSTREAMS", "http://x", "SMTP_UPSTREAMS"),
            ("SMTP_UPSTREAMS", "smtp://host:99999", "SMTP_UPSTREAMS"),
            ("SMTP_UPSTREAMS", "smtp://user@host", "SMTP_UPSTREAMS"),
            ("SMTP_UPSTREAMS", " , ", "SMTP_UPSTREAMS"),
            (
                "RETRY_BASE_DELAY_SECONDS",
                "soon",
                "RETRY_BASE_DELAY_SECONDS",
            ),
            ("RETRY_BASE_DELAY_SECONDS", "0", "RETRY_BASE_DELAY_SECONDS"),
            (
                "RETRY_MAX_DELAY_SECONDS",
                "50000",
                "RETRY_MAX_DELAY_SECONDS",
            ),
            ("EHLO_NAME", "bad name\r\n", "EHLO_NAME"),
            ("SMTP_TIMEOUT_SECONDS", "0", "SMTP_TIMEOUT_SECONDS"),
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

    type UpstreamCase = (
        &'static str,
        &'static str,
        u16,
        UpstreamSecurity,
        Option<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn upstream_urls() {
        let table: &[UpstreamCase] = &[
            (
                "smtps://smtp.example.net",
                "smtp.example.net",
                465,
                UpstreamSecurity::ImplicitTls,
                None,
                None,
            ),
            (
                "smtp://a%40b:p%3Ass@h:2525",
                "h",
                2525,
                UpstreamSecurity::StartTls,
                Some("a@b"),
                Some("p:ss"),
            ),
            (
                "smtp+insecure://127.0.0.1:1025/",
                "127.0.0.1",
                1025,
                UpstreamSecurity::Insecure,
                None,
                None,
            ),
            (
                "SMTPS://[::1]:4650",
                "::1",
                4650,
                UpstreamSecurity::ImplicitTls,
                None,
                None,
            ),
            (
                "smtp://user:p@ss@host",
                "host",
                587,
                UpstreamSecurity::StartTls,
                Some("user"),
                Some("p@ss"),
            ),
        ];
        for (url, host, port, sec, user, pass) in table {
            let u = Upstream::parse(url).unwrap();
            assert_eq!(&u.host, host, "{url}");
            assert_eq!(u.port, *port, "{url}");
            assert_eq!(u.security, *sec, "{url}");
            assert_eq!(u.username.as_deref(), *user, "{url}");
            assert_eq!(u.password.as_deref(), *pass, "{url}");
        }
    }

    #[test]
    fn upstream_debug_hides_the_password() {
        let u = Upstream::parse("smtp://user:hunter2@host").unwrap();
        let shown = format!("{u:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn several_upstreams_keep_their_order() {
        let s = settings_with(&[("SMTP_UPSTREAMS", "smtps://a, smtp://b:2525")]).unwrap();
        let labels: Vec<String> = s.upstreams.iter().map(Upstream::label).collect();
        assert_eq!(labels, vec!["a:465", "b:2525"]);
    }
}
