//! What a tracking hit reads and writes: in one query, the message's facts,
//! when it was handed over and whether it was opened (or clicked) before;
//! and the aggregate count (`tracking_counts`, migration 0017).
//!
//! Must not: decide what a hit counts or whether it makes an event
//! (`events::tracking::hit` does).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::events::tracking::hit::Count;
use crate::events::{EventType, MessageFacts};

use super::reports::{FACT_COLUMNS, FactsRow};
use super::{Db, n, s};

impl Db {
    /// What a tracking hit on message `id` needs, in one query: the
    /// message's facts (none when it is no longer stored), whether an event
    /// of `event_type` is stored for it already, and when it was first
    /// handed over (`email.sent`) or found delivered, Unix milliseconds.
    pub async fn hit_facts(
        &self,
        id: &str,
        event_type: EventType,
    ) -> Result<Option<(MessageFacts, bool, Option<u64>)>> {
        #[derive(Deserialize)]
        struct Extra {
            seen_before: f64,
            sent_at: Option<f64>,
        }
        let sql = format!(
            "SELECT {FACT_COLUMNS}, \
               EXISTS (SELECT 1 FROM email_events WHERE message_id = ?1 AND type = ?2) AS seen_before, \
               (SELECT MIN(created_at) FROM email_events \
                WHERE message_id = ?1 AND type IN (?3, ?4)) AS sent_at \
             FROM messages WHERE id = ?1"
        );
        let statement = self.prepare(
            &sql,
            &[
                s(id),
                s(event_type.as_str()),
                s(EventType::Sent.as_str()),
                s(EventType::Delivered.as_str()),
            ],
        )?;
        // One round trip: the same row read as facts and as the extra columns.
        let rows = statement.all().await?;
        let (Some(facts), Some(extra)) = (
            rows.results::<FactsRow>()?.into_iter().next(),
            rows.results::<Extra>()?.into_iter().next(),
        ) else {
            return Ok(None);
        };
        Ok(Some((
            facts.facts(),
            extra.seen_before > 0.0,
            extra.sent_at.map(|at| at as u64),
        )))
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
