//! The settings delivery reads: the upstreams, how edgerelay talks to them,
//! when a failing one is skipped, and the retry timing.
//!
//! Owns the names, formats, defaults and limits of `SMTP_UPSTREAMS`,
//! `EHLO_NAME`, `SMTP_TIMEOUT_SECONDS`, `SMTP_PIPELINING`, `RETRY_*`,
//! `MESSAGE_LIFETIME_SECONDS`, `UPSTREAM_*` (with `UPSTREAM_ROUTES` and `UPSTREAM_LIMITS`), `DELIVERY_LEASE_SECONDS` and
//! `SWEEP_*`, parsed into one
//! [`DeliverySettings`] that delivery functions take (or a slice of it).
//! Must not: decide anything about delivery itself, or put a setting's value
//! into an error: `SMTP_UPSTREAMS` holds passwords, so errors name the setting
//! and the entry's position, never its text.

use crate::config::{ConfigError, ConfigSource, err, number, split_list};
use crate::message::dkim::Coverage;
use crate::queue::QUEUE_MAX_DELAY_SECONDS;

use super::policy::RetrySettings;
use super::routing::Routes;
use super::shaping::LimitsTable;
use super::upstream::Upstream;

/// What `EHLO_NAME` is when unset.
pub const DEFAULT_EHLO_NAME: &str = "edgerelay.invalid";

/// `MESSAGE_LIFETIME_SECONDS` when unset: five days.
pub const DEFAULT_LIFETIME_SECONDS: u64 = 432_000;

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

/// How long the lease and the sweep wait, and how much the sweep does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverySettings {
    /// How long a consumer's delivery lease lasts (`DELIVERY_LEASE_SECONDS`):
    /// longer than a queue invocation can run, so a live holder never loses it.
    pub lease_seconds: u32,
    /// How late a message's next step must be before the sweep acts
    /// (`SWEEP_GRACE_SECONDS`).
    pub sweep_grace_seconds: u32,
    /// The most messages one sweep run re-enqueues or corrects (`SWEEP_LIMIT`).
    pub sweep_limit: u32,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            // A queue consumer invocation runs for at most 15 minutes.
            lease_seconds: 900,
            sweep_grace_seconds: 900,
            sweep_limit: 200,
        }
    }
}

/// Everything delivery needs to know from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// The smarthosts, highest priority first (`SMTP_UPSTREAMS`).
    pub upstreams: Vec<Upstream>,
    /// Which upstreams carry which mail (`UPSTREAM_ROUTES`); empty: all.
    pub routes: Routes,
    /// Each upstream's rate, sessions and daily limits (`UPSTREAM_LIMITS`).
    pub limits: LimitsTable,
    /// The name announced in EHLO/HELO (`EHLO_NAME`).
    pub ehlo_name: String,
    /// Per-command timeout towards upstreams (`SMTP_TIMEOUT_SECONDS`).
    pub smtp_timeout_seconds: u32,
    /// Use PIPELINING where offered (`SMTP_PIPELINING`).
    pub smtp_pipelining: bool,
    /// Backoff and lifetime (`RETRY_*`, `MESSAGE_LIFETIME_SECONDS`).
    pub retry: RetrySettings,
    /// When failing upstreams are skipped (`UPSTREAM_*`).
    pub upstream_health: HealthSettings,
    /// The delivery lease and the reconciliation sweep
    /// (`DELIVERY_LEASE_SECONDS`, `SWEEP_*`).
    pub recovery: RecoverySettings,
}

impl DeliverySettings {
    /// Which headers DKIM signatures must cover for these upstreams: all
    /// but Message-ID when one of them replaces it (a `send-email://`
    /// binding); a signature over ours would fail at every receiver.
    pub fn dkim_coverage(&self) -> Coverage {
        let replaced = self
            .upstreams
            .iter()
            .any(|u| u.api.as_ref().is_some_and(|a| a.replaces_message_id()));
        if replaced {
            Coverage::WithoutMessageId
        } else {
            Coverage::Full
        }
    }

