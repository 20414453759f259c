//! Recording events of the stream: every stage that produces an
//! `EmailEvent` (delivery, suppression, unsubscribes) hands it here.
//!
//! Owns the one way events are written. Must not: build events (the core
//! does) or decide which a stage emits.

use worker::Result;

use crate::events::EmailEvent;

use super::d1::Db;

/// Stores `events` (nothing to do for none).
pub async fn record(db: &Db, events: &[EmailEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    db.insert_email_events(events).await
}
