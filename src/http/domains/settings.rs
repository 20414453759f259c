//! The settings `/v1/domains` reads.
//!
//! | Setting | Kind | Meaning |
//! | --- | --- | --- |
//! | `DOMAIN_KEYS_SECRET` | secret | comma-separated master secrets (each at least 32 characters) that seal the private keys of domains added through the API; the first seals, each opens. Unset: `/v1/domains` cannot add a domain |
//! | `DOMAIN_KEY_GRACE_HOURS` | var | see `rotation`: hours a rotated-out key stays published but unused (default 168) |
//! | `DOMAIN_RECHECK_MINUTES` | var | minutes between two re-verifications of a domain on the cron trigger (0 to 10080, default 360; 0: every run) |
//! | `DOMAIN_RECHECK_LIMIT` | var | the most domains one cron run re-verifies, oldest check first (1 to 100, default 10) |
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
    /// How long a rotated-out key stays published but unused, in ms.
    pub grace_ms: u64,
    /// How long after its last check a domain is re-verified, in ms.
    pub recheck_after_ms: u64,
    /// The most domains one cron run re-verifies.
    pub recheck_limit: usize,
}

/// The default interval between two re-verifications, in minutes.
pub const DEFAULT_RECHECK_MINUTES: u64 = 360;
/// The default number of domains one cron run re-verifies.
pub const DEFAULT_RECHECK_LIMIT: u64 = 10;

fn number(
    src: &impl ConfigSource,
    setting: &'static str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = src.get(setting).filter(|s| !s.trim().is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(error(
            setting,
            format!(
                "is not a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
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
            grace_ms: super::rotation::grace_ms(src)?,
            recheck_after_ms: number(
                src,
                "DOMAIN_RECHECK_MINUTES",
                0..=10_080,
                DEFAULT_RECHECK_MINUTES,
            )? * 60_000,
            recheck_limit: number(src, "DOMAIN_RECHECK_LIMIT", 1..=100, DEFAULT_RECHECK_LIMIT)?
                as usize,
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
        let defaults = DomainSettings::from_source(&source(&[])).unwrap();
        assert!(defaults.master_secrets.is_empty());
        assert_eq!(
            (
                defaults.grace_ms,
                defaults.recheck_after_ms,
                defaults.recheck_limit
            ),
            (168 * 3_600_000, 360 * 60_000, 10)
        );
        let set = DomainSettings::from_source(&source(&[
            ("DOMAIN_RECHECK_MINUTES", "0"),
            ("DOMAIN_RECHECK_LIMIT", "100"),
            ("DOMAIN_KEY_GRACE_HOURS", "1"),
        ]))
        .unwrap();
        assert_eq!(
            (set.grace_ms, set.recheck_after_ms, set.recheck_limit),
            (3_600_000, 0, 100)
        );
        for (name, value) in [
            ("DOMAIN_KEYS_SECRET", "short-secret"),
            ("UPSTREAM_SPF", "[]"),
            ("UPSTREAM_SPF", r#"{"a": "v=spf1 include:x ~all"}"#),
            ("UPSTREAM_SPF", r#"{"a": "include:"}"#),
            ("UPSTREAM_SPF", r#"{"a": "redirect=x"}"#),
            ("DOMAIN_RECHECK_MINUTES", "10081"),
            ("DOMAIN_RECHECK_MINUTES", "soon"),
            ("DOMAIN_RECHECK_LIMIT", "-3"),
            ("DOMAIN_RECHECK_LIMIT", "101"),
            ("DOMAIN_KEY_GRACE_HOURS", "9999"),
        ] {
            let e = DomainSettings::from_source(&source(&[(name, value)])).unwrap_err();
            assert_eq!(e.setting, name, "{value}");
            assert!(!e.problem.contains(value), "{}", e.problem);
        }
    }
}
