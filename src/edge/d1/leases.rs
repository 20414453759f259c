//! Delivery leases (`immediate_leases`): an immediate request's, taken at
//! acceptance, and a queue consumer's, taken before it delivers; and what a
//! safety job reads about its message (status, attempts, schedule, lease) in
//! one query.
//!
//! An immediate request's lease is written with its message row
//! (`Db::insert_accepted`). Must not: decide what a lease or a record means
//! (`delivery::immediate`, `delivery::recovery`), or when the lease is taken
//! (`accept::commit`: with the row, before the safety job can arrive; the
//! consumer: before it reads what is recorded).

use serde::Deserialize;
use worker::Result;

use crate::delivery::immediate::SafetyRecord;
use crate::delivery::recovery::{LeaseRow, leasable};
use crate::queue::MessageStatus;

use super::{Db, json_list, n, s};

impl Db {
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

    /// Takes the delivery lease on each of `ids` whose message exists and is
    /// not final, unless another holder's lease is still running, and
    /// returns each message's status and lease as they now stand (a message
    /// with no row is missing from the answer). One conditional write
    /// decides between concurrent takers: the lease is `holder`'s when the
    /// row read back names it.
    pub async fn take_delivery_leases(
        &self,
        ids: &[&str],
        holder: &str,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<(String, LeaseRow)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            status: String,
            until: Option<f64>,
            holder: Option<String>,
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let [a, b, c] = leasable();
        let take = self.prepare(
            "INSERT INTO immediate_leases (message_id, until, holder) \
             SELECT id, ?2, ?3 FROM messages \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status IN (?5, ?6, ?7) \
             ON CONFLICT (message_id) DO UPDATE SET until = excluded.until, holder = excluded.holder \
             WHERE immediate_leases.until <= ?4",
            &[
                json_list(ids),
                n(until_ms),
                s(holder),
                n(now_ms),
                s(a.as_str()),
                s(b.as_str()),
                s(c.as_str()),
            ],
        )?;
        let read = self.prepare(
            "SELECT m.id, m.status, l.until, l.holder \
             FROM messages m LEFT JOIN immediate_leases l ON l.message_id = m.id \
             WHERE m.id IN (SELECT value FROM json_each(?1))",
            &[json_list(ids)],
        )?;
        let results = self.db.batch(vec![take, read]).await?;
        let rows = match results.get(1) {
            Some(r) => r.results::<Row>()?,
            None => Vec::new(),
        };
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let status = MessageStatus::parse(&r.status)?;
                let won = r.holder.as_deref() == Some(holder)
                    && r.until.map(|u| u as u64) == Some(until_ms);
                let row = LeaseRow {
                    status,
                    lease_until: r.until.map(|u| u as u64),
                    won,
                };
                Some((r.id, row))
            })
            .collect())
    }

    /// Lets go of the leases `holder` took (and only those).
    pub async fn release_delivery_leases(&self, ids: &[&str], holder: &str) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.prepare(
            "DELETE FROM immediate_leases \
             WHERE message_id IN (SELECT value FROM json_each(?1)) AND holder = ?2",
            &[json_list(ids), s(holder)],
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
