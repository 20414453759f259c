//! What the reconciliation sweep reads: stored messages not final, not
//! leased, whose next step is due before a cutoff, oldest first. A
//! scheduled message's next step is its due time: the sweep brings back its
//! lost job only once it is overdue, and the consumer sends nothing before
//! the due time the row names.
//!
//! Must not: decide what is overdue or what a message needs
//! (`delivery::recovery::sweep` does); the cutoff and the limit come from it.

use serde::Deserialize;
use worker::Result;

use crate::delivery::recovery::{SweepRow, leasable};
use crate::queue::MessageStatus;

use super::{Db, json_list, n, s};

impl Db {
    /// Messages not final, with a stored job and no running lease, whose
    /// next attempt (or, never attempted, whose acceptance) is at or before
    /// `due_before` (Unix seconds): at most `limit`, the longest overdue
    /// first. Messages accepted before jobs were stored have none and are
    /// left out, so they never take the places of ones that can be helped.
    pub async fn sweep_candidates(
        &self,
        due_before: u64,
        now_ms: u64,
        limit: u32,
    ) -> Result<Vec<SweepRow>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            status: String,
            attempts: f64,
            created_at: f64,
            next_attempt_at: Option<f64>,
            job: Option<String>,
        }
        let [a, b, c] = leasable();
        let rows = self
            .prepare(
                "SELECT m.id, m.status, m.attempts, m.created_at, m.next_attempt_at, m.job \
                 FROM messages m \
                 WHERE m.status IN (?1, ?2, ?6, ?7) AND m.job IS NOT NULL \
                   AND COALESCE(m.next_attempt_at, m.created_at) <= ?3 \
                   AND NOT EXISTS (SELECT 1 FROM immediate_leases l \
                                   WHERE l.message_id = m.id AND l.until > ?4) \
                 ORDER BY COALESCE(m.next_attempt_at, m.created_at), m.id LIMIT ?5",
                &[
                    s(a.as_str()),
                    s(b.as_str()),
                    n(due_before),
                    n(now_ms),
                    n(u64::from(limit)),
                    s(c.as_str()),
                    s(MessageStatus::Scheduled.as_str()),
                ],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(SweepRow {
                    status: MessageStatus::parse(&r.status)?,
                    id: r.id,
                    attempts: r.attempts as u32,
                    created_at: r.created_at as u64,
                    next_attempt_at: r.next_attempt_at.map(|t| t as u64),
                    job: r.job,
                })
            })
            .collect())
    }

    /// Marks messages the sweep acted on due at `at` (Unix seconds), so it
    /// leaves them alone for another grace period: a re-enqueued job has time
    /// to arrive, and one it cannot help moves behind the others.
    pub async fn mark_swept(&self, ids: &[&str], at: u64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let [a, b, c] = leasable();
        self.prepare(
            "UPDATE messages SET next_attempt_at = ?2 \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status IN (?3, ?4, ?5, ?6)",
            &[
                json_list(ids),
                n(at),
                s(a.as_str()),
                s(b.as_str()),
                s(c.as_str()),
                s(MessageStatus::Scheduled.as_str()),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }
}
