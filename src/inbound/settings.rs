//! The settings of mail that comes back: which return-path domain each
//! sender domain's bounces go to, and where other mail to the worker goes.
//!
//! | Setting | Kind | Format |
//! | --- | --- | --- |
//! | `RETURN_PATH_DOMAINS` | var | JSON object, sender domain to its return-path domain (`{"example.com": "rp.example.com"}`); the return-path domain is the sender domain or a subdomain of it, routed to the worker by Email Routing |
//! | `INBOUND_FORWARD_TO` | var | an address verified in Email Routing that mail to the worker which is not a report is forwarded to (default: such mail is rejected) |
//! | `PROVIDER_WEBHOOKS` | secret | JSON list of the smarthost providers' event receivers, `POST /v1/provider-events/{id}`: `{"id", "provider", "tenant"?, ...}` with the provider's verification material (see `providers::endpoints`) |
//!
//! Owns: parsing them, and looking a domain up either way (and an endpoint
//! by its id). Must not: put a
//! setting's value into an error, or read any other setting.

use std::collections::BTreeMap;

use crate::config::{ConfigError, ConfigSource, err};
use crate::message::address::{Domain, EmailAddress};

use super::providers::endpoints::{self, ProviderEndpoint};

/// What receiving reports needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundSettings {
    /// Sender domain to return-path domain, both lower-case ASCII.
    pub return_paths: BTreeMap<String, String>,
    /// Where mail that is not a report is forwarded.
    pub forward_to: Option<String>,
    /// The smarthost providers' event receivers (`PROVIDER_WEBHOOKS`).
    pub provider_endpoints: Vec<ProviderEndpoint>,
}

const RETURN_PATH_RULE: &str = "must be a JSON object mapping each sender domain to its \
     return-path domain, which is that domain or a subdomain of it (SPF and DMARC alignment)";

fn domain(text: &str) -> Option<String> {
    Domain::parse(text.trim())
        .ok()
        .map(|d| d.as_str().to_ascii_lowercase())
        .filter(|d| d.contains('.') && d.is_ascii())
}

