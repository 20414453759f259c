//! The unsubscribe settings: the token secrets (`UNSUBSCRIBE_SECRET`,
//! falling back to `QUEUE_SECRET`'s list) and the base URL of the links
//! (`UNSUBSCRIBE_BASE_URL`).
//!
//! | Setting | Kind | Format |
//! | --- | --- | --- |
//! | `UNSUBSCRIBE_SECRET` | secret | comma-separated secrets of 32+ characters; the first issues tokens, all open them (default: `QUEUE_SECRET`'s list, under keys of their own) |
//! | `UNSUBSCRIBE_BASE_URL` | var | `https://host[:port]`, the sender's own domain routed to the worker; links are `<base>/unsubscribe/<token>` |
//!
//! Owns: parsing them, and the link for a token. Must not: put a secret into
//! an error, or read any other setting.

use crate::config::{ConfigError, ConfigSource, err};
use crate::message::OneClick;

use super::token::TokenSecrets;

/// The path segment the unsubscribe routes live under.
pub const PATH: &str = "unsubscribe";

/// What issuing and opening unsubscribe links needs.
#[derive(Debug, Clone, Default)]
pub struct UnsubscribeSettings {
    /// Always set by [`UnsubscribeSettings::from_source`]; `None` only in a
    /// default value, which then issues no link.
    pub secrets: Option<TokenSecrets>,
    /// `UNSUBSCRIBE_BASE_URL` without a trailing slash.
    pub base_url: Option<String>,
}

impl UnsubscribeSettings {
    /// Reads `UNSUBSCRIBE_SECRET` (else `QUEUE_SECRET`) and
    /// `UNSUBSCRIBE_BASE_URL`.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let own = src
            .get("UNSUBSCRIBE_SECRET")
            .filter(|s| !s.trim().is_empty());
        let secrets = match own {
            Some(raw) => Some(TokenSecrets::parse(&raw).map_err(|e| err("UNSUBSCRIBE_SECRET", e))?),
            // QUEUE_SECRET is checked by its owner; a bad one fails there.
            None => src
                .get("QUEUE_SECRET")
                .and_then(|raw| TokenSecrets::parse(&raw).ok()),
        };
        let base_url = match src
            .get("UNSUBSCRIBE_BASE_URL")
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(base) => Some(check_base(&base).map_err(|e| err("UNSUBSCRIBE_BASE_URL", e))?),
        };
        Ok(UnsubscribeSettings { secrets, base_url })
    }
}

/// A base URL is good when a link under it is (see [`OneClick::new`]), and
/// it is an origin only: the worker answers `/unsubscribe/...` at its root.
pub fn check_base(base: &str) -> Result<String, String> {
    let base = base.trim_end_matches('/');
    let has_path = base
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    if has_path || link(base, "t").is_none() {
        return Err(
            "must be https://host[:port], the sender's own domain routed to the worker (http only for a loopback host), with no path"
                .to_string(),
        );
    }
    Ok(base.to_string())
}

/// The link for `token` under `base`.
pub fn link(base: &str, token: &str) -> Option<OneClick> {
    OneClick::new(&format!("{}/{PATH}/{token}", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;

    const SECRET: &str = "unsubscribe-secret-0123456789abcdef";

    #[test]
    fn settings_by_table() {
        let queue = "q".repeat(32);
        let read = |pairs: &[(&str, &str)]| UnsubscribeSettings::from_source(&source(pairs));
        let s = read(&[("QUEUE_SECRET", &queue)]).unwrap();
        assert!(s.secrets.is_some());
        assert_eq!(s.base_url, None);
        let s = read(&[
            ("QUEUE_SECRET", &queue),
            ("UNSUBSCRIBE_SECRET", SECRET),
            ("UNSUBSCRIBE_BASE_URL", " https://mail.example.com/ "),
        ])
        .unwrap();
        assert_eq!(s.base_url.as_deref(), Some("https://mail.example.com"));
        for (name, value) in [
            ("UNSUBSCRIBE_SECRET", "tiny-secret-value"),
            ("UNSUBSCRIBE_BASE_URL", "http://mail.example.com"),
            ("UNSUBSCRIBE_BASE_URL", "mail.example.com"),
            ("UNSUBSCRIBE_BASE_URL", "https://mail.example.com/?x=1"),
            ("UNSUBSCRIBE_BASE_URL", "https://mail.example.com/er"),
        ] {
            let e = read(&[("QUEUE_SECRET", &queue), (name, value)]).unwrap_err();
            assert_eq!(e.setting, name, "{value}");
            assert!(!e.to_string().contains("tiny-secret"), "{e}");
        }
    }

    #[test]
    fn the_queue_secret_is_the_fallback() {
        // Without UNSUBSCRIBE_SECRET, tokens are made under QUEUE_SECRET's
        // list (with keys derived for tokens alone, see `token`).
        let queue = "q".repeat(32);
        let s = UnsubscribeSettings::from_source(&source(&[("QUEUE_SECRET", &queue)])).unwrap();
        let own = TokenSecrets::parse(&queue).unwrap();
        let claim = super::super::token::Claim {
            tenant: "t".into(),
            key_id: "k".into(),
            stream: "marketing".into(),
            topic: None,
            recipient: "a@example.com".into(),
            message_id: "m".into(),
        };
        let token = own.issue(&claim, &[3; 12]).unwrap();
        assert_eq!(s.secrets.unwrap().open(&token), Ok(claim));
    }

    #[test]
    fn links_are_built_under_the_base() {
        assert_eq!(
            link("https://mail.example.com/", "abc").map(|l| l.url().to_string()),
            Some("https://mail.example.com/unsubscribe/abc".to_string())
        );
        assert_eq!(
            check_base("http://127.0.0.1:8787/"),
            Ok("http://127.0.0.1:8787".to_string())
        );
        assert!(link("https://mail.example.com", "a b").is_none());
    }
}
