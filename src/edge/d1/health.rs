//! Upstream health records (`upstream_health`) and the latest sessions of
//! each upstream (`upstream_sessions`): reading them for a session plan and
//! for the operator's view, storing what one session left, and lifting a
//! pause.
//!
//! Why D1 rather than the isolate's memory: queue batches land on whichever
//! isolate (and location) the platform picks, and isolates come and go, so a
//! per-isolate count would restart at zero and keep hammering an upstream
//! that is down. One small read per batch and one batch of writes per
//! session is cheap next to an SMTP session. Concurrent batches may race on
//! a health row; the last write wins, which at worst shortens or lengthens
//! one cool-down by one step. Totals are added in SQL, so none is lost.
//! Must not: decide when an upstream is skipped or paused (`delivery::health`)
//! or what a session record says (`delivery::upstream_sessions`).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::delivery::{
    HealthChange, RECENT_SESSIONS, SessionOutcome, SessionRecord, SessionTotals, UpstreamHealth,
};
use crate::http::upstreams::Stored;

use super::{Db, json_list, n, opt_n, opt_s, s};

#[derive(Deserialize)]
struct HealthRow {
    upstream: String,
    consecutive_failures: f64,
    skip_until_ms: f64,
    paused_reason: Option<String>,
    paused_since_ms: Option<f64>,
    sessions: f64,
    sessions_failed: f64,
    messages_sent: f64,
    session_ms_total: f64,
}

impl HealthRow {
    fn health(&self) -> UpstreamHealth {
        UpstreamHealth {
            consecutive_failures: self.consecutive_failures as u32,
            skip_until_ms: self.skip_until_ms as u64,
            paused_reason: self.paused_reason.clone(),
            paused_since_ms: self.paused_since_ms.map(|t| t as u64),
        }
    }
}

const HEALTH_COLUMNS: &str = "upstream, consecutive_failures, skip_until_ms, paused_reason, \
     paused_since_ms, sessions, sessions_failed, messages_sent, session_ms_total";

impl Db {
    async fn health_rows(&self, labels: &[String]) -> Result<Vec<HealthRow>> {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        self.prepare(
            &format!(
                "SELECT {HEALTH_COLUMNS} FROM upstream_health \
                 WHERE upstream IN (SELECT value FROM json_each(?1))"
            ),
            &[json_list(&labels)],
        )?
        .all()
        .await?
        .results::<HealthRow>()
    }

    /// The records of the upstreams labelled `labels` (`host:port`), in that
    /// order; an upstream with no row is healthy.
    pub async fn upstream_health(&self, labels: &[String]) -> Result<Vec<UpstreamHealth>> {
        let mut records = vec![UpstreamHealth::default(); labels.len()];
        for row in self.health_rows(labels).await? {
            if let Some(i) = labels.iter().position(|l| *l == row.upstream) {
                records[i] = row.health();
            }
        }
        Ok(records)
    }

    /// What is stored about the upstreams labelled `labels`, in that order:
    /// health, totals and the latest sessions (newest first).
    pub async fn upstream_records(&self, labels: &[String]) -> Result<Vec<Stored>> {
        #[derive(Deserialize)]
        struct SessionRow {
            upstream: String,
            at_ms: f64,
            outcome: String,
            reply_code: Option<f64>,
            messages_sent: f64,
            duration_ms: f64,
        }
        let mut stored = vec![Stored::default(); labels.len()];
        for row in self.health_rows(labels).await? {
            if let Some(slot) = labels
                .iter()
                .position(|l| *l == row.upstream)
                .and_then(|i| stored.get_mut(i))
            {
                slot.health = row.health();
                slot.totals = SessionTotals {
                    sessions: row.sessions as u64,
                    failed: row.sessions_failed as u64,
                    messages_sent: row.messages_sent as u64,
                    duration_ms: row.session_ms_total as u64,
                };
            }
        }
        let names: Vec<&str> = labels.iter().map(String::as_str).collect();
        let sessions = self
            .prepare(
                "SELECT upstream, at_ms, outcome, reply_code, messages_sent, duration_ms \
                 FROM upstream_sessions WHERE upstream IN (SELECT value FROM json_each(?1)) \
                 ORDER BY id DESC LIMIT ?2",
                &[
                    json_list(&names),
                    n(u64::from(RECENT_SESSIONS) * labels.len() as u64),
                ],
            )?
            .all()
            .await?
            .results::<SessionRow>()?;
        for row in sessions {
            let (Some(slot), Some(outcome)) = (
                labels
                    .iter()
                    .position(|l| *l == row.upstream)
                    .and_then(|i| stored.get_mut(i)),
                SessionOutcome::parse(&row.outcome),
            ) else {
                continue;
            };
            if slot.recent.len() < RECENT_SESSIONS as usize {
                slot.recent.push(SessionRecord {
                    at_ms: row.at_ms as u64,
                    outcome,
                    code: row.reply_code.map(|c| c as u16),
                    messages_sent: row.messages_sent as u32,
                    duration_ms: row.duration_ms as u64,
                });
            }
        }
        Ok(stored)
    }

