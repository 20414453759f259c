//! The tracking settings: the token secrets (`TRACKING_SECRET`, falling back
//! to `QUEUE_SECRET`'s list) and the tracking host (`TRACKING_BASE_URL`).
//!
//! | Setting | Kind | Format |
//! | --- | --- | --- |
//! | `TRACKING_SECRET` | secret | comma-separated secrets of 32+ characters; the first issues tracking tokens, all verify them (default: `QUEUE_SECRET`'s list, under keys of their own) |
//! | `TRACKING_BASE_URL` | var | `https://host[:port]`, the sender's own domain routed to the worker; tracked links are `<base>/t/c/<token>`, the pixel `<base>/t/o/<token>` (default: the unsubscribe base URL, then the request's own origin) |
//!
//! Owns: parsing them. Must not: put a secret into an error, or read any
//! other setting.

use crate::config::{ConfigError, ConfigSource, err};

use super::token::TrackingSecrets;
use crate::events::unsubscribe::settings::check_base;

/// What issuing and verifying tracking tokens needs.
#[derive(Debug, Clone, Default)]
pub struct TrackingSettings {
    /// `None` only when neither `TRACKING_SECRET` nor a valid `QUEUE_SECRET`
    /// is set: tracking is then refused at send time.
    pub secrets: Option<TrackingSecrets>,
    /// `TRACKING_BASE_URL` without a trailing slash.
    pub base_url: Option<String>,
}

impl TrackingSettings {
    /// Reads `TRACKING_SECRET` (else `QUEUE_SECRET`) and `TRACKING_BASE_URL`.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let own = src.get("TRACKING_SECRET").filter(|s| !s.trim().is_empty());
        let secrets = match own {
            Some(raw) => Some(TrackingSecrets::parse(&raw).map_err(|e| err("TRACKING_SECRET", e))?),
            // QUEUE_SECRET is checked by its owner; a bad one fails there.
            None => src
                .get("QUEUE_SECRET")
                .and_then(|raw| TrackingSecrets::parse(&raw).ok()),
        };
        let base_url = match src
            .get("TRACKING_BASE_URL")
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(base) => Some(check_base(&base).map_err(|e| err("TRACKING_BASE_URL", e))?),
        };
        Ok(TrackingSettings { secrets, base_url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;
    use crate::events::tracking::token::{HitKind, TrackingClaim};

    const SECRET: &str = "tracking-secret-0123456789abcdef0123";

    #[test]
    fn settings_by_table() {
        let queue = "q".repeat(32);
        let read = |pairs: &[(&str, &str)]| TrackingSettings::from_source(&source(pairs));
        let s = read(&[]).unwrap();
        assert!(s.secrets.is_none());
        let s = read(&[
            ("QUEUE_SECRET", &queue),
            ("TRACKING_SECRET", SECRET),
            ("TRACKING_BASE_URL", " https://t.example.com/ "),
        ])
        .unwrap();
        assert_eq!(s.base_url.as_deref(), Some("https://t.example.com"));
        for (name, value) in [
            ("TRACKING_SECRET", "tiny-secret-value"),
            ("TRACKING_BASE_URL", "http://t.example.com"),
            ("TRACKING_BASE_URL", "t.example.com"),
            ("TRACKING_BASE_URL", "https://t.example.com/t"),
        ] {
            let e = read(&[("QUEUE_SECRET", &queue), (name, value)]).unwrap_err();
            assert_eq!(e.setting, name, "{value}");
            assert!(!e.to_string().contains("tiny-secret"), "{e}");
        }
    }

    #[test]
    fn the_queue_secret_is_the_fallback() {
        let queue = "q".repeat(32);
        let s = TrackingSettings::from_source(&source(&[("QUEUE_SECRET", &queue)])).unwrap();
        let claim = TrackingClaim {
            kind: HitKind::Open,
            message_id: "m".into(),
            recipient: None,
            link: 0,
            target: None,
        };
        let token = TrackingSecrets::parse(&queue)
            .unwrap()
            .issue(&claim)
            .unwrap();
        assert_eq!(s.secrets.unwrap().verify(&token, HitKind::Open), Ok(claim));
    }
}