impl InboundSettings {
    /// Reads `RETURN_PATH_DOMAINS`, `INBOUND_FORWARD_TO` and
    /// `PROVIDER_WEBHOOKS`.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let mut return_paths = BTreeMap::new();
        if let Some(raw) = src
            .get("RETURN_PATH_DOMAINS")
            .filter(|s| !s.trim().is_empty())
        {
            let bad = || err("RETURN_PATH_DOMAINS", RETURN_PATH_RULE);
            let map: BTreeMap<String, String> = serde_json::from_str(&raw).map_err(|_| bad())?;
            let mut taken = BTreeMap::new();
            for (sender, rp) in map {
                let sender = domain(&sender).ok_or_else(bad)?;
                let rp = domain(&rp).ok_or_else(bad)?;
                if rp != sender && !rp.ends_with(&format!(".{sender}")) {
                    return Err(bad());
                }
                // One return-path domain says whose reports they are.
                if taken.insert(rp.clone(), sender.clone()).is_some() {
                    return Err(err(
                        "RETURN_PATH_DOMAINS",
                        "names one return-path domain for two sender domains",
                    ));
                }
                if return_paths.insert(sender, rp).is_some() {
                    return Err(err(
                        "RETURN_PATH_DOMAINS",
                        "names a sender domain twice (domains are compared without case)",
                    ));
                }
            }
        }
        let forward_to = match src
            .get("INBOUND_FORWARD_TO")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(address) => Some(
                EmailAddress::parse(&address)
                    .map_err(|_| err("INBOUND_FORWARD_TO", "must be one email address"))?
                    .to_string(),
            ),
        };
        let provider_endpoints = match src.get(endpoints::SETTING).filter(|s| !s.trim().is_empty())
        {
            Some(raw) => endpoints::parse(&raw)?,
            None => Vec::new(),
        };
        Ok(InboundSettings {
            return_paths,
            forward_to,
            provider_endpoints,
        })
    }

    /// The return-path domain of sender domain `domain`, if it has one.
    pub fn return_path_for(&self, domain: &str) -> Option<&str> {
        self.return_paths
            .get(&domain.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The provider event receiver `id` names.
    pub fn provider_endpoint(&self, id: &str) -> Option<&ProviderEndpoint> {
        endpoints::find(&self.provider_endpoints, id)
    }

    /// The sender domain whose reports mail to `domain` carries: the sender
    /// domain it is the return path of, else `domain` itself (lower-cased).
    pub fn sender_domain_of(&self, domain: &str) -> String {
        let domain = domain.trim().to_ascii_lowercase();
        self.return_paths
            .iter()
            .find(|(_, rp)| **rp == domain)
            .map(|(sender, _)| sender.clone())
            .unwrap_or(domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;

    fn parse(pairs: &[(&str, &str)]) -> Result<InboundSettings, ConfigError> {
        InboundSettings::from_source(&source(pairs))
    }

    #[test]
    fn return_path_domains_map_both_ways() {
        let s = parse(&[(
            "RETURN_PATH_DOMAINS",
            r#"{"Example.com": "RP.example.com", "shop.example": "shop.example"}"#,
        )])
        .unwrap();
        assert_eq!(s.return_path_for("EXAMPLE.COM"), Some("rp.example.com"));
        assert_eq!(s.return_path_for("shop.example"), Some("shop.example"));
        assert_eq!(s.return_path_for("other.example"), None);
        assert_eq!(s.sender_domain_of("Rp.Example.com"), "example.com");
        assert_eq!(s.sender_domain_of("bounces.test"), "bounces.test");
        assert_eq!(parse(&[]).unwrap(), InboundSettings::default());
    }

    #[test]
    fn bad_settings_are_named_without_their_values() {
        for (name, value) in [
            ("RETURN_PATH_DOMAINS", "not json"),
            ("RETURN_PATH_DOMAINS", r#"["example.com"]"#),
            // Not aligned: another organisation's domain.
            (
                "RETURN_PATH_DOMAINS",
                r#"{"example.com": "rp.secretcorp.test"}"#,
            ),
            (
                "RETURN_PATH_DOMAINS",
                r#"{"example.com": "notexample.com"}"#,
            ),
            (
                "RETURN_PATH_DOMAINS",
                r#"{"example.com": "bad domain.example.com"}"#,
            ),
            (
                "RETURN_PATH_DOMAINS",
                r#"{"example.com": "rp.example.com", "EXAMPLE.com": "b.example.com"}"#,
            ),
            ("INBOUND_FORWARD_TO", "secretcorp postmaster"),
            ("INBOUND_FORWARD_TO", "a@b.test, c@d.test"),
            (
                "PROVIDER_WEBHOOKS",
                r#"[{"id": "mg", "provider": "mailgun", "signing_key": ["secretcorp", 7]}]"#,
            ),
            ("PROVIDER_WEBHOOKS", "secretcorp"),
        ] {
            let e = parse(&[(name, value)]).unwrap_err();
            assert_eq!(e.setting, name, "{value}");
            assert!(!e.to_string().contains("secretcorp"), "{e}");
        }
    }

    #[test]
    fn provider_endpoints_are_found_by_id() {
        let s = parse(&[(
            "PROVIDER_WEBHOOKS",
            r#"[{"id": "pm-main", "provider": "postmark", "username": "u", "password": "p"}]"#,
        )])
        .unwrap();
        assert_eq!(
            s.provider_endpoint("pm-main")
                .map(ProviderEndpoint::provider),
            Some(crate::inbound::providers::Provider::Postmark)
        );
        assert!(s.provider_endpoint("pm-other").is_none());
        assert!(
            parse(&[("PROVIDER_WEBHOOKS", " ")])
                .unwrap()
                .provider_endpoints
                .is_empty()
        );
    }

    #[test]
    fn a_forward_address_is_kept_as_given() {
        let s = parse(&[("INBOUND_FORWARD_TO", " postmaster@example.com ")]).unwrap();
        assert_eq!(s.forward_to.as_deref(), Some("postmaster@example.com"));
    }
}
