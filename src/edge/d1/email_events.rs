//! The event stream's rows (`email_events`): one per event, with the payload
//! exactly as webhooks deliver it.
//!
//! Must not: decide which events exist (the core builds them), or deliver them.

use worker::{D1PreparedStatement, Result};

use crate::events::EmailEvent;
use crate::events::rollup::event_keys;

use super::{Db, n, opt_s, s};

impl Db {
    /// The statements that store events, to run in one atomic batch (with
    /// their webhook deliveries, see `edge::email_events`), each followed by
    /// the statistics counters it moves. An event already stored (same id)
    /// is kept as it was and counted once.
    pub fn email_event_statements(
        &self,
        events: &[EmailEvent],
    ) -> Result<Vec<D1PreparedStatement>> {
        let mut statements = Vec::with_capacity(events.len());
        for e in events {
            statements.push(self.prepare(
                "INSERT INTO email_events (id, tenant, message_id, recipient, type, created_at, payload) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                &[
                    s(&e.id),
                    s(&e.tenant),
                    s(&e.message_id),
                    opt_s(e.recipient.as_deref()),
                    s(e.event_type.as_str()),
                    n(e.created_at_ms),
                    s(&e.payload_json()),
                ],
            )?);
            // Counted only when that insert stored the event.
            statements.extend(self.rollup_statements(&event_keys(e), 1)?);
        }
        Ok(statements)
    }
}
