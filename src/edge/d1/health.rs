//! Upstream health records (`upstream_health`): reading them for a session
//! plan, and upserting one that changed.
//!
//! Why D1 rather than the isolate's memory: queue batches land on whichever
//! isolate (and location) the platform picks, and isolates come and go, so a
//! per-isolate count would restart at zero and keep hammering an upstream
//! that is down. One small read per batch and a write only when a record
//! changes is cheap next to an SMTP session. Concurrent batches may race on
//! a row; the last write wins, which at worst shortens or lengthens one
//! cool-down by one step.
//! Must not: decide when an upstream is skipped or paused (`delivery::health`).

use serde::Deserialize;
use worker::Result;

use crate::delivery::{HealthChange, UpstreamHealth};

use super::{Db, n, opt_s, s};

impl Db {
    /// The records of the upstreams labelled `labels` (`host:port`), in that
    /// order; an upstream with no row is healthy.
    pub async fn upstream_health(&self, labels: &[String]) -> Result<Vec<UpstreamHealth>> {
        #[derive(Deserialize)]
        struct Row {
            upstream: String,
            consecutive_failures: f64,
            skip_until_ms: f64,
            paused_reason: Option<String>,
        }
        let rows = self
            .prepare(
                "SELECT upstream, consecutive_failures, skip_until_ms, paused_reason \
                 FROM upstream_health",
                &[],
            )?
            .all()
            .await?
            .results::<Row>()?;
        let mut records = vec![UpstreamHealth::default(); labels.len()];
        for row in rows {
            if let Some(i) = labels.iter().position(|l| *l == row.upstream) {
                records[i] = UpstreamHealth {
                    consecutive_failures: row.consecutive_failures as u32,
                    skip_until_ms: row.skip_until_ms as u64,
                    paused_reason: row.paused_reason,
                };
            }
        }
        Ok(records)
    }

    /// Stores an upstream's changed record.
    pub async fn store_health(&self, change: &HealthChange, now_ms: u64) -> Result<()> {
        let h = &change.record;
        self.prepare(
            "INSERT INTO upstream_health \
             (upstream, consecutive_failures, skip_until_ms, paused_reason, updated_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(upstream) DO UPDATE SET consecutive_failures = ?2, \
             skip_until_ms = ?3, paused_reason = ?4, updated_at_ms = ?5",
            &[
                s(&change.label),
                n(h.consecutive_failures.into()),
                n(h.skip_until_ms),
                opt_s(h.paused_reason.as_deref()),
                n(now_ms),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }
}
