//! The reputation guard: when a tenant's complaint rate over a sliding
//! window reaches Gmail's hard line (0.3%), or its hard-bounce rate passes a
//! set threshold, its marketing mail pauses (transactional mail goes on)
//! until someone resumes it. Below a minimum volume, rates say nothing and
//! nothing pauses.
//!
//! The rates are over all of the tenant's mail in the window (a receiver
//! judges the sender, not one stream), counted from the statistics rollups
//! (`sent`, `spam_reports`, `hard_bounces`); only marketing-kind streams
//! pause. The window is whole UTC hours, the rollups' buckets: from the hour
//! holding `now - window` on, and never from before a resume (the guard
//! counts only hours that start after the latest resume, so a resume is not
//! undone by the very complaints that caused the pause).
//!
//! Owns: the settings, the verdict over counts the caller gathered, where a
//! tenant's window starts, and the payloads of `stream.paused` and
//! `stream.resumed`. Must not: count, store, or read the clock.
//!
//! | Setting | Default | Meaning |
//! | --- | --- | --- |
//! | `REPUTATION_COMPLAINT_RATE_PERCENT` | 0.3 | complaint rate (percent of mail sent) at which marketing pauses |
//! | `REPUTATION_HARD_BOUNCE_RATE_PERCENT` | 5 | hard-bounce rate (percent) at which marketing pauses |
//! | `REPUTATION_MIN_VOLUME` | 1000 | messages sent in the window before the guard judges |
//! | `REPUTATION_WINDOW_HOURS` | 24 | the sliding window (1 to 720 hours) |
//! | `REPUTATION_HOLD_SECONDS` | 300 | how long a held marketing job waits before it looks again (1 to 43200) |

use serde_json::{Map, Value, json};

use std::collections::HashSet;

use crate::config::{ConfigError, ConfigSource, err, number};
use crate::queue::DeliveryJob;

use super::model::{EmailEvent, EventType, event_id};
use super::time::rfc3339_ms;

const HOUR: u64 = 3_600;

/// The stream name the guard's events and routes use for every
/// marketing-kind stream of a tenant.
pub const MARKETING: &str = "marketing";

/// The guard's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardSettings {
    /// Complaints per message sent at which marketing pauses (0.003).
    pub max_complaint_rate: f64,
    /// Hard bounces per message sent at which marketing pauses.
    pub max_hard_bounce_rate: f64,
    /// Fewest messages sent in the window before a rate counts.
    pub min_volume: u64,
    /// The sliding window, seconds (whole hours).
    pub window_seconds: u64,
    /// How long a held marketing job waits before it looks again, seconds.
    pub hold_seconds: u32,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            max_complaint_rate: 0.003,
            max_hard_bounce_rate: 0.05,
            min_volume: 1_000,
            window_seconds: 24 * HOUR,
            hold_seconds: 300,
        }
    }
}

/// A rate setting given in percent (more than 0, at most 100), as a
/// fraction; `default` is a fraction too.
fn percent(src: &impl ConfigSource, name: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(raw) = src.get(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };

    match serde_json::from_str::<f64>(raw.trim()) {
        Ok(p) if p.is_finite() && p > 0.0 && p <= 100.0 => Ok(p / 100.0),
        _ => Err(err(name, "must be a percentage above 0 and at most 100")),
    }
}

impl GuardSettings {
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let d = GuardSettings::default();
        let max_complaint_rate = percent(
            src,
            "REPUTATION_COMPLAINT_RATE_PERCENT",
            d.max_complaint_rate,
        )?;
        let max_hard_bounce_rate = percent(
            src,
            "REPUTATION_HARD_BOUNCE_RATE_PERCENT",
            d.max_hard_bounce_rate,
        )?;
        let min_volume = number(src, "REPUTATION_MIN_VOLUME", d.min_volume)?;
        if min_volume == 0 {
            return Err(err(
                "REPUTATION_MIN_VOLUME",
                "must be at least 1 (messages)",
            ));
        }
        let hours = number(src, "REPUTATION_WINDOW_HOURS", d.window_seconds / HOUR)?;
        if !(1..=720).contains(&hours) {
            return Err(err("REPUTATION_WINDOW_HOURS", "must be 1 to 720 (hours)"));
        }
        let hold = number(src, "REPUTATION_HOLD_SECONDS", u64::from(d.hold_seconds))?;
        if !(1..=43_200).contains(&hold) {
            return Err(err(
                "REPUTATION_HOLD_SECONDS",
                "must be 1 to 43200 (seconds)",
            ));
        }
        Ok(GuardSettings {
            max_complaint_rate,
            max_hard_bounce_rate,
            min_volume,
            window_seconds: hours * HOUR,
            hold_seconds: hold as u32,
        })
    }

    /// The thresholds as payloads and the guard's view show them.
    pub fn thresholds(&self) -> Value {
        json!({
            "complaint_rate": self.max_complaint_rate,
            "hard_bounce_rate": self.max_hard_bounce_rate,
            "min_volume": self.min_volume,
            "window_hours": self.window_seconds / HOUR,
        })
    }
}

