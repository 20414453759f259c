//! The lifecycle's D1 records: per-recipient results, scheduling, idempotency
//! keys, producer messages and the message list.
//!
//! Owns the SQL for those tables (the `messages` and `events` basics stay in
//! `store`). Must not decide anything: the core says what a result means.

use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement, Result};

use crate::accept::idempotency::StoredKey;
use crate::delivery::{RecipientResult, RecipientState};
use crate::http::listing::{Cursor, ListQuery};
use crate::queue::EventKind;

use super::d1_values::{n, opt_n, opt_s, s};

/// One recipient row as shown by the status API.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct RecipientRow {
    pub address: String,
    pub state: String,
    pub attempts: f64,
    pub reply_code: Option<f64>,
    pub enhanced_code: Option<String>,
    pub reply_text: Option<String>,
    pub updated_at: f64,
}

/// One message in a list page.
#[derive(Debug, Deserialize)]
pub struct ListedRow {
    pub id: String,
    pub status: String,
    pub mail_from: String,
    pub rcpt_to: String,
    pub attempts: f64,
    pub last_error: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    pub next_attempt_at: Option<f64>,
    pub producer_id: Option<String>,
    pub tags: Option<String>,
}

#[derive(Deserialize)]
struct KeyRow {
    fingerprint: String,
    response_status: Option<f64>,
    response_body: Option<String>,
}

pub struct Ledger {
    db: D1Database,
}

impl Ledger {
    pub fn new(db: D1Database) -> Self {
        Ledger { db }
    }

    // ---- recipients ------------------------------------------------------

    /// Records recipients' results; `counts` adds one to their attempt count.
    /// A recipient already recorded as delivered stays delivered whatever
    /// comes later (a stale redelivery must not undo a 250).
    pub fn recipient_statements(
        &self,
        message_id: &str,
        results: &[RecipientResult],
        counts: bool,
        now_ms: u64,
    ) -> Result<Vec<D1PreparedStatement>> {
        results
            .iter()
            .map(|r| {
                self.db
                    .prepare(
                        "INSERT INTO recipients (message_id, address, state, attempts, reply_code, enhanced_code, reply_text, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                         ON CONFLICT (message_id, address) DO UPDATE SET \
                           state = excluded.state, attempts = recipients.attempts + ?4, \
                           reply_code = excluded.reply_code, enhanced_code = excluded.enhanced_code, \
                           reply_text = excluded.reply_text, updated_at = excluded.updated_at \
                         WHERE recipients.state <> 'delivered'",
                    )
                    .bind(&[
                        s(message_id),
                        s(&r.address),
                        s(r.state.as_str()),
                        n(u64::from(counts)),
                        opt_n(r.reply_code.map(u64::from)),
                        opt_s(r.enhanced_code.as_deref()),
                        s(&r.reply_text),
                        n(now_ms),
                    ])
            })
            .collect()
    }

    /// Records delivered recipients the moment their transaction completes.
    pub async fn record_delivered(
        &self,
        message_id: &str,
        results: &[RecipientResult],
        now_ms: u64,
    ) -> Result<()> {
        let delivered: Vec<RecipientResult> = results
            .iter()
            .filter(|r| r.state == RecipientState::Delivered)
            .cloned()
            .collect();
        if delivered.is_empty() {
            return Ok(());
        }
        let statements = self.recipient_statements(message_id, &delivered, true, now_ms)?;
        self.db.batch(statements).await?;
        Ok(())
    }