    /// Stores what one session with the upstream `label` left, as one
    /// batch: its record (dropping all but the latest [`RECENT_SESSIONS`]),
    /// the totals it adds, and its health record when that changed.
    pub async fn record_session(
        &self,
        label: &str,
        record: &SessionRecord,
        change: Option<&HealthChange>,
        now_ms: u64,
    ) -> Result<()> {
        let add = SessionTotals::of(record);
        let mut statements = vec![
            self.prepare(
                "INSERT INTO upstream_sessions \
                 (upstream, at_ms, outcome, reply_code, messages_sent, duration_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[
                    s(label),
                    n(record.at_ms),
                    s(record.outcome.as_str()),
                    opt_n(record.code.map(u64::from)),
                    n(record.messages_sent.into()),
                    n(record.duration_ms),
                ],
            )?,
            self.prepare(
                "DELETE FROM upstream_sessions WHERE upstream = ?1 AND id NOT IN \
                 (SELECT id FROM upstream_sessions WHERE upstream = ?1 ORDER BY id DESC LIMIT ?2)",
                &[s(label), n(RECENT_SESSIONS.into())],
            )?,
            self.prepare(
                "INSERT INTO upstream_health \
                 (upstream, sessions, sessions_failed, messages_sent, session_ms_total, \
                 updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(upstream) DO UPDATE SET sessions = sessions + ?2, \
                 sessions_failed = sessions_failed + ?3, messages_sent = messages_sent + ?4, \
                 session_ms_total = session_ms_total + ?5, updated_at_ms = ?6",
                &[
                    s(label),
                    n(add.sessions),
                    n(add.failed),
                    n(add.messages_sent),
                    n(add.duration_ms),
                    n(now_ms),
                ],
            )?,
        ];
        if let Some(change) = change {
            statements.push(self.health_statement(&change.label, &change.record, now_ms)?);
        }
        self.batch(statements).await
    }

    /// Stores the health record `record` of the upstream `label` (an
    /// operator's resume), keeping its sessions and totals.
    pub async fn store_health(
        &self,
        label: &str,
        record: &UpstreamHealth,
        now_ms: u64,
    ) -> Result<()> {
        self.health_statement(label, record, now_ms)?.run().await?;
        Ok(())
    }

    fn health_statement(
        &self,
        label: &str,
        h: &UpstreamHealth,
        now_ms: u64,
    ) -> Result<D1PreparedStatement> {
        self.prepare(
            "INSERT INTO upstream_health \
             (upstream, consecutive_failures, skip_until_ms, paused_reason, paused_since_ms, \
             updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT(upstream) DO UPDATE SET consecutive_failures = ?2, \
             skip_until_ms = ?3, paused_reason = ?4, paused_since_ms = ?5, updated_at_ms = ?6",
            &[
                s(label),
                n(h.consecutive_failures.into()),
                n(h.skip_until_ms),
                opt_s(h.paused_reason.as_deref()),
                opt_n(h.paused_since_ms),
                n(now_ms),
            ],
        )
    }
}
