//! The settings `/v1/domains` reads.
//!
//! | Setting | Kind | Meaning |
//! | --- | --- | --- |
//! | `DOMAIN_KEYS_SECRET` | secret | comma-separated master secrets (each at least 32 characters) that seal the private keys of domains added through the API; the first seals, each opens. Unset: `/v1/domains` cannot add a domain |
//! | `UPSTREAM_SPF` | var | JSON object from an upstream's host to the SPF mechanism its provider documents, e.g. `{"smtp.sendgrid.net": "include:sendgrid.net"}`: the SPF record a domain is told to publish |
//!
//! Must not: put a secret's text into an error (errors name the setting).

use std::collections::BTreeMap;

use crate::config::{ConfigError, ConfigSource, secret_list};

/// The shortest master secret, in characters.
pub const MIN_SECRET_CHARS: usize = 32;

/// `/v1/domains`' settings.
#[derive(Debug, Default, Clone)]
pub struct DomainSettings {
    /// The master secrets, first one sealing; empty when unset.
    pub master_secrets: Vec<String>,
    /// Upstream host (lower case) -> its SPF mechanism.
    pub upstream_spf: BTreeMap<String, String>,
}

fn error(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// Whether `mechanism` is one SPF mechanism a smarthost documents:
/// `include:`, `ip4:`, `ip6:`, `a`, `a:` or `mx`, `mx:` with a visible
/// ASCII argument.
pub fn is_spf_mechanism(mechanism: &str) -> bool {
    let plain = ["a", "mx"];
    if plain.contains(&mechanism) {
        return true;
    }
    let Some((name, argument)) = mechanism.split_once(':') else {
        return false;
    };
    ["include", "ip4", "ip6", "a", "mx"].contains(&name)
        && !argument.is_empty()
        && argument.len() <= 253
        && argument.bytes().all(|b| b.is_ascii_graphic())
}

impl DomainSettings {
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let master_secrets = match src.get("DOMAIN_KEYS_SECRET") {
            Some(raw) if !raw.trim().is_empty() => {
                secret_list(&raw, MIN_SECRET_CHARS, "lists no secret")
                    .map_err(|problem| error("DOMAIN_KEYS_SECRET", problem))?
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            }
            _ => Vec::new(),
        };
        let mut upstream_spf = BTreeMap::new();
        if let Some(raw) = src.get("UPSTREAM_SPF").filter(|s| !s.trim().is_empty()) {
            let map: BTreeMap<String, String> = serde_json::from_str(&raw).map_err(|_| {
                error(
                    "UPSTREAM_SPF",
                    "is not a JSON object of upstream host to SPF mechanism",
                )
            })?;
            for (host, mechanism) in map {
                let mechanism = mechanism.trim().to_string();
                if !is_spf_mechanism(&mechanism) {
                    return Err(error(
                        "UPSTREAM_SPF",
                        format!(
                            "the entry of {host} is not one SPF mechanism (include:, ip4:, ip6:, a or mx)"
                        ),
                    ));
                }
                upstream_spf.insert(host.trim().to_ascii_lowercase(), mechanism);
            }
        }
        Ok(DomainSettings {
            master_secrets,
            upstream_spf,
        })
    }

    /// The SPF mechanisms of `hosts` (the upstreams, in order), once each.
    pub fn spf_mechanisms<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for host in hosts {
            if let Some(m) = self.upstream_spf.get(&host.to_ascii_lowercase())
                && !out.contains(m)
            {
                out.push(m.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;

    #[test]
    fn settings_table() {
        let long = "s".repeat(32);
        let secrets = format!("{long}a, {long}b");
        let pairs = [
            ("DOMAIN_KEYS_SECRET", secrets.as_str()),
            (
                "UPSTREAM_SPF",
                r#"{"SMTP.example.net": "include:spf.example.net", "b.example": "ip4:192.0.2.1"}"#,
            ),
        ];
        let s = DomainSettings::from_source(&source(&pairs)).unwrap();
        assert_eq!(s.master_secrets, [format!("{long}a"), format!("{long}b")]);
        assert_eq!(
            s.spf_mechanisms(["smtp.example.net", "other", "b.example", "smtp.example.net"]),
            ["include:spf.example.net", "ip4:192.0.2.1"]
        );
        assert!(
            DomainSettings::from_source(&source(&[]))
                .unwrap()
                .master_secrets
                .is_empty()
        );
        for (name, value) in [
            ("DOMAIN_KEYS_SECRET", "short-secret"),
            ("UPSTREAM_SPF", "[]"),
            ("UPSTREAM_SPF", r#"{"a": "v=spf1 include:x ~all"}"#),
            ("UPSTREAM_SPF", r#"{"a": "include:"}"#),
            ("UPSTREAM_SPF", r#"{"a": "redirect=x"}"#),
        ] {
            let e = DomainSettings::from_source(&source(&[(name, value)])).unwrap_err();
            assert_eq!(e.setting, name, "{value}");
            assert!(!e.problem.contains(value), "{}", e.problem);
        }
    }
}
