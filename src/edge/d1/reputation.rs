//! The reputation guard's rows (`reputation_guard`) and the window it reads
//! from the statistics rollups (`stat_rollups`, the rows of all messages,
//! never `email_events`).
//!
//! Must not: decide whether a tenant pauses (`events::reputation` does) or
//! what its events say.

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::Result;

use crate::events::reputation::{GuardRecord, WindowCounts};
use crate::events::rollup::{ALL_TAGS, Metric};
use crate::queue::MessageStatus;

use super::{Db, json_list, n, opt_s, s};

#[derive(Deserialize)]
struct Row {
    tenant: String,
    paused: f64,
    reason: Option<String>,
    paused_at: Option<f64>,
    detail: Option<String>,
    resumed_at: Option<f64>,
    resumed_by: Option<String>,
    counts_from: f64,
}

impl Row {
    fn record(self) -> (String, GuardRecord) {
        let detail = self
            .detail
            .and_then(|d| serde_json::from_str::<Map<String, Value>>(&d).ok());
        (
            self.tenant,
            GuardRecord {
                paused: self.paused > 0.0,
                reason: self.reason,
                paused_at_ms: self.paused_at.map(|t| t as u64),
                detail,
                resumed_at_ms: self.resumed_at.map(|t| t as u64),
                resumed_by: self.resumed_by,
                counts_from: self.counts_from.max(0.0) as u64,
            },
        )
    }
}

#[derive(Deserialize)]
struct SumRow {
    tenant: String,
    metric: String,
    total: f64,
}

const COLUMNS: &str =
    "tenant, paused, reason, paused_at, detail, resumed_at, resumed_by, counts_from";

/// The metrics the guard counts.
const METRICS: [Metric; 3] = [Metric::Sent, Metric::SpamReports, Metric::HardBounces];

impl Db {
    /// Every tenant's guard record.
    pub async fn guard_records(&self) -> Result<Vec<(String, GuardRecord)>> {
        let rows = self
            .prepare(&format!("SELECT {COLUMNS} FROM reputation_guard"), &[])?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows.into_iter().map(Row::record).collect())
    }

    /// One tenant's guard record (the default: never paused).
    pub async fn guard_record(&self, tenant: &str) -> Result<GuardRecord> {
        let rows = self
            .prepare(
                &format!("SELECT {COLUMNS} FROM reputation_guard WHERE tenant = ?1"),
                &[s(tenant)],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .next()
            .map(|r| r.record().1)
            .unwrap_or_default())
    }

    /// Which of `tenants` have their marketing paused.
    pub async fn paused_tenants(&self, tenants: &[&str]) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct T {
            tenant: String,
        }
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .prepare(
                "SELECT tenant FROM reputation_guard \
                 WHERE tenant IN (SELECT value FROM json_each(?1)) AND paused = 1",
                &[json_list(tenants)],
            )?
            .all()
            .await?
            .results::<T>()?;
        Ok(rows.into_iter().map(|r| r.tenant).collect())
    }

    /// Every tenant's counts over the hours from `from_s` on, each tenant's
    /// starting no earlier than its `counts_from` (its latest resume); from
    /// the rollup rows of all messages only.
    pub async fn guard_windows(&self, from_s: u64) -> Result<Vec<(String, WindowCounts)>> {
        let [a, b, c] = METRICS;
        let rows = self
            .prepare(
                "SELECT r.tenant AS tenant, r.metric AS metric, SUM(r.count) AS total \
                 FROM stat_rollups r LEFT JOIN reputation_guard g ON g.tenant = r.tenant \
                 WHERE r.tag = ?1 AND r.hour >= ?2 AND r.hour >= COALESCE(g.counts_from, 0) \
                   AND r.metric IN (?3, ?4, ?5) \
                 GROUP BY r.tenant, r.metric",
                &[
                    s(ALL_TAGS),
                    n(from_s),
                    s(a.as_str()),
                    s(b.as_str()),
                    s(c.as_str()),
                ],
            )?
            .all()
            .await?
            .results::<SumRow>()?;
        Ok(WindowCounts::by_tenant(
            rows.into_iter().map(|r| (r.tenant, r.metric, r.total)),
        ))
    }

    /// One tenant's counts over the hours from `from_s` on, along the
    /// rollups' primary key.
    pub async fn guard_window(&self, tenant: &str, from_s: u64) -> Result<WindowCounts> {
        let [a, b, c] = METRICS;
        let rows = self
            .prepare(
                "SELECT tenant, metric, SUM(count) AS total FROM stat_rollups \
                 WHERE tenant = ?1 AND tag = ?2 AND hour >= ?3 AND metric IN (?4, ?5, ?6) \
                 GROUP BY tenant, metric",
                &[
                    s(tenant),
                    s(ALL_TAGS),
                    n(from_s),
                    s(a.as_str()),
                    s(b.as_str()),
                    s(c.as_str()),
                ],
            )?
            .all()
            .await?
            .results::<SumRow>()?;
        let mut tenants =
            WindowCounts::by_tenant(rows.into_iter().map(|r| (r.tenant, r.metric, r.total)));
        Ok(tenants.pop().map(|(_, counts)| counts).unwrap_or_default())
    }

    /// Pauses a tenant's marketing, unless it is paused already; says
    /// whether this call paused it.
    pub async fn pause_marketing(
        &self,
        tenant: &str,
        reason: &str,
        detail: &Map<String, Value>,
        at_ms: u64,
    ) -> Result<bool> {
        let detail = Value::Object(detail.clone()).to_string();
        let result = self
            .prepare(
                "INSERT INTO reputation_guard (tenant, paused, reason, paused_at, detail, counts_from) \
                 VALUES (?1, 1, ?2, ?3, ?4, 0) \
                 ON CONFLICT (tenant) DO UPDATE SET paused = 1, reason = excluded.reason, \
                   paused_at = excluded.paused_at, detail = excluded.detail \
                 WHERE reputation_guard.paused = 0",
                &[s(tenant), s(reason), n(at_ms), s(&detail)],
            )?
            .run()
            .await?;
        let changed = result.meta()?.and_then(|m| m.changes).unwrap_or(0);
        Ok(changed > 0)
    }

    /// Resumes a tenant's marketing: the guard counts only hours from
    /// `counts_from` on. Says whether it was paused.
    pub async fn resume_marketing(
        &self,
        tenant: &str,
        key_id: &str,
        at_ms: u64,
        counts_from: u64,
    ) -> Result<bool> {
        let result = self
            .prepare(
                "UPDATE reputation_guard SET paused = 0, resumed_at = ?2, resumed_by = ?3, \
                   counts_from = ?4 \
                 WHERE tenant = ?1 AND paused = 1",
                &[s(tenant), n(at_ms), opt_s(Some(key_id)), n(counts_from)],
            )?
            .run()
            .await?;
        let changed = result.meta()?.and_then(|m| m.changes).unwrap_or(0);
        Ok(changed > 0)
    }

    /// Marks held messages `held` and due again at `due_s` (Unix seconds),
    /// so the reconciliation sweep leaves their waiting jobs alone. Their
    /// attempts are left as they were.
    pub async fn mark_held(&self, ids: &[&str], due_s: u64, now_s: u64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.prepare(
            "UPDATE messages SET status = ?2, next_attempt_at = ?3, updated_at = ?4 \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status IN (?5, ?6, ?2)",
            &[
                json_list(ids),
                s(MessageStatus::Held.as_str()),
                n(due_s),
                n(now_s),
                s(MessageStatus::Queued.as_str()),
                s(MessageStatus::Deferred.as_str()),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }
}
