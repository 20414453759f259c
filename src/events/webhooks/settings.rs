//! The webhook settings: `WEBHOOK_RETRY_SCHEDULE`, `WEBHOOK_TIMEOUT_SECONDS`,
//! `WEBHOOK_ALLOW_LOCAL_URLS` and `WEBHOOK_QUEUE_NAME`, parsed into one
//! [`WebhookSettings`].
//! Must not: decide anything about a delivery (`schedule` does), or put a
//! setting's value into an error.

use crate::config::{ConfigError, ConfigSource, err, number};

use super::schedule::RetrySchedule;

/// The queue webhook deliveries ride on, as in wrangler.toml.
pub const DEFAULT_QUEUE_NAME: &str = "edgerelay-webhooks";

/// Everything webhook delivery reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// The delays between attempts (`WEBHOOK_RETRY_SCHEDULE`).
    pub schedule: RetrySchedule,
    /// How long one attempt waits for the receiver's answer (`WEBHOOK_TIMEOUT_SECONDS`).
    pub timeout_seconds: u32,
    /// Plain http and loopback or private hosts allowed (`WEBHOOK_ALLOW_LOCAL_URLS`):
    /// for local development only.
    pub allow_local_urls: bool,
    /// The webhook queue's name (`WEBHOOK_QUEUE_NAME`): the consumer tells its
    /// batches from the jobs queue's by it.
    pub queue_name: String,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            schedule: RetrySchedule::default(),
            timeout_seconds: 15,
            allow_local_urls: false,
            queue_name: DEFAULT_QUEUE_NAME.to_string(),
        }
    }
}

impl WebhookSettings {
    /// Reads and checks every webhook setting; the first problem found is returned.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let schedule = match src.get("WEBHOOK_RETRY_SCHEDULE") {
            Some(v) if !v.trim().is_empty() => RetrySchedule::parse("WEBHOOK_RETRY_SCHEDULE", &v)?,
            _ => RetrySchedule::default(),
        };
        let timeout = number(src, "WEBHOOK_TIMEOUT_SECONDS", 15)?;
        if !(1..=120).contains(&timeout) {
            return Err(err("WEBHOOK_TIMEOUT_SECONDS", "must be between 1 and 120"));
        }
        let allow_local_urls = match src
            .get("WEBHOOK_ALLOW_LOCAL_URLS")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "off" | "false" | "0") => false,
            Some("on" | "true" | "1") => true,
            Some(_) => return Err(err("WEBHOOK_ALLOW_LOCAL_URLS", "is neither `on` nor `off`")),
        };
        let queue_name = src
            .get("WEBHOOK_QUEUE_NAME")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_QUEUE_NAME.to_string());
        Ok(WebhookSettings {
            schedule,
            timeout_seconds: u32::try_from(timeout).unwrap_or(15),
            allow_local_urls,
            queue_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;

    #[test]
    fn defaults() {
        assert_eq!(
            WebhookSettings::from_source(&source(&[])).unwrap(),
            WebhookSettings::default()
        );
    }

    #[test]
    fn values_parse() {
        let s = WebhookSettings::from_source(&source(&[
            ("WEBHOOK_RETRY_SCHEDULE", "1,1"),
            ("WEBHOOK_TIMEOUT_SECONDS", "3"),
            ("WEBHOOK_ALLOW_LOCAL_URLS", "On"),
            ("WEBHOOK_QUEUE_NAME", "hooks"),
        ]))
        .unwrap();
        assert_eq!(s.schedule.delays(), [1, 1]);
        assert_eq!(s.timeout_seconds, 3);
        assert!(s.allow_local_urls);
        assert_eq!(s.queue_name, "hooks");
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (name, value) in [
            ("WEBHOOK_RETRY_SCHEDULE", "soon"),
            ("WEBHOOK_TIMEOUT_SECONDS", "0"),
            ("WEBHOOK_TIMEOUT_SECONDS", "121"),
            ("WEBHOOK_TIMEOUT_SECONDS", "x"),
            ("WEBHOOK_ALLOW_LOCAL_URLS", "maybe"),
        ] {
            let e = WebhookSettings::from_source(&source(&[(name, value)])).unwrap_err();
            assert_eq!(e.setting, name, "{name}={value}");
        }
    }
}
