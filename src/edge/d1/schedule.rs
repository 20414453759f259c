//! Scheduled messages' rows: what the consumer reads of a job's message to
//! know whether it is due, and the conditional writes that decide between a
//! send and a cancel (`scheduled` -> `queued` at the due time, `scheduled` ->
//! `canceled` on a cancel: each only while the row is still `scheduled`,
//! so exactly one of them wins), and a reschedule.
//!
//! Must not: decide when a message is due or what a job does (see
//! `accept::schedule`); statuses and event kinds are bound from their enums.

use serde::Deserialize;
use worker::{D1Result, Result};

use crate::queue::{EventKind, MessageStatus};

use super::{Db, json_list, n, opt_n, s};

/// A scheduled message's row, as the API reads it before acting on it.
pub struct ScheduledRow {
    pub status: MessageStatus,
    /// Unix seconds.
    pub scheduled_at: Option<u64>,
    /// The stored job, as JSON.
    pub job: Option<String>,
}

fn changed(result: Option<&D1Result>) -> bool {
    result
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        > 0
}

impl Db {
    /// Each message's status and due time, for the jobs of a batch.
    pub async fn schedule_states(
        &self,
        ids: &[&str],
    ) -> Result<Vec<(String, Option<MessageStatus>, Option<u64>)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            status: String,
            scheduled_at: Option<f64>,
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .prepare(
                "SELECT id, status, scheduled_at FROM messages \
                 WHERE id IN (SELECT value FROM json_each(?1))",
                &[json_list(ids)],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    MessageStatus::parse(&r.status),
                    r.scheduled_at.map(|t| t as u64),
                )
            })
            .collect())
    }

    /// Claims a due scheduled message for delivery: `scheduled` -> `queued`,
    /// only while it is `scheduled` and due at or before `now_ms`. Whether
    /// this call won. The message is then due now for the sweep, so its job
    /// has a whole grace period to deliver.
    pub async fn claim_scheduled(&self, id: &str, now_ms: u64) -> Result<bool> {
        let result = self
            .prepare(
                "UPDATE messages SET status = ?2, updated_at = ?4, next_attempt_at = ?4 \
                 WHERE id = ?1 AND status = ?3 AND scheduled_at <= ?4",
                &[
                    s(id),
                    s(MessageStatus::Queued.as_str()),
                    s(MessageStatus::Scheduled.as_str()),
                    n(now_ms / 1000),
                ],
            )?
            .run()
            .await?;
        Ok(changed(Some(&result)))
    }

    /// A tenant's message as a cancel or reschedule reads it.
    pub async fn scheduled_row(&self, id: &str, tenant: &str) -> Result<Option<ScheduledRow>> {
        #[derive(Deserialize)]
        struct Row {
            status: String,
            scheduled_at: Option<f64>,
            job: Option<String>,
        }
        let row = self
            .prepare(
                "SELECT status, scheduled_at, job FROM messages WHERE id = ?1 AND tenant = ?2",
                &[s(id), s(tenant)],
            )?
            .first::<Row>(None)
            .await?;
        Ok(row.and_then(|r| {
            Some(ScheduledRow {
                status: MessageStatus::parse(&r.status)?,
                scheduled_at: r.scheduled_at.map(|t| t as u64),
                job: r.job,
            })
        }))
    }

    /// Cancels a scheduled message: `scheduled` -> `canceled` with its
    /// `canceled` event, only while it is `scheduled`; its stored job is
    /// dropped (nothing is left to send). Whether this call won.
    pub async fn cancel_scheduled(&self, id: &str, tenant: &str, now_ms: u64) -> Result<bool> {
        let update = self.prepare(
            "UPDATE messages SET status = ?3, updated_at = ?5, next_attempt_at = NULL, job = NULL \
             WHERE id = ?1 AND tenant = ?2 AND status = ?4",
            &[
                s(id),
                s(tenant),
                s(MessageStatus::Canceled.as_str()),
                s(MessageStatus::Scheduled.as_str()),
                n(now_ms / 1000),
            ],
        )?;
        // Written only when the update above changed the row (same batch,
        // same connection: `changes()` is the update's).
        let event = self.prepare(
            "INSERT INTO events (message_id, at, kind, detail) \
             SELECT ?1, ?2, ?3, NULL WHERE changes() = 1",
            &[s(id), n(now_ms), s(EventKind::Canceled.as_str())],
        )?;
        let results = self.db.batch(vec![update, event]).await?;
        Ok(changed(results.first()))
    }

    /// Gives a scheduled message another due time (`at`, Unix seconds),
    /// only while it is `scheduled` and still due at `was`. Whether this
    /// call won.
    pub async fn reschedule(
        &self,
        id: &str,
        tenant: &str,
        was: Option<u64>,
        at: u64,
        now_ms: u64,
    ) -> Result<bool> {
        let update = self.prepare(
            "UPDATE messages SET scheduled_at = ?3, next_attempt_at = ?3, updated_at = ?4 \
             WHERE id = ?1 AND tenant = ?2 AND status = ?5 AND scheduled_at IS ?6",
            &[
                s(id),
                s(tenant),
                n(at),
                n(now_ms / 1000),
                s(MessageStatus::Scheduled.as_str()),
                opt_n(was),
            ],
        )?;
        let detail = crate::events::time::rfc3339_ms(at * 1000);
        let event = self.prepare(
            "INSERT INTO events (message_id, at, kind, detail) \
             SELECT ?1, ?2, ?3, ?4 WHERE changes() = 1",
            &[
                s(id),
                n(now_ms),
                s(EventKind::Rescheduled.as_str()),
                s(&detail),
            ],
        )?;
        let results = self.db.batch(vec![update, event]).await?;
        Ok(changed(results.first()))
    }
}
