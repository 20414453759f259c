//! What a tracking hit reads and writes: when the message was handed over,
//! whether it was opened (or clicked) before, and the aggregate count (`tracking_counts`, migration 0017).
//!
//! Must not: decide what a hit counts or whether it makes an event
//! (`events::tracking::hit` does).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::events::EventType;
use crate::events::tracking::hit::Count;

use super::{Db, n, s};

impl Db {
    /// When message `id` was first handed over (`email.sent`) or found
    /// delivered, Unix milliseconds, if it was.
    pub async fn sent_at_ms(&self, id: &str) -> Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Row {
            at: Option<f64>,
        }
        let row = self
            .prepare(
                "SELECT MIN(created_at) AS at FROM email_events \
                 WHERE message_id = ?1 AND type IN (?2, ?3)",
                &[
                    s(id),
                    s(EventType::Sent.as_str()),
                    s(EventType::Delivered.as_str()),
                ],
            )?
            .first::<Row>(None)
            .await?;
        Ok(row.and_then(|r| r.at).map(|at| at as u64))
    }

    /// Whether an event of `event_type` is stored for message `id`.
    pub async fn has_email_event(&self, id: &str, event_type: EventType) -> Result<bool> {
        #[derive(Deserialize)]
        struct Row {
            found: f64,
        }
        let row = self
            .prepare(
                "SELECT EXISTS (SELECT 1 FROM email_events WHERE message_id = ?1 AND type = ?2) AS found",
                &[s(id), s(event_type.as_str())],
            )?
            .first::<Row>(None)
            .await?;
        Ok(row.is_some_and(|r| r.found > 0.0))
    }

    /// The statement adding one hit to its count.
    pub fn tracking_count_statement(&self, count: &Count) -> Result<D1PreparedStatement> {
        self.prepare(
            "INSERT INTO tracking_counts (tenant, hour, stream, type, machine, per_recipient, count) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) \
             ON CONFLICT (tenant, hour, stream, type, machine, per_recipient) \
             DO UPDATE SET count = count + 1",
            &[
                s(&count.tenant),
                n(count.hour),
                s(&count.stream),
                s(count.event_type.as_str()),
                n(u64::from(count.machine)),
                n(u64::from(count.per_recipient)),
            ],
        )
    }
}
