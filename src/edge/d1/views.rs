//! Reading stored messages for the status and list API: one message with its
//! events and recipients, and a page of one tenant's messages.
//!
//! A message is read only together with the tenant it belongs to, and its
//! events and recipients only once it was found that way. Must not: write anything, or
//! shape the answers (`http::views` does).

use worker::Result;

use crate::http::listing::{Cursor, ListQuery};
use crate::http::views::{EmailEventRow, EventRow, MessageRow, RecipientRow};

use super::{Db, n, opt_n, opt_s, s};

const MESSAGE_COLUMNS: &str = "id, status, mail_from, rcpt_to, attempts, last_error, \
     created_at, updated_at, next_attempt_at, producer_id, tags, stream, subject, scheduled_at";

impl Db {
    /// A message, visible only to its tenant's keys.
    pub async fn message(&self, id: &str, tenant: &str) -> Result<Option<MessageRow>> {
        self.prepare(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND tenant = ?2"),
            &[s(id), s(tenant)],
        )?
        .first::<MessageRow>(None)
        .await
    }

    /// The copies of a message sent one copy per recipient (`<id>-<n>`),
    /// visible only to its tenant's keys. `parent` must be a parent id
    /// (hex digits only, so nothing in it is a `LIKE` wildcard).
    pub async fn copies(&self, parent: &str, tenant: &str) -> Result<Vec<MessageRow>> {
        self.prepare(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant = ?2 AND id LIKE ?1 || '-%'"
            ),
            &[s(parent), s(tenant)],
        )?
        .all()
        .await?
        .results::<MessageRow>()
    }

    /// A message's events, in the order they happened.
    pub async fn events(&self, message_id: &str) -> Result<Vec<EventRow>> {
        self.prepare(
            "SELECT at, kind, detail FROM events WHERE message_id = ?1 ORDER BY seq",
            &[s(message_id)],
        )?
        .all()
        .await?
        .results::<EventRow>()
    }

    /// Every recipient row of a message.
    pub async fn recipients(&self, message_id: &str) -> Result<Vec<RecipientRow>> {
        self.prepare(
            "SELECT address, state, attempts, reply_code, enhanced_code, reply_text, updated_at \
             FROM recipients WHERE message_id = ?1 ORDER BY rowid",
            &[s(message_id)],
        )?
        .all()
        .await?
        .results::<RecipientRow>()
    }

    /// A message's rows of the event stream, in the order they happened.
    pub async fn email_events(&self, message_id: &str) -> Result<Vec<EmailEventRow>> {
        self.prepare(
            "SELECT id, type, recipient, created_at, payload FROM email_events \
             WHERE message_id = ?1 ORDER BY created_at, rowid",
            &[s(message_id)],
        )?
        .all()
        .await?
        .results::<EmailEventRow>()
    }

    /// One page, newest first, plus one extra row when another page follows.
    pub async fn list(&self, tenant: &str, q: &ListQuery) -> Result<Vec<MessageRow>> {
        let (tag_name, tag_value) = match &q.tag {
            Some((name, value)) => (Some(name.as_str()), Some(value.as_str())),
            None => (None, None),
        };
        let cursor: Option<&Cursor> = q.cursor.as_ref();
        self.prepare(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant = ?1 \
                   AND (?2 IS NULL OR status = ?2) \
                   AND (?3 IS NULL OR created_at >= ?3) \
                   AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(messages.tags) t \
                                              WHERE t.key = ?4 AND t.value = ?5)) \
                   AND (?6 IS NULL OR created_at < ?6 OR (created_at = ?6 AND id < ?7)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?8"
            ),
            &[
                s(tenant),
                opt_s(q.status.as_deref()),
                opt_n(q.since),
                opt_s(tag_name),
                opt_s(tag_value),
                opt_n(cursor.map(|c| c.created_at)),
                opt_s(cursor.map(|c| c.id.as_str())),
                n(u64::from(q.limit) + 1),
            ],
        )?
        .all()
        .await?
        .results::<MessageRow>()
    }
}