    /// Recorded recipient states of many messages, in one query.
    pub async fn recipient_states(
        &self,
        message_ids: &[&str],
    ) -> Result<Vec<(String, String, RecipientState)>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(message_ids).unwrap_or_else(|_| "[]".into());
        #[derive(Deserialize)]
        struct Row {
            message_id: String,
            address: String,
            state: String,
        }
        let rows = self
            .db
            .prepare(
                "SELECT message_id, address, state FROM recipients \
                 WHERE message_id IN (SELECT value FROM json_each(?1))",
            )
            .bind(&[s(&ids)])?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| RecipientState::parse(&r.state).map(|st| (r.message_id, r.address, st)))
            .collect())
    }

    /// Every recipient row of a message.
    pub async fn recipients(&self, message_id: &str) -> Result<Vec<RecipientRow>> {
        self.db
            .prepare(
                "SELECT address, state, attempts, reply_code, enhanced_code, reply_text, updated_at \
                 FROM recipients WHERE message_id = ?1 ORDER BY rowid",
            )
            .bind(&[s(message_id)])?
            .all()
            .await?
            .results::<RecipientRow>()
    }

    /// Sets when the next attempt is due (None once the message is final).
    pub fn schedule_statement(
        &self,
        message_id: &str,
        next_attempt_at: Option<u64>,
    ) -> Result<D1PreparedStatement> {
        self.db
            .prepare("UPDATE messages SET next_attempt_at = ?2 WHERE id = ?1")
            .bind(&[s(message_id), opt_n(next_attempt_at)])
    }

    pub fn event_statement(
        &self,
        message_id: &str,
        kind: EventKind,
        detail: Option<&str>,
        now_ms: u64,
    ) -> Result<D1PreparedStatement> {
        self.db
            .prepare("INSERT INTO events (message_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)")
            .bind(&[s(message_id), n(now_ms), s(kind.as_str()), opt_s(detail)])
    }

    pub async fn run(&self, statements: Vec<D1PreparedStatement>) -> Result<()> {
        if !statements.is_empty() {
            self.db.batch(statements).await?;
        }
        Ok(())
    }

    /// Sets tags and producer of a freshly accepted message.
    pub async fn annotate(
        &self,
        message_id: &str,
        tags_json: Option<&str>,
        producer_id: Option<&str>,
    ) -> Result<()> {
        self.db
            .prepare("UPDATE messages SET tags = ?2, producer_id = ?3 WHERE id = ?1")
            .bind(&[s(message_id), opt_s(tags_json), opt_s(producer_id)])?
            .run()
            .await?;
        Ok(())
    }

    /// Records a queue message that could not become a delivery job: a failed
    /// message row with the reason, visible to the producer's owner.
    pub async fn insert_rejected(
        &self,
        message_id: &str,
        owner_key_id: &str,
        producer_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<()> {
        let insert = self
            .db
            .prepare(
                "INSERT INTO messages (id, key_id, mail_from, rcpt_to, status, attempts, last_error, created_at, updated_at, producer_id) \
                 VALUES (?1, ?2, '', '[]', 'failed', 0, ?3, ?4, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&[
                s(message_id),
                s(owner_key_id),
                s(reason),
                n(now_ms / 1000),
                s(producer_id),
            ])?;
        let event = self.event_statement(message_id, EventKind::Rejected, Some(reason), now_ms)?;
        self.db.batch(vec![insert, event]).await?;
        Ok(())
    }

    // ---- idempotency keys -------------------------------------------------

    /// Claims a key for this request. True when this request holds it now
    /// (a new key, or one older than the window); false when another request
    /// does. The primary key decides concurrent claims.
    pub async fn claim_key(
        &self,
        key_id: &str,
        key: &str,
        fingerprint: &str,
        now_ms: u64,
        expired_before_ms: u64,
    ) -> Result<bool> {
        let won = self
            .db
            .prepare(
                "INSERT INTO idempotency_keys (key_id, idempotency_key, fingerprint, created_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (key_id, idempotency_key) DO UPDATE SET \
                   fingerprint = excluded.fingerprint, created_at = excluded.created_at, \
                   response_status = NULL, response_body = NULL \
                 WHERE idempotency_keys.created_at < ?5 \
                 RETURNING created_at",
            )
            .bind(&[
                s(key_id),
                s(key),
                s(fingerprint),
                n(now_ms),
                n(expired_before_ms),
            ])?
            .first::<f64>(Some("created_at"))
            .await?;
        Ok(won.is_some())
    }

    pub async fn read_key(&self, key_id: &str, key: &str) -> Result<Option<StoredKey>> {
        let row = self
            .db
            .prepare(
                "SELECT fingerprint, response_status, response_body FROM idempotency_keys \
                 WHERE key_id = ?1 AND idempotency_key = ?2",
            )
            .bind(&[s(key_id), s(key)])?
            .first::<KeyRow>(None)
            .await?;
        Ok(row.map(|r| StoredKey {
            fingerprint: r.fingerprint,
            response: match (r.response_status, r.response_body) {
                (Some(status), Some(body)) => Some((status as u16, body)),
                _ => None,
            },
        }))
    }

    pub async fn complete_key(
        &self,
        key_id: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        self.db
            .prepare(
                "UPDATE idempotency_keys SET response_status = ?3, response_body = ?4 \
                 WHERE key_id = ?1 AND idempotency_key = ?2",
            )
            .bind(&[s(key_id), s(key), n(u64::from(status)), s(body)])?
            .run()
            .await?;
        Ok(())
    }

    /// Gives a key back after a failed request, so the caller's retry runs.
    pub async fn release_key(&self, key_id: &str, key: &str) -> Result<()> {
        self.db
            .prepare(
                "DELETE FROM idempotency_keys WHERE key_id = ?1 AND idempotency_key = ?2 \
                 AND response_status IS NULL",
            )
            .bind(&[s(key_id), s(key)])?
            .run()
            .await?;
        Ok(())
    }

    // ---- listing ------------------------------------------------------------

    /// One page, newest first, plus one extra row when another page follows.
    pub async fn list(&self, key_id: &str, q: &ListQuery) -> Result<Vec<ListedRow>> {
        let (tag_name, tag_value) = match &q.tag {
            Some((name, value)) => (Some(name.as_str()), Some(value.as_str())),
            None => (None, None),
        };
        let cursor: Option<&Cursor> = q.cursor.as_ref();
        self.db
            .prepare(
                "SELECT id, status, mail_from, rcpt_to, attempts, last_error, created_at, updated_at, \
                        next_attempt_at, producer_id, tags \
                 FROM messages WHERE key_id = ?1 \
                   AND (?2 IS NULL OR status = ?2) \
                   AND (?3 IS NULL OR created_at >= ?3) \
                   AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(messages.tags) t \
                                              WHERE t.key = ?4 AND t.value = ?5)) \
                   AND (?6 IS NULL OR created_at < ?6 OR (created_at = ?6 AND id < ?7)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?8",
            )
            .bind(&[
                s(key_id),
                opt_s(q.status.as_deref()),
                opt_n(q.since),
                opt_s(tag_name),
                opt_s(tag_value),
                opt_n(cursor.map(|c| c.created_at)),
                opt_s(cursor.map(|c| c.id.as_str())),
                n(u64::from(q.limit) + 1),
            ])?
            .all()
            .await?
            .results::<ListedRow>()
    }

    /// Scheduling and origin of one message (for its status page).
    pub async fn extras(&self, message_id: &str) -> Result<Option<ListedRow>> {
        self.db
            .prepare(
                "SELECT id, status, mail_from, rcpt_to, attempts, last_error, created_at, updated_at, \
                        next_attempt_at, producer_id, tags FROM messages WHERE id = ?1",
            )
            .bind(&[s(message_id)])?
            .first::<ListedRow>(None)
            .await
    }
}
