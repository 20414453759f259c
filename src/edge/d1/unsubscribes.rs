//! Writing a one-click unsubscribe: the tenant's suppression row of the
//! link's scope, and the message fields its `email.unsubscribed` event names.
//!
//! Must not: decide the scope or the address (the core's `Unsubscribe` says),
//! or overwrite an entry the tenant already has for that address and scope.

use serde::Deserialize;
use worker::Result;

use crate::events::unsubscribe::{REASON, Unsubscribe};

use super::{Db, n, s};

/// What an event says about the message the link came in.
#[derive(Debug, Deserialize)]
pub struct MessageFields {
    pub mail_from: String,
    pub subject: Option<String>,
}

impl Db {
    /// Records the suppression; `true` when it is new, `false` when the
    /// tenant already had an entry for this address and scope (a provider
    /// posting twice, or the button pressed again).
    pub async fn insert_unsubscribe(&self, u: &Unsubscribe, now_ms: u64) -> Result<bool> {
        let result = self
            .prepare(
                "INSERT INTO suppressions (tenant, address, scope, reason, message_id, detail, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL) ON CONFLICT (tenant, address, scope) DO NOTHING",
                &[
                    s(&u.tenant),
                    s(&u.address),
                    s(&u.scope),
                    s(REASON.as_str()),
                    s(&u.message_id),
                    s("one-click unsubscribe"),
                    n(now_ms),
                ],
            )?
            .run()
            .await?;
        Ok(result
            .meta()?
            .and_then(|m| m.changes)
            .is_none_or(|changes| changes > 0))
    }

    /// The sender and subject of the tenant's message, if it is still there:
    /// the From address, not the return path (which may be a VERP address).
    pub async fn message_fields(&self, id: &str, tenant: &str) -> Result<Option<MessageFields>> {
        self.prepare(
            "SELECT COALESCE(sender, mail_from) AS mail_from, subject FROM messages \
             WHERE id = ?1 AND tenant = ?2",
            &[s(id), s(tenant)],
        )?
        .first::<MessageFields>(None)
        .await
    }
}
