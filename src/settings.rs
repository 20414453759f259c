//! Every setting, parsed once from the worker's vars and secrets.
//!
//! Owns: gathering each module's typed settings into one value the edge keeps
//! for the isolate's life, and the one setting no stage owns
//! (`DEAD_LETTER_QUEUE_NAME`, which tells the edge which queue a batch came
//! from). `QUEUE_SECRET`'s rules are the queue contract's (`queue::seal`). Must not: be imported by the core (each stage takes only its own
//! slice), or put a setting's value into an error.
//!
//! Each stage parses its own settings: [`crate::accept::AcceptSettings`]
//! (keys, forms, producers, DKIM, sizes) and [`crate::delivery::DeliverySettings`]
//! (upstreams, timeouts, retries, health), and
//! [`crate::events::webhooks::WebhookSettings`] (webhook retries, timeout, URL
//! policy), [`crate::inbound::InboundSettings`] (return paths, forwarding), and
//! [`crate::events::retention::RetentionSettings`] (how long records are
//! kept), [`crate::events::reputation::GuardSettings`] (the reputation
//! guard's thresholds) and [`crate::http::domains::settings::DomainSettings`]
//! (the master secret of domain keys, the upstreams' SPF).
//! docs/configuration.md lists them
//! all, and a test keeps that table and the parsers in step.

use crate::accept::AcceptSettings;
use crate::config::{ConfigError, ConfigSource};
use crate::delivery::DeliverySettings;
use crate::events::reputation::GuardSettings;
use crate::events::retention::RetentionSettings;
use crate::events::webhooks::WebhookSettings;
use crate::http::domains::settings::DomainSettings;
use crate::inbound::InboundSettings;
use crate::queue::QueueSecrets;

/// Everything the worker needs, typed.
#[derive(Debug)]
pub struct Settings {
    /// Keys, forms, producers, signing and size limits (see `accept::settings`).
    pub accept: AcceptSettings,
    /// Upstreams, timeouts, retries: what delivery reads (see `delivery::settings`).
    pub delivery: DeliverySettings,
    /// The dead-letter queue's name, as in wrangler.toml.
    pub dead_letter_queue_name: String,
    /// What seals and opens edgerelay's own queue bodies (`QUEUE_SECRET`).
    pub queue_secrets: QueueSecrets,
    /// Webhook delivery: retries, timeout, URL policy (see `events::webhooks::settings`).
    pub webhooks: WebhookSettings,
    /// Mail that comes back: return-path domains, forwarding (see
    /// `inbound::settings`).
    pub inbound: InboundSettings,
    /// How long records are kept, and how much one purge run deletes (see
    /// `events::retention`).
    pub retention: RetentionSettings,
    /// When the reputation guard pauses a tenant's marketing mail (see
    /// `events::reputation`).
    pub reputation: GuardSettings,
    /// Sending domains added through the API: the master secret that seals
    /// their keys, the upstreams' SPF mechanisms (see `http::domains::settings`).
    pub domains: DomainSettings,
}

impl Settings {
    /// Reads and checks every setting; the first problem found is returned.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let mut accept = AcceptSettings::from_source(src)?;
        // Accepting reads the return paths too: one parse serves both.
        let inbound = accept.send.inbound.clone();
        let delivery = DeliverySettings::from_source(src)?;
        // Signing follows what the upstreams do to a message.
        accept.send.dkim_coverage = delivery.dkim_coverage();
        Ok(Settings {
            accept,
            delivery,
            dead_letter_queue_name: src
                .get("DEAD_LETTER_QUEUE_NAME")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "edgerelay-dead-letters".to_string()),
            queue_secrets: QueueSecrets::from_source(src)?,
            webhooks: WebhookSettings::from_source(src)?,
            inbound,
            retention: RetentionSettings::from_source(src)?,
            reputation: GuardSettings::from_source(src)?,
            domains: DomainSettings::from_source(src)?,
        })
    }
}

#[cfg(test)]
mod documented;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;
    use crate::message::dkim::Coverage;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn minimal() -> Vec<(&'static str, String)> {
        vec![
            (
                "API_KEYS",
                format!(r#"[{{"id":"backend","sha256":"{HASH}","domains":["Example.com"]}}]"#),
            ),
            ("SMTP_UPSTREAMS", "smtp://u:p@mail.example.net".to_string()),
            ("QUEUE_SECRET", "q".repeat(32)),
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
        assert_eq!(s.delivery.upstreams[0].label(), "mail.example.net:587");
        assert_eq!(s.delivery.retry.base_delay_seconds, 60);
        assert!(s.accept.send.dkim_keys.is_empty());
        assert_eq!(s.accept.send.max_message_bytes, 10 * 1024 * 1024);
        assert_eq!(s.dead_letter_queue_name, "edgerelay-dead-letters");
        assert_eq!(s.accept.send.dkim_coverage, Coverage::Full);
        let behind = settings_with(&[("SMTP_UPSTREAMS", "send-email://EMAIL")]).unwrap();
        assert_eq!(behind.accept.send.dkim_coverage, Coverage::WithoutMessageId);
    }

    #[test]
    fn each_bad_setting_is_named() {
        // Each stage's own table checks its settings in depth; these rows
        // show their errors come through here unchanged.
        let cases: &[(&str, &str, &str)] = &[
            ("API_KEYS", "not json", "API_KEYS"),
            ("DKIM_KEYS", "{}", "DKIM_KEYS"),
            ("PUBLISHABLE_KEYS", "[{}]", "PUBLISHABLE_KEYS"),
            ("MAX_MESSAGE_BYTES", "big", "MAX_MESSAGE_BYTES"),
            ("SMTP_UPSTREAMS", "http://x", "SMTP_UPSTREAMS"),
            ("SMTP_TIMEOUT_SECONDS", "0", "SMTP_TIMEOUT_SECONDS"),
            ("EHLO_NAME", "bad name\r\n", "EHLO_NAME"),
            ("QUEUE_SECRET", "short", "QUEUE_SECRET"),
            ("QUEUE_SECRET", "", "QUEUE_SECRET"),
            ("WEBHOOK_RETRY_SCHEDULE", "5,soon", "WEBHOOK_RETRY_SCHEDULE"),
            ("RETURN_PATH_DOMAINS", "[]", "RETURN_PATH_DOMAINS"),
            ("RETENTION_DAYS", "0", "RETENTION_DAYS"),
            ("RETENTION_PURGE_LIMIT", "lots", "RETENTION_PURGE_LIMIT"),
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
        let e = Settings::from_source(&source(&[
            ("API_KEYS", &keys),
            ("SMTP_UPSTREAMS", "smtp://h"),
        ]))
        .unwrap_err();
        assert_eq!(e.setting, "QUEUE_SECRET");
    }
}