    /// Reads and checks every delivery setting; the first problem found is returned.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let upstreams = parse_upstreams(src)?;
        let routes = Routes::parse(&src.get("UPSTREAM_ROUTES").unwrap_or_default(), &upstreams)
            .map_err(|e| err("UPSTREAM_ROUTES", e))?;
        let labels: Vec<String> = upstreams.iter().map(Upstream::label).collect();
        let limits = LimitsTable::parse(&src.get("UPSTREAM_LIMITS").unwrap_or_default(), &labels)
            .map_err(|e| err("UPSTREAM_LIMITS", e))?;
        Ok(DeliverySettings {
            upstreams,
            routes,
            limits,
            ehlo_name: parse_ehlo_name(src)?,
            smtp_timeout_seconds: parse_timeout(src)?,
            smtp_pipelining: parse_pipelining(src)?,
            retry: parse_retry(src)?,
            upstream_health: parse_health(src)?,
            recovery: parse_recovery(src)?,
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
        .enumerate()
        .map(|(i, u)| {
            // The parser's own words never quote the entry, so they can be shown.
            Upstream::parse(u).map_err(|e| err("SMTP_UPSTREAMS", format!("entry {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if upstreams.is_empty() {
        return Err(err("SMTP_UPSTREAMS", "lists no upstream"));
    }
    Ok(upstreams)
}

fn parse_ehlo_name(src: &impl ConfigSource) -> Result<String, ConfigError> {
    let name = src
        .get("EHLO_NAME")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_EHLO_NAME.to_string());
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(err(
            "EHLO_NAME",
            "must be a host name (letters, digits, '.', '-')",
        ));
    }
    Ok(name)
}

fn parse_timeout(src: &impl ConfigSource) -> Result<u32, ConfigError> {
    let timeout = number(src, "SMTP_TIMEOUT_SECONDS", 30)?;
    if timeout == 0 || timeout > 600 {
        return Err(err("SMTP_TIMEOUT_SECONDS", "must be between 1 and 600"));
    }
    Ok(timeout as u32)
}

fn parse_retry(src: &impl ConfigSource) -> Result<RetrySettings, ConfigError> {
    let base = number(src, "RETRY_BASE_DELAY_SECONDS", 60)?;
    let max = number(
        src,
        "RETRY_MAX_DELAY_SECONDS",
        QUEUE_MAX_DELAY_SECONDS.into(),
    )?;
    if max > QUEUE_MAX_DELAY_SECONDS.into() {
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
    Ok(RetrySettings {
        base_delay_seconds: base as u32,
        max_delay_seconds: max as u32,
        lifetime_seconds: number(src, "MESSAGE_LIFETIME_SECONDS", DEFAULT_LIFETIME_SECONDS)?,
    })
}

fn parse_health(src: &impl ConfigSource) -> Result<HealthSettings, ConfigError> {
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

fn parse_recovery(src: &impl ConfigSource) -> Result<RecoverySettings, ConfigError> {
    let d = RecoverySettings::default();
    let bounded = |name: &'static str, default: u32, max: u64| {
        let v = number(src, name, default.into())?;
        if v == 0 || v > max {
            return Err(err(name, format!("must be between 1 and {max}")));
        }
        Ok(v as u32)
    };
    Ok(RecoverySettings {
        lease_seconds: bounded("DELIVERY_LEASE_SECONDS", d.lease_seconds, 3_600)?,
        sweep_grace_seconds: bounded("SWEEP_GRACE_SECONDS", d.sweep_grace_seconds, 86_400)?,
        sweep_limit: bounded("SWEEP_LIMIT", d.sweep_limit, 1_000)?,
    })
}

/// `SMTP_PIPELINING`: `on` (default) uses PIPELINING where offered; `off`
/// forces lock-step, one command per round trip.
fn parse_pipelining(src: &impl ConfigSource) -> Result<bool, ConfigError> {
    match src
        .get("SMTP_PIPELINING")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Ok(true),
        Some(v) => match v.as_str() {
            "" | "on" | "true" | "1" => Ok(true),
            "off" | "false" | "0" => Ok(false),
            _ => Err(err("SMTP_PIPELINING", "is neither `on` nor `off`")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;
    use crate::delivery::UpstreamSecurity;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    const UPSTREAM: (&str, &str) = ("SMTP_UPSTREAMS", "smtp://u:p@mail.example.net");

    /// The settings from `extra`, over one valid upstream (a later pair wins).
    fn parse(extra: Pairs) -> Result<DeliverySettings, ConfigError> {
        let mut pairs = vec![UPSTREAM];
        pairs.extend_from_slice(extra);
        DeliverySettings::from_source(&source(&pairs))
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.upstreams.len(), 1);
        assert_eq!(s.upstreams[0].port, 587);
        assert_eq!(s.upstreams[0].security, UpstreamSecurity::StartTls);
        assert_eq!(s.ehlo_name, DEFAULT_EHLO_NAME);
        assert_eq!(s.smtp_timeout_seconds, 30);
        assert!(s.smtp_pipelining);
        assert_eq!(
            s.retry,
            RetrySettings {
                base_delay_seconds: 60,
                max_delay_seconds: QUEUE_MAX_DELAY_SECONDS,
                lifetime_seconds: 432_000,
            }
        );
        assert_eq!(s.upstream_health, HealthSettings::default());
    }

    #[test]
    fn signatures_leave_out_message_id_only_behind_the_email_service() {
        for (upstreams, coverage) in [
            ("smtp://u:p@mail.example.net:587", Coverage::Full),
            (
                "smtp://mail.example.net:587, ses://K:S@eu-west-1",
                Coverage::Full,
            ),
            ("send-email://EMAIL", Coverage::WithoutMessageId),
            (
                "smtp://mail.example.net:587,SEND-EMAIL://EMAIL",
                Coverage::WithoutMessageId,
            ),
            // A scheme named in a password is not an upstream.
            (
                "smtp://u:send-email%3A%2F%2F@mail.example.net:587",
                Coverage::Full,
            ),
        ] {
            let s = parse(&[("SMTP_UPSTREAMS", upstreams)]).unwrap();
            assert_eq!(s.dkim_coverage(), coverage, "{upstreams}");
        }
    }

    #[test]
    fn missing_upstreams_are_named() {
        let e = DeliverySettings::from_source(&source(&[])).unwrap_err();
        assert_eq!(e.setting, "SMTP_UPSTREAMS");
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: &[(&str, &str)] = &[
            ("SMTP_UPSTREAMS", "http://x"),
            ("SMTP_UPSTREAMS", "smtp://host:99999"),
            ("SMTP_UPSTREAMS", "smtp://user@host"),
            ("SMTP_UPSTREAMS", " , "),
            ("RETRY_BASE_DELAY_SECONDS", "soon"),
            ("RETRY_BASE_DELAY_SECONDS", "0"),
            ("RETRY_BASE_DELAY_SECONDS", "50000"),
            ("RETRY_MAX_DELAY_SECONDS", "50000"),
            ("MESSAGE_LIFETIME_SECONDS", "forever"),
            ("EHLO_NAME", "bad name\r\n"),
            ("SMTP_TIMEOUT_SECONDS", "0"),
            ("SMTP_TIMEOUT_SECONDS", "601"),
            ("SMTP_PIPELINING", "sometimes"),
            ("UPSTREAM_FAILURE_THRESHOLD", "0"),
            ("UPSTREAM_COOLDOWN_SECONDS", "0"),
            ("UPSTREAM_COOLDOWN_SECONDS", "7200"),
            ("UPSTREAM_MAX_COOLDOWN_SECONDS", "x"),
        ];
        for (name, value) in cases {
            let e = parse(&[(name, value)]).unwrap_err();
            assert_eq!(e.setting, *name, "{name}={value}: {e}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    /// No error about an upstream quotes the entry: whatever part of it is
    /// malformed, a password in it must not reach a log line.
    #[test]
    fn upstream_errors_never_echo_the_entry() {
        let secret = "s3cret";
        let table = [
            "smtps//relayuser:S3cret@host",
            "smtp://relayuser:S3cret",
            "smtp://relayuser:S3cret@",
            "smtp://relayuser:S3cret@host:S3cret",
            "smtp://relayuser:S3cret@[::1",
            "smtp://relayuser:S3cret@[::1]S3cret",
            "smtp://relayuser:S3cret@ho st",
            "smtp://relayuser@S3cret",
            "smtp://relayuser:S3cret%zz@host",
            "smtp://relayuser:S3cret%ff@host",
            "S3cret://relayuser:S3cret@host",
            "smtps://ok.example.net, smtp://relayuser:S3cret@host:0",
        ];
        for value in table {
            let e = parse(&[("SMTP_UPSTREAMS", value)]).unwrap_err();
            assert_eq!(e.setting, "SMTP_UPSTREAMS", "{value}");
            let text = format!("{e} {e:?}").to_ascii_lowercase();
            assert!(!text.contains(secret), "{value} -> {text}");
            assert!(!text.contains("relayuser"), "{value} -> {text}");
        }
        let e = parse(&[(
            "SMTP_UPSTREAMS",
            "smtps://a.example.net, smtp://u:S3cret@h:0",
        )]);
        assert!(e.unwrap_err().problem.starts_with("entry 2:"));
    }

    #[test]
    fn other_errors_never_echo_the_value() {
        for name in [
            "EHLO_NAME",
            "SMTP_TIMEOUT_SECONDS",
            "SMTP_PIPELINING",
            "RETRY_BASE_DELAY_SECONDS",
            "RETRY_MAX_DELAY_SECONDS",
            "MESSAGE_LIFETIME_SECONDS",
            "UPSTREAM_FAILURE_THRESHOLD",
            "UPSTREAM_COOLDOWN_SECONDS",
            "UPSTREAM_MAX_COOLDOWN_SECONDS",
            "DELIVERY_LEASE_SECONDS",
            "SWEEP_GRACE_SECONDS",
            "SWEEP_LIMIT",
        ] {
            let e = parse(&[(name, "S3cret value")]).unwrap_err();
            assert_eq!(e.setting, name);
            let text = format!("{e} {e:?}").to_ascii_lowercase();
            assert!(!text.contains("s3cret"), "{name}: {e}");
        }
    }

    #[test]
    fn recovery_settings_and_their_limits() {
        let d = parse(&[]).unwrap().recovery;
        assert_eq!(d, RecoverySettings::default());
        let s = parse(&[
            ("DELIVERY_LEASE_SECONDS", "20"),
            ("SWEEP_GRACE_SECONDS", "2"),
            ("SWEEP_LIMIT", "7"),
        ])
        .unwrap()
        .recovery;
        assert_eq!(
            (s.lease_seconds, s.sweep_grace_seconds, s.sweep_limit),
            (20, 2, 7)
        );
        for (name, value) in [
            ("DELIVERY_LEASE_SECONDS", "0"),
            ("DELIVERY_LEASE_SECONDS", "3601"),
            ("SWEEP_GRACE_SECONDS", "86401"),
            ("SWEEP_LIMIT", "0"),
            ("SWEEP_LIMIT", "1001"),
        ] {
            assert_eq!(
                parse(&[(name, value)]).unwrap_err().setting,
                name,
                "{value}"
            );
        }
    }

    #[test]
    fn pipelining_values() {
        let table: &[(&str, bool)] = &[
            ("on", true),
            ("", true),
            (" OFF ", false),
            ("false", false),
            ("0", false),
            ("TRUE", true),
        ];
        for (value, want) in table {
            let s = parse(&[("SMTP_PIPELINING", value)]).unwrap();
            assert_eq!(s.smtp_pipelining, *want, "{value:?}");
        }
    }

    #[test]
    fn health_values() {
        let s = parse(&[
            ("UPSTREAM_FAILURE_THRESHOLD", "2"),
            ("UPSTREAM_COOLDOWN_SECONDS", "30"),
            ("UPSTREAM_MAX_COOLDOWN_SECONDS", "120"),
        ])
        .unwrap();
        assert_eq!(
            s.upstream_health,
            HealthSettings {
                failure_threshold: 2,
                cooldown_seconds: 30,
                max_cooldown_seconds: 120,
            }
        );
    }

    #[test]
    fn retry_values() {
        let s = parse(&[
            ("RETRY_BASE_DELAY_SECONDS", "5"),
            ("RETRY_MAX_DELAY_SECONDS", "600"),
            ("MESSAGE_LIFETIME_SECONDS", "3600"),
        ])
        .unwrap();
        assert_eq!(
            s.retry,
            RetrySettings {
                base_delay_seconds: 5,
                max_delay_seconds: 600,
                lifetime_seconds: 3_600,
            }
        );
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
        let s = parse(&[("SMTP_UPSTREAMS", "smtps://a, smtp://b:2525")]).unwrap();
        let labels: Vec<String> = s.upstreams.iter().map(Upstream::label).collect();
        assert_eq!(labels, vec!["a:465", "b:2525"]);
    }
}