/// What the window holds for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    pub sent: u64,
    pub complaints: u64,
    pub hard_bounces: u64,
}

impl WindowCounts {
    /// Adds a rollup row's count of `metric` (`sent`, `spam_reports`,
    /// `hard_bounces`; others are ignored).
    pub fn add(&mut self, metric: &str, count: u64) {
        let slot = match metric {
            "sent" => &mut self.sent,
            "spam_reports" => &mut self.complaints,
            "hard_bounces" => &mut self.hard_bounces,
            _ => return,
        };
        *slot = slot.saturating_add(count);
    }

    /// Folds rollup sums `(tenant, metric, total)` into each tenant's
    /// counts, in the order tenants first appear. A negative or fractional
    /// total (D1 returns sums as numbers) counts as its whole part, at least 0.
    pub fn by_tenant(rows: impl IntoIterator<Item = (String, String, f64)>) -> Vec<(String, Self)> {
        let mut out: Vec<(String, Self)> = Vec::new();
        for (tenant, metric, total) in rows {
            let count = total.max(0.0) as u64;
            match out.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, counts)) => counts.add(&metric, count),
                None => {
                    let mut counts = Self::default();
                    counts.add(&metric, count);
                    out.push((tenant, counts));
                }
            }
        }
        out
    }

    fn rate(&self, count: u64) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            count as f64 / self.sent as f64
        }
    }

    /// The counts and rates as payloads show them.
    pub fn measured(&self) -> Value {
        json!({
            "volume": {
                "sent": self.sent,
                "complaints": self.complaints,
                "hard_bounces": self.hard_bounces,
            },
            "rates": {
                "complaint": self.rate(self.complaints),
                "hard_bounce": self.rate(self.hard_bounces),
            },
        })
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guard {
    Carry,
    /// Pause marketing: which rate, and its value.
    Pause {
        reason: PauseReason,
        rate: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    ComplaintRate,
    HardBounceRate,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::ComplaintRate => "complaint_rate",
            PauseReason::HardBounceRate => "hard_bounce_rate",
        }
    }
}

/// Decides over `counts`.
pub fn judge(counts: WindowCounts, settings: &GuardSettings) -> Guard {
    if counts.sent == 0 || counts.sent < settings.min_volume {
        return Guard::Carry;
    }
    let sent = counts.sent as f64;
    let complaint_rate = counts.complaints as f64 / sent;
    if complaint_rate >= settings.max_complaint_rate {
        return Guard::Pause {
            reason: PauseReason::ComplaintRate,
            rate: complaint_rate,
        };
    }
    let bounce_rate = counts.hard_bounces as f64 / sent;
    if bounce_rate >= settings.max_hard_bounce_rate {
        return Guard::Pause {
            reason: PauseReason::HardBounceRate,
            rate: bounce_rate,
        };
    }
    Guard::Carry
}

/// The first hour (Unix seconds) of the window at `now_s`, before any
/// resume is considered: the hour holding `now - window`.
pub fn window_start(now_s: u64, settings: &GuardSettings) -> u64 {
    let from = now_s.saturating_sub(settings.window_seconds);
    from - from % HOUR
}

/// The first hour the guard may count after a resume at `resumed_at_ms`:
/// the next hour that starts at or after it.
pub fn counts_from_after_resume(resumed_at_ms: u64) -> u64 {
    (resumed_at_ms / 1000).div_ceil(HOUR) * HOUR
}

/// The first hour a tenant's window counts: the window's start, or the
/// first hour after its latest resume when that is later.
pub fn tenant_window_start(now_s: u64, settings: &GuardSettings, counts_from: u64) -> u64 {
    window_start(now_s, settings).max(counts_from)
}

