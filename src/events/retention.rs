//! How long records are kept, and what one purge run may delete.
//!
//! Owns: the retention settings (`RETENTION_DAYS`, `RETENTION_PURGE_LIMIT`),
//! the cutoffs a run works with ([`PurgePlan`]), which message records are
//! due ([`PurgePlan::message_due`]: final, and untouched since the cutoff; a
//! message still queued or deferred keeps everything), and the counts a run
//! reports ([`PurgeCounts`], the `purge_runs` row and the log line).
//! Suppressions are never purged by age: they are what keeps an address from
//! being mailed. Only an entry whose own expiry has passed is removed.
//! Must not: perform I/O or read the clock (the time is passed in), or know
//! the SQL that carries a plan out (the edge does).
//!
//! | Setting | Default | Meaning |
//! | --- | --- | --- |
//! | `RETENTION_DAYS` | 30 | days a final message's records, events, webhook deliveries and reports are kept (1 to 3650) |
//! | `RETENTION_PURGE_LIMIT` | 500 | rows each table may lose in one purge run (1 to 5000) |

use crate::config::{ConfigError, ConfigSource, err, number};
use crate::queue::MessageStatus;

pub const DEFAULT_DAYS: u64 = 30;
pub const MAX_DAYS: u64 = 3650;
pub const DEFAULT_PURGE_LIMIT: u64 = 500;
pub const MAX_PURGE_LIMIT: u64 = 5000;
const DAY_MS: u64 = 86_400_000;
/// Idempotency keys answer duplicates for 24 hours (`accept::idempotency`);
/// a purge never takes one sooner, whatever the retention.
const IDEMPOTENCY_WINDOW_MS: u64 = DAY_MS;
/// The purge log names no one: it is kept at least this long (30 days),
/// whatever the retention, so a short one still leaves a record of what went.
const PURGE_LOG_FLOOR_MS: u64 = 30 * DAY_MS;

/// The retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long records are kept after their last change.
    pub period_ms: u64,
    /// The most rows one run deletes from each table.
    pub purge_limit: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            period_ms: DEFAULT_DAYS * DAY_MS,
            purge_limit: DEFAULT_PURGE_LIMIT as u32,
        }
    }
}

impl RetentionSettings {
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let days = number(src, "RETENTION_DAYS", DEFAULT_DAYS)?;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(err("RETENTION_DAYS", "must be 1 to 3650 (days)"));
        }
        let limit = number(src, "RETENTION_PURGE_LIMIT", DEFAULT_PURGE_LIMIT)?;
        if !(1..=MAX_PURGE_LIMIT).contains(&limit) {
            return Err(err("RETENTION_PURGE_LIMIT", "must be 1 to 5000 (rows)"));
        }
        Ok(RetentionSettings {
            period_ms: days * DAY_MS,
            purge_limit: limit as u32,
        })
    }

    /// The same settings with another period: a diagnostics build's
    /// `TEST_RETENTION_SECONDS`, so tests need not wait for days.
    pub fn with_period_ms(self, period_ms: u64) -> Self {
        RetentionSettings { period_ms, ..self }
    }
}

/// What one purge run at `now_ms` deletes: everything older than the
/// cutoffs, at most `limit` rows per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgePlan {
    pub now_ms: u64,
    /// Records last changed before this (Unix ms) are due.
    pub cutoff_ms: u64,
    /// The same cutoff in Unix seconds, as `messages` keeps its times.
    pub cutoff_s: u64,
    /// Idempotency keys created before this (Unix ms) are due.
    pub idempotency_cutoff_ms: u64,
    /// `purge_runs` rows before this (Unix ms) are due.
    pub purge_log_cutoff_ms: u64,
    pub limit: u32,
}

impl PurgePlan {
    pub fn at(settings: &RetentionSettings, now_ms: u64) -> Self {
        let cutoff_ms = now_ms.saturating_sub(settings.period_ms);
        PurgePlan {
            now_ms,
            cutoff_ms,
            cutoff_s: cutoff_ms / 1000,
            idempotency_cutoff_ms: cutoff_ms.min(now_ms.saturating_sub(IDEMPOTENCY_WINDOW_MS)),
            purge_log_cutoff_ms: cutoff_ms.min(now_ms.saturating_sub(PURGE_LOG_FLOOR_MS)),
            limit: settings.purge_limit,
        }
    }

