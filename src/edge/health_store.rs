//! Upstream health records, kept in D1 (table `upstream_health`).
//!
//! Why D1 rather than the isolate's memory: queue batches land on whichever
//! isolate (and location) the platform picks, and isolates come and go, so a
//! per-isolate count would restart at zero and keep hammering an upstream
//! that is down. One small read per batch and a write only when a record
//! changes is cheap next to an SMTP session. Concurrent batches may race on
//! a row; the last write wins, which at worst shortens or lengthens one
//! cool-down by one step.
//!
//! Owns the SQL and the logging of pauses. Must not decide anything: the
//! rules are `delivery::health`. If D1 is unreachable, every upstream counts
//! as healthy: mail keeps flowing, only the skipping is lost.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, Env};

use crate::delivery::{HealthSettings, Upstream};
use crate::delivery::{SessionVerdict, UpstreamHealth};

use super::platform::DATABASE;

#[derive(Deserialize)]
struct Row {
    upstream: String,
    consecutive_failures: f64,
    skip_until_ms: f64,
    paused_reason: Option<String>,
}

/// The health of the configured upstreams, in configuration order.
pub struct HealthBook {
    db: Option<D1Database>,
    labels: Vec<String>,
    pub records: Vec<UpstreamHealth>,
}

impl HealthBook {
    pub async fn load(env: &Env, upstreams: &[Upstream]) -> Self {
        let labels: Vec<String> = upstreams.iter().map(Upstream::label).collect();
        let mut records = vec![UpstreamHealth::default(); labels.len()];
        let db = env.d1(DATABASE).ok();
        if let Some(db) = &db {
            match read_all(db).await {
                Ok(rows) => {
                    for row in rows {
                        if let Some(i) = labels.iter().position(|l| *l == row.upstream) {
                            records[i] = UpstreamHealth {
                                consecutive_failures: row.consecutive_failures as u32,
                                skip_until_ms: row.skip_until_ms as u64,
                                paused_reason: row.paused_reason,
                            };
                        }
                    }
                }
                Err(e) => worker::console_warn!("edgerelay: upstream health unavailable: {e}"),
            }
        }
        HealthBook {
            db,
            labels,
            records,
        }
    }

    /// Updates upstream `index` after a session, and stores the change.
    pub async fn record(
        &mut self,
        index: usize,
        verdict: &SessionVerdict,
        settings: &HealthSettings,
        now_ms: u64,
    ) {
        let (Some(old), Some(label)) = (self.records.get(index), self.labels.get(index)) else {
            return;
        };
        let new = old.after(verdict, settings, now_ms);
        if new == *old {
            return;
        }
        if new.is_cooling_down(now_ms) {
            let seconds = (new.skip_until_ms - now_ms) / 1000;
            match verdict {
                SessionVerdict::Misconfigured(reason) => worker::console_error!(
                    "edgerelay: upstream {label} paused for {seconds} s: {reason}"
                ),
                SessionVerdict::Failed(reason) => worker::console_warn!(
                    "edgerelay: upstream {label} cooling down for {seconds} s after {} failures: {reason}",
                    new.consecutive_failures
                ),
                SessionVerdict::Healthy => {}
            }
        }
        if let Some(db) = &self.db
            && let Err(e) = write(db, label, &new, now_ms).await
        {
            worker::console_warn!("edgerelay: could not store upstream health: {e}");
        }
        if let Some(slot) = self.records.get_mut(index) {
            *slot = new;
        }
    }
}

async fn read_all(db: &D1Database) -> worker::Result<Vec<Row>> {
    db.prepare(
        "SELECT upstream, consecutive_failures, skip_until_ms, paused_reason FROM upstream_health",
    )
    .all()
    .await?
    .results::<Row>()
}

async fn write(
    db: &D1Database,
    label: &str,
    health: &UpstreamHealth,
    now_ms: u64,
) -> worker::Result<()> {
    let n = |v: u64| JsValue::from_f64(v as f64);
    db.prepare(
        "INSERT INTO upstream_health \
         (upstream, consecutive_failures, skip_until_ms, paused_reason, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(upstream) DO UPDATE SET consecutive_failures = ?2, \
         skip_until_ms = ?3, paused_reason = ?4, updated_at_ms = ?5",
    )
    .bind(&[
        JsValue::from_str(label),
        n(health.consecutive_failures.into()),
        n(health.skip_until_ms),
        health
            .paused_reason
            .as_deref()
            .map(JsValue::from_str)
            .unwrap_or(JsValue::NULL),
        n(now_ms),
    ])?
    .run()
    .await?;
    Ok(())
}