/// A pause the guard decided: what goes into `stream.paused` and the
/// guard's stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub tenant: String,
    pub reason: PauseReason,
    /// The payload's `data`.
    pub data: Map<String, Value>,
}

/// Judges one tenant's window (from `from_s`, at `now_ms`): a pause, or
/// `None` to carry on.
pub fn review(
    tenant: &str,
    counts: WindowCounts,
    settings: &GuardSettings,
    from_s: u64,
    now_ms: u64,
) -> Option<Pause> {
    let Guard::Pause { reason, .. } = judge(counts, settings) else {
        return None;
    };
    let mut data = Map::new();
    data.insert("stream".into(), json!(MARKETING));
    data.insert("reason".into(), json!(reason.as_str()));
    data.insert(
        "window".into(),
        json!({"from": rfc3339_ms(from_s * 1000), "to": rfc3339_ms(now_ms)}),
    );
    if let Value::Object(measured) = counts.measured() {
        data.extend(measured);
    }
    data.insert("thresholds".into(), settings.thresholds());
    Some(Pause {
        tenant: tenant.to_string(),
        reason,
        data,
    })
}

/// The `stream.paused` event of `pause`.
pub fn paused_event(pause: &Pause, at_ms: u64, entropy: &[u8; 16]) -> EmailEvent {
    stream_event(
        &pause.tenant,
        EventType::StreamPaused,
        pause.data.clone(),
        at_ms,
        entropy,
    )
}

/// The `stream.resumed` event: the pause's measurements (`paused`, the
/// stored `data` of its `stream.paused`), when it paused, and which key
/// resumed it.
pub fn resumed_event(
    tenant: &str,
    paused: Option<&Map<String, Value>>,
    paused_at_ms: Option<u64>,
    key_id: &str,
    at_ms: u64,
    entropy: &[u8; 16],
) -> EmailEvent {
    let mut data = Map::new();
    data.insert("stream".into(), json!(MARKETING));
    if let Some(paused) = paused {
        for field in ["reason", "window", "volume", "rates", "thresholds"] {
            if let Some(v) = paused.get(field) {
                data.insert(field.into(), v.clone());
            }
        }
    }
    data.insert("paused_at".into(), json!(paused_at_ms.map(rfc3339_ms)));
    data.insert("resumed_by".into(), json!(key_id));
    stream_event(tenant, EventType::StreamResumed, data, at_ms, entropy)
}

/// An event about a tenant's stream, not about a message: its
/// `message_id` is empty and it names no recipient.
fn stream_event(
    tenant: &str,
    event_type: EventType,
    data: Map<String, Value>,
    at_ms: u64,
    entropy: &[u8; 16],
) -> EmailEvent {
    EmailEvent {
        id: event_id(entropy),
        tenant: tenant.to_string(),
        message_id: String::new(),
        recipient: None,
        event_type,
        created_at_ms: at_ms,
        data,
    }
}

/// Whether the consumer holds `job`: marketing mail of a tenant whose
/// marketing is paused. It waits on the queue without spending an attempt;
/// transactional mail is never held.
pub fn holds(job: &DeliveryJob, paused_tenants: &HashSet<String>) -> bool {
    job.is_marketing() && paused_tenants.contains(job.tenant())
}

/// A tenant's guard record as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuardRecord {
    pub paused: bool,
    pub reason: Option<String>,
    pub paused_at_ms: Option<u64>,
    /// The `data` of the latest `stream.paused`.
    pub detail: Option<Map<String, Value>>,
    pub resumed_at_ms: Option<u64>,
    pub resumed_by: Option<String>,
    /// The first hour the guard counts (after the latest resume), Unix s.
    pub counts_from: u64,
}

