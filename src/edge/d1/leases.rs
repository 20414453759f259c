//! The immediate-delivery lease (`immediate_leases`), and what a safety job
//! reads about its message (status, attempts, schedule, lease) in one query.
//!
//! Must not: decide what a lease or a record means (`delivery::immediate`), or
//! when the lease is taken (`accept::commit`: before the safety job exists).

use serde::Deserialize;
use worker::Result;

use crate::delivery::immediate::SafetyRecord;

use super::{Db, json_list, n, s};

impl Db {
    /// Takes the lease on a freshly stored message, before its safety job is
    /// enqueued (so the job can never find the message unleased too early).
    pub async fn take_lease(&self, message_id: &str, until_ms: u64) -> Result<()> {
        self.prepare(
            "INSERT INTO immediate_leases (message_id, until) VALUES (?1, ?2) \
             ON CONFLICT (message_id) DO UPDATE SET until = excluded.until",
            &[s(message_id), n(until_ms)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Lets go once the request has recorded its outcome.
    pub async fn release_lease(&self, message_id: &str) -> Result<()> {
        self.prepare(
            "DELETE FROM immediate_leases WHERE message_id = ?1",
            &[s(message_id)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Status, attempts, schedule and lease of each message, in one query.
    /// A message with no row is missing from the answer.
    pub async fn safety_records(&self, ids: &[&str]) -> Result<Vec<(String, SafetyRecord)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            status: String,
            attempts: f64,
            next_attempt_at: Option<f64>,
            until: Option<f64>,
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .prepare(
                "SELECT m.id, m.status, m.attempts, m.next_attempt_at, l.until \
                 FROM messages m LEFT JOIN immediate_leases l ON l.message_id = m.id \
                 WHERE m.id IN (SELECT value FROM json_each(?1))",
                &[json_list(ids)],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let record = SafetyRecord {
                    status: r.status,
                    attempts: r.attempts as u32,
                    next_attempt_at: r.next_attempt_at.map(|t| t as u64),
                    lease_until: r.until.map(|t| t as u64),
                };
                (r.id, record)
            })
            .collect())
    }
}
