//! Settings about how edgerelay treats its upstreams: whether to pipeline,
//! and when a failing upstream is skipped for a while.
//!
//! Owns the names, formats and defaults of those settings. Must not decide
//! anything about health itself (that is `delivery::health`).

use crate::config::{ConfigError, ConfigSource, err, number};

/// When an upstream is skipped after failing, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// Consecutive failed sessions before the first cool-down.
    pub failure_threshold: u32,
    /// The first cool-down; each further failure doubles it.
    pub cooldown_seconds: u32,
    /// The longest cool-down.
    pub max_cooldown_seconds: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            failure_threshold: 3,
            cooldown_seconds: 60,
            max_cooldown_seconds: 3_600,
        }
    }
}

pub fn parse_health(src: &impl ConfigSource) -> Result<HealthSettings, ConfigError> {
    let d = HealthSettings::default();
    let threshold = number(
        src,
        "UPSTREAM_FAILURE_THRESHOLD",
        d.failure_threshold.into(),
    )?;
    if threshold == 0 || threshold > 1_000 {
        return Err(err(
            "UPSTREAM_FAILURE_THRESHOLD",
            "must be between 1 and 1000",
        ));
    }
    let max = number(
        src,
        "UPSTREAM_MAX_COOLDOWN_SECONDS",
        d.max_cooldown_seconds.into(),
    )?;
    if max == 0 || max > 86_400 {
        return Err(err(
            "UPSTREAM_MAX_COOLDOWN_SECONDS",
            "must be between 1 and 86400",
        ));
    }
    let cooldown = number(src, "UPSTREAM_COOLDOWN_SECONDS", d.cooldown_seconds.into())?;
    if cooldown == 0 || cooldown > max {
        return Err(err(
            "UPSTREAM_COOLDOWN_SECONDS",
            "must be at least 1 and at most UPSTREAM_MAX_COOLDOWN_SECONDS",
        ));
    }
    Ok(HealthSettings {
        failure_threshold: threshold as u32,
        cooldown_seconds: cooldown as u32,
        max_cooldown_seconds: max as u32,
    })
}

/// `SMTP_PIPELINING`: `on` (default) uses PIPELINING where offered; `off`
/// forces lock-step, one command per round trip.
pub fn parse_pipelining(src: &impl ConfigSource) -> Result<bool, ConfigError> {
    match src
        .get("SMTP_PIPELINING")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Ok(true),
        Some(v) => match v.as_str() {
            "" | "on" | "true" | "1" => Ok(true),
            "off" | "false" | "0" => Ok(false),
            _ => Err(err(
                "SMTP_PIPELINING",
                format!("`{v}` is not `on` or `off`"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: Pairs) -> impl ConfigSource {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    type Pairs = &'static [(&'static str, &'static str)];

    #[test]
    fn pipelining_values() {
        let table: &[(Pairs, Option<bool>)] = &[
            (&[], Some(true)),
            (&[("SMTP_PIPELINING", "on")], Some(true)),
            (&[("SMTP_PIPELINING", " OFF ")], Some(false)),
            (&[("SMTP_PIPELINING", "false")], Some(false)),
            (&[("SMTP_PIPELINING", "sometimes")], None),
        ];
        for (pairs, want) in table {
            let got = parse_pipelining(&source(pairs));
            match want {
                Some(v) => assert_eq!(got, Ok(*v), "{pairs:?}"),
                None => assert_eq!(got.unwrap_err().setting, "SMTP_PIPELINING"),
            }
        }
    }

    #[test]
    fn health_values() {
        // Ok((threshold, cool-down, ceiling)) or Err(the setting named).
        type Want = Result<(u32, u32, u32), &'static str>;
        let table: &[(Pairs, Want)] = &[
            (&[], Ok((3, 60, 3_600))),
            (
                &[
                    ("UPSTREAM_FAILURE_THRESHOLD", "2"),
                    ("UPSTREAM_COOLDOWN_SECONDS", "30"),
                    ("UPSTREAM_MAX_COOLDOWN_SECONDS", "120"),
                ],
                Ok((2, 30, 120)),
            ),
            (
                &[("UPSTREAM_FAILURE_THRESHOLD", "0")],
                Err("UPSTREAM_FAILURE_THRESHOLD"),
            ),
            (
                &[("UPSTREAM_COOLDOWN_SECONDS", "0")],
                Err("UPSTREAM_COOLDOWN_SECONDS"),
            ),
            (
                &[("UPSTREAM_COOLDOWN_SECONDS", "7200")],
                Err("UPSTREAM_COOLDOWN_SECONDS"),
            ),
            (
                &[("UPSTREAM_MAX_COOLDOWN_SECONDS", "x")],
                Err("UPSTREAM_MAX_COOLDOWN_SECONDS"),
            ),
        ];
        for (pairs, want) in table {
            let got = parse_health(&source(pairs));
            match want {
                Ok((t, c, m)) => {
                    let h = got.unwrap();
                    assert_eq!(
                        (
                            h.failure_threshold,
                            h.cooldown_seconds,
                            h.max_cooldown_seconds
                        ),
                        (*t, *c, *m)
                    );
                }
                Err(name) => assert_eq!(got.unwrap_err().setting, *name, "{pairs:?}"),
            }
        }
    }
}