/// `GET /v1/streams/marketing`: the guard's state for a tenant, with the
/// window as it stands now.
pub fn state_view(
    record: &GuardRecord,
    counts: WindowCounts,
    settings: &GuardSettings,
    from_s: u64,
) -> Value {
    let mut window = json!({"from": rfc3339_ms(from_s * 1000)});
    if let (Value::Object(w), Value::Object(m)) = (&mut window, counts.measured()) {
        w.extend(m);
    }
    json!({
        "stream": MARKETING,
        "state": if record.paused { "paused" } else { "active" },
        "reason": if record.paused { record.reason.clone() } else { None },
        "paused_at": record.paused_at_ms.map(rfc3339_ms),
        "paused": record.detail,
        "resumed_at": record.resumed_at_ms.map(rfc3339_ms),
        "resumed_by": record.resumed_by,
        "window": window,
        "thresholds": settings.thresholds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source;

    fn counts(sent: u64, complaints: u64, hard_bounces: u64) -> WindowCounts {
        WindowCounts {
            sent,
            complaints,
            hard_bounces,
        }
    }

    #[test]
    fn guard_table() {
        let s = GuardSettings::default();
        let table: &[(WindowCounts, Option<PauseReason>)] = &[
            (counts(10_000, 30, 0), Some(PauseReason::ComplaintRate)),
            (counts(10_000, 29, 0), None),
            (counts(10_000, 0, 500), Some(PauseReason::HardBounceRate)),
            (counts(10_000, 0, 499), None),
            // Below the minimum volume, even a terrible rate says nothing.
            (counts(999, 500, 500), None),
            (counts(1_000, 3, 0), Some(PauseReason::ComplaintRate)),
            (counts(1_000, 2, 49), None),
            (counts(0, 0, 0), None),
            (counts(0, 5, 5), None),
            // Both: the complaint rate is named first.
            (counts(2_000, 10, 200), Some(PauseReason::ComplaintRate)),
        ];
        for (c, want) in table {
            let got = match judge(*c, &s) {
                Guard::Carry => None,
                Guard::Pause { reason, .. } => Some(reason),
            };
            assert_eq!(got, *want, "{c:?}");
        }
        let Guard::Pause { rate, .. } = judge(counts(10_000, 30, 0), &s) else {
            panic!("expected a pause");
        };
        assert!((rate - 0.003).abs() < 1e-12);
    }

    #[test]
    fn a_small_minimum_volume_judges_small_windows() {
        let s = GuardSettings {
            min_volume: 10,
            ..GuardSettings::default()
        };
        let table: &[(WindowCounts, bool)] = &[
            (counts(9, 9, 0), false),
            (counts(10, 1, 0), true),
            (counts(400, 1, 0), false),
            (counts(333, 1, 0), true),
            (counts(20, 0, 1), true),
            (counts(21, 0, 1), false),
        ];
        for (c, paused) in table {
            assert_eq!(
                matches!(judge(*c, &s), Guard::Pause { .. }),
                *paused,
                "{c:?}"
            );
        }
    }

    #[test]
    fn settings_table() {
        type Want = Result<(f64, f64, u64, u64, u32), &'static str>;
        let table: &[(&[(&str, &str)], Want)] = &[
            (&[], Ok((0.003, 0.05, 1_000, 86_400, 300))),
            (
                &[
                    ("REPUTATION_COMPLAINT_RATE_PERCENT", " 0.1 "),
                    ("REPUTATION_HARD_BOUNCE_RATE_PERCENT", "2"),
                    ("REPUTATION_MIN_VOLUME", "50"),
                    ("REPUTATION_WINDOW_HOURS", "1"),
                    ("REPUTATION_HOLD_SECONDS", "1"),
                ],
                Ok((0.001, 0.02, 50, 3_600, 1)),
            ),
            (
                &[("REPUTATION_COMPLAINT_RATE_PERCENT", "")],
                Ok((0.003, 0.05, 1_000, 86_400, 300)),
            ),
            (
                &[("REPUTATION_COMPLAINT_RATE_PERCENT", "0")],
                Err("REPUTATION_COMPLAINT_RATE_PERCENT"),
            ),
            (
                &[("REPUTATION_COMPLAINT_RATE_PERCENT", "100.5")],
                Err("REPUTATION_COMPLAINT_RATE_PERCENT"),
            ),
            (
                &[("REPUTATION_COMPLAINT_RATE_PERCENT", "NaN")],
                Err("REPUTATION_COMPLAINT_RATE_PERCENT"),
            ),
            (
                &[("REPUTATION_COMPLAINT_RATE_PERCENT", "0.3%")],
                Err("REPUTATION_COMPLAINT_RATE_PERCENT"),
            ),
            (
                &[("REPUTATION_HARD_BOUNCE_RATE_PERCENT", "-1")],
                Err("REPUTATION_HARD_BOUNCE_RATE_PERCENT"),
            ),
            (
                &[("REPUTATION_MIN_VOLUME", "0")],
                Err("REPUTATION_MIN_VOLUME"),
            ),
            (
                &[("REPUTATION_MIN_VOLUME", "ten")],
                Err("REPUTATION_MIN_VOLUME"),
            ),
            (
                &[("REPUTATION_WINDOW_HOURS", "0")],
                Err("REPUTATION_WINDOW_HOURS"),
            ),
            (
                &[("REPUTATION_WINDOW_HOURS", "721")],
                Err("REPUTATION_WINDOW_HOURS"),
            ),
            (
                &[("REPUTATION_HOLD_SECONDS", "0")],
                Err("REPUTATION_HOLD_SECONDS"),
            ),
            (
                &[("REPUTATION_HOLD_SECONDS", "43201")],
                Err("REPUTATION_HOLD_SECONDS"),
            ),
        ];
        for (pairs, want) in table {
            let got = GuardSettings::from_source(&pairs_source(pairs))
                .map(|s| {
                    (
                        s.max_complaint_rate,
                        s.max_hard_bounce_rate,
                        s.min_volume,
                        s.window_seconds,
                        s.hold_seconds,
                    )
                })
                .map_err(|e| e.setting);
            match (&got, want) {
                (Ok(g), Ok(w)) => {
                    assert!((g.0 - w.0).abs() < 1e-12, "{pairs:?}");
                    assert!((g.1 - w.1).abs() < 1e-12, "{pairs:?}");
                    assert_eq!((g.2, g.3, g.4), (w.2, w.3, w.4), "{pairs:?}");
                }
                _ => assert_eq!(got.map(|_| ()), want.map(|_| ()), "{pairs:?}"),
            }
        }
    }

    #[test]
    fn the_window_starts_on_an_hour_and_never_before_a_resume() {
        let s = GuardSettings::default();
        // 2026-12-09 21:07:49 UTC.
        let now = 1_796_850_469;
        let start = window_start(now, &s);
        assert_eq!(start % HOUR, 0);
        assert!(start <= now - s.window_seconds && now - s.window_seconds - start < HOUR);
        // Never resumed: the window's start.
        assert_eq!(tenant_window_start(now, &s, 0), start);
        // Resumed ten minutes ago: only the hours after the resume count.
        let resumed_ms = (now - 600) * 1000;
        let from = counts_from_after_resume(resumed_ms);
        assert_eq!(from % HOUR, 0);
        assert!(from >= now - 600 && from - (now - 600) < HOUR);
        assert_eq!(tenant_window_start(now, &s, from), from);
        // A resume exactly on an hour counts that hour.
        assert_eq!(counts_from_after_resume(7_200_000), 7_200);
        // Resumed long ago: the window's start again.
        assert_eq!(
            tenant_window_start(now, &s, counts_from_after_resume(1_000_000)),
            start
        );
    }

    #[test]
    fn counts_add_up_from_rollup_rows() {
        let mut c = WindowCounts::default();
        for (metric, n) in [
            ("sent", 40),
            ("spam_reports", 1),
            ("sent", 60),
            ("hard_bounces", 2),
            ("opens", 1_000),
            ("sent", u64::MAX),
        ] {
            c.add(metric, n);
        }
        assert_eq!(c, counts(u64::MAX, 1, 2));
    }

    #[test]
    fn sums_fold_per_tenant_in_order() {
        let row = |t: &str, m: &str, n: f64| (t.to_string(), m.to_string(), n);
        let folded = WindowCounts::by_tenant([
            row("b", "sent", 10.0),
            row("a", "sent", 5.0),
            row("b", "spam_reports", 1.0),
            row("a", "hard_bounces", -3.0),
            row("b", "hard_bounces", 2.9),
        ]);
        assert_eq!(
            folded,
            vec![
                ("b".to_string(), counts(10, 1, 2)),
                ("a".to_string(), counts(5, 0, 0))
            ]
        );
        assert!(WindowCounts::by_tenant([]).is_empty());
    }

    #[test]
    fn paused_and_resumed_payloads() {
        let s = GuardSettings {
            min_volume: 10,
            ..GuardSettings::default()
        };
        assert_eq!(review("acme", counts(9, 9, 0), &s, 0, 0), None);
        let pause = review(
            "acme",
            counts(100, 1, 3),
            &s,
            1_796_846_400,
            1_796_850_469_123,
        )
        .expect("a pause");
        assert_eq!(pause.reason, PauseReason::ComplaintRate);
        let event = paused_event(&pause, 1_796_850_469_123, &[0xcd; 16]);
        assert_eq!(event.tenant, "acme");
        assert_eq!(event.message_id, "");
        assert_eq!(
            event.payload(),
            json!({
                "type": "stream.paused",
                "created_at": "2026-12-09T21:07:49.123Z",
                "data": {
                    "stream": "marketing",
                    "reason": "complaint_rate",
                    "window": {"from": "2026-12-09T20:00:00.000Z", "to": "2026-12-09T21:07:49.123Z"},
                    "volume": {"sent": 100, "complaints": 1, "hard_bounces": 3},
                    "rates": {"complaint": 0.01, "hard_bounce": 0.03},
                    "thresholds": {
                        "complaint_rate": 0.003,
                        "hard_bounce_rate": 0.05,
                        "min_volume": 10,
                        "window_hours": 24,
                    },
                }
            })
        );
        let resumed = resumed_event(
            "acme",
            Some(&pause.data),
            Some(1_796_850_469_123),
            "ops",
            1_796_850_500_000,
            &[0xce; 16],
        );
        let payload = resumed.payload();
        assert_eq!(payload["type"], "stream.resumed");
        assert_eq!(payload["data"]["reason"], "complaint_rate");
        assert_eq!(payload["data"]["rates"], pause.data["rates"]);
        assert_eq!(payload["data"]["thresholds"], pause.data["thresholds"]);
        assert_eq!(payload["data"]["volume"]["sent"], 100);
        assert_eq!(payload["data"]["paused_at"], "2026-12-09T21:07:49.123Z");
        assert_eq!(payload["data"]["resumed_by"], "ops");
        // A resume with no pause on record still says who and which stream.
        let bare = resumed_event("acme", None, None, "ops", 0, &[0; 16]).payload();
        assert_eq!(bare["data"]["stream"], "marketing");
        assert_eq!(bare["data"]["paused_at"], Value::Null);
    }

    #[test]
    fn only_marketing_mail_of_a_paused_tenant_is_held() {
        let paused: HashSet<String> = ["acme".to_string()].into();
        let job = |tenant: &str, stream: Option<&str>, marketing: bool| {
            let mut j = DeliveryJob::sample("m", "MIME");
            j.tenant = tenant.into();
            j.stream = stream.map(str::to_string);
            j.marketing = marketing;
            j
        };
        let table: &[(DeliveryJob, bool)] = &[
            (job("acme", Some("marketing"), true), true),
            // A job written before the flag: its stream's name says.
            (job("acme", Some("marketing"), false), true),
            // A key's named stream of the marketing kind.
            (job("acme", Some("newsletter"), true), true),
            (job("acme", Some("alerts"), false), false),
            (job("acme", None, false), false),
            (job("other", Some("marketing"), true), false),
        ];
        for (j, want) in table {
            assert_eq!(holds(j, &paused), *want, "{:?} {:?}", j.tenant, j.stream);
        }
        // A job without a tenant belongs to its key.
        let mut old = job("", Some("marketing"), false);
        old.key_id = "acme".into();
        assert!(holds(&old, &paused));
    }

    #[test]
    fn the_state_view_shows_the_pause_and_the_window() {
        let s = GuardSettings::default();
        let record = GuardRecord {
            paused: true,
            reason: Some("complaint_rate".into()),
            paused_at_ms: Some(0),
            detail: None,
            resumed_at_ms: None,
            resumed_by: None,
            counts_from: 0,
        };
        let view = state_view(&record, counts(10, 1, 0), &s, 3_600);
        assert_eq!(view["state"], "paused");
        assert_eq!(view["reason"], "complaint_rate");
        assert_eq!(view["window"]["from"], "1970-01-01T01:00:00.000Z");
        assert_eq!(view["window"]["volume"]["sent"], 10);
        assert_eq!(view["window"]["rates"]["complaint"], 0.1);
        let active = state_view(&GuardRecord::default(), WindowCounts::default(), &s, 0);
        assert_eq!(active["state"], "active");
        assert_eq!(active["reason"], Value::Null);
        assert_eq!(active["window"]["rates"]["complaint"], 0.0);
    }
}