    /// The statuses a message may be purged in: the final ones. A message
    /// queued or deferred keeps its record, recipients, events and body.
    pub fn final_statuses() -> Vec<&'static str> {
        MessageStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .map(MessageStatus::as_str)
            .collect()
    }

    /// Whether a message record is due: final, no job left (a final
    /// message's job is cleared when it settles), and untouched since the
    /// cutoff (`updated_at_s`, Unix seconds). The edge's query selects with
    /// the same rule; rows it returns are checked again here.
    pub fn message_due(&self, status: &str, has_job: bool, updated_at_s: u64) -> bool {
        MessageStatus::parse(status).is_some_and(MessageStatus::is_final)
            && !has_job
            && updated_at_s < self.cutoff_s
    }

    /// Whether a suppression entry may go: only once its own expiry has passed.
    pub fn suppression_due(&self, expires_at_ms: Option<u64>) -> bool {
        expires_at_ms.is_some_and(|at| at <= self.now_ms)
    }
}

/// The tables a purge deletes from, in the order the log names them.
pub const PURGED_TABLES: [&str; 11] = [
    "messages",
    "recipients",
    "events",
    "email_events",
    "immediate_leases",
    "webhook_deliveries",
    "webhook_attempts",
    "inbound_reports",
    "suppressions",
    "idempotency_keys",
    "purge_runs",
];

/// Rows deleted per table in one run, and the bucket objects deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    rows: [u64; PURGED_TABLES.len()],
    /// Stored bodies (message bodies and kept inbound reports) deleted.
    pub objects: u64,
}

impl PurgeCounts {
    /// Adds `n` deleted rows of `table`; a table not purged is ignored.
    pub fn add(&mut self, table: &str, n: u64) {
        if let Some(i) = PURGED_TABLES.iter().position(|t| *t == table) {
            self.rows[i] += n;
        }
    }

    pub fn get(&self, table: &str) -> u64 {
        PURGED_TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(0, |i| self.rows[i])
    }

    pub fn total(&self) -> u64 {
        self.rows.iter().sum::<u64>() + self.objects
    }

