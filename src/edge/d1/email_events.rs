//! The event stream's rows (`email_events`): one per event, with the payload
//! exactly as webhooks deliver it.
//!
//! Must not: decide which events exist (the core builds them), or deliver them.

use worker::Result;

use crate::events::EmailEvent;

use super::{Db, n, opt_s, s};

impl Db {
    /// Stores events in one atomic batch. An event already stored (same id)
    /// is kept as it was.
    pub async fn insert_email_events(&self, events: &[EmailEvent]) -> Result<()> {
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
        }
        self.batch(statements).await
    }
}