    /// The counts as a JSON object: each table's rows, and `objects`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (table, n) in PURGED_TABLES.iter().zip(self.rows) {
            map.insert((*table).to_string(), n.into());
        }
        map.insert("objects".into(), self.objects.into());
        serde_json::Value::Object(map)
    }

    /// The structured log line of a run (names no address, only counts).
    pub fn log_line(&self, plan: &PurgePlan, complete: bool) -> String {
        use super::log_line::{Level, LogValue, line};
        line(
            Level::Info,
            "retention.purge",
            &[
                ("at_ms", LogValue::Num(plan.now_ms)),
                ("cutoff_ms", LogValue::Num(plan.cutoff_ms)),
                ("complete", LogValue::Bool(complete)),
                ("deleted", LogValue::Json(&self.to_json())),
            ],
        )
    }

    /// Whether a table reached the per-run limit: more may be due, and the
    /// next run goes on.
    pub fn reached_limit(&self, limit: u32) -> bool {
        self.rows.iter().any(|n| *n >= u64::from(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;

    #[test]
    fn settings_table() {
        type Row<'a> = (&'a [(&'a str, &'a str)], Result<(u64, u32), &'a str>);
        let cases: &[Row<'_>] = &[
            (&[], Ok((30 * DAY_MS, 500))),
            (&[("RETENTION_DAYS", " 7 ")], Ok((7 * DAY_MS, 500))),
            (&[("RETENTION_DAYS", "")], Ok((30 * DAY_MS, 500))),
            (&[("RETENTION_DAYS", "3650")], Ok((3650 * DAY_MS, 500))),
            (&[("RETENTION_DAYS", "0")], Err("RETENTION_DAYS")),
            (&[("RETENTION_DAYS", "3651")], Err("RETENTION_DAYS")),
            (&[("RETENTION_DAYS", "-1")], Err("RETENTION_DAYS")),
            (&[("RETENTION_DAYS", "thirty")], Err("RETENTION_DAYS")),
            (&[("RETENTION_PURGE_LIMIT", "1")], Ok((30 * DAY_MS, 1))),
            (
                &[("RETENTION_PURGE_LIMIT", "5000")],
                Ok((30 * DAY_MS, 5000)),
            ),
            (
                &[("RETENTION_PURGE_LIMIT", "0")],
                Err("RETENTION_PURGE_LIMIT"),
            ),
            (
                &[("RETENTION_PURGE_LIMIT", "5001")],
                Err("RETENTION_PURGE_LIMIT"),
            ),
        ];
        for (pairs, want) in cases {
            let got = RetentionSettings::from_source(&source(pairs))
                .map(|s| (s.period_ms, s.purge_limit));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{pairs:?}"),
                (Err(e), Err(setting)) => {
                    assert_eq!(e.setting, *setting, "{pairs:?}");
                    // The error names the setting and the rule, never the value.
                    let rules = [
                        "must be 1 to 3650 (days)",
                        "must be 1 to 5000 (rows)",
                        "is not a whole number",
                    ];
                    assert!(rules.contains(&e.problem.as_str()), "{pairs:?}: {e}");
                }
                (got, want) => panic!("{pairs:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn plan_cutoffs() {
        let settings = RetentionSettings::default();
        let now = 100 * DAY_MS + 1_234;
        let plan = PurgePlan::at(&settings, now);
        assert_eq!(plan.cutoff_ms, 70 * DAY_MS + 1_234);
        assert_eq!(plan.cutoff_s, (70 * DAY_MS + 1_234) / 1000);
        assert_eq!(plan.idempotency_cutoff_ms, plan.cutoff_ms);
        assert_eq!(plan.limit, 500);
        // A short retention never takes idempotency keys inside their window.
        let short = PurgePlan::at(&settings.with_period_ms(5_000), now);
        assert_eq!(short.cutoff_ms, now - 5_000);
        assert_eq!(short.idempotency_cutoff_ms, now - DAY_MS);
        assert_eq!(short.purge_log_cutoff_ms, now - 30 * DAY_MS);
        let long = PurgePlan::at(
            &RetentionSettings::default().with_period_ms(90 * DAY_MS),
            now,
        );
        assert_eq!(long.purge_log_cutoff_ms, now - 90 * DAY_MS);
        // Early clocks do not underflow.
        assert_eq!(PurgePlan::at(&settings, 5).cutoff_ms, 0);
    }

    #[test]
    fn which_messages_are_due() {
        let plan = PurgePlan::at(
            &RetentionSettings::default().with_period_ms(10_000),
            100_000,
        );
        assert_eq!(plan.cutoff_s, 90);
        let cases: &[(&str, bool, u64, bool)] = &[
            ("delivered", false, 89, true),
            ("partially_delivered", false, 10, true),
            ("failed", false, 0, true),
            ("unknown", false, 89, true),
            ("suppressed", false, 89, true),
            // Changed at or after the cutoff: kept.
            ("delivered", false, 90, false),
            ("failed", false, 95, false),
            // Not final: everything is kept, however old.
            ("queued", false, 0, false),
            ("deferred", false, 0, false),
            // A job still stored means it is not settled.
            ("delivered", true, 0, false),
            ("no such status", false, 0, false),
        ];
        for (status, has_job, updated, want) in cases {
            assert_eq!(
                plan.message_due(status, *has_job, *updated),
                *want,
                "{status} job={has_job} updated={updated}"
            );
        }
        let mut finals = PurgePlan::final_statuses();
        finals.sort_unstable();
        assert_eq!(
            finals,
            [
                "canceled",
                "delivered",
                "failed",
                "partially_delivered",
                "suppressed",
                "unknown"
            ]
        );
    }

    #[test]
    fn suppressions_go_only_when_expired() {
        let plan = PurgePlan::at(&RetentionSettings::default(), 1_000_000);
        for (expires, want) in [
            (None, false),
            (Some(1_000_001), false),
            (Some(1_000_000), true),
            (Some(1), true),
        ] {
            assert_eq!(plan.suppression_due(expires), want, "{expires:?}");
        }
    }

    #[test]
    fn counts_report_every_table() {
        let plan = PurgePlan::at(&RetentionSettings::default(), 5 * DAY_MS);
        let mut counts = PurgeCounts::default();
        counts.add("messages", 2);
        counts.add("recipients", 3);
        counts.add("messages", 1);
        counts.add("not a table", 9);
        counts.objects = 2;
        assert_eq!(counts.get("messages"), 3);
        assert_eq!(counts.total(), 8);
        let json = counts.to_json();
        for table in PURGED_TABLES {
            assert!(json.get(table).is_some(), "{table}");
        }
        assert_eq!(json["recipients"], 3);
        assert_eq!(json["objects"], 2);
        let line: serde_json::Value = serde_json::from_str(&counts.log_line(&plan, true)).unwrap();
        assert_eq!(line["event"], "retention.purge");
        assert_eq!(line["level"], "info");
        assert_eq!(line["deleted"]["messages"], 3);
        assert!(!counts.reached_limit(4));
        assert!(counts.reached_limit(3));
    }
}
