//! The message store in D1: one row per message, one row per event.
//!
//! Owns the SQL. Must not decide anything: callers say what happened.

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

use crate::queue::{EventKind, MessageStatus};

use super::d1_values::{n, opt_s, s};

/// What `GET /v1/messages/{id}` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: String,
    pub status: String,
    pub mail_from: String,
    pub rcpt_to: serde_json::Value,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    #[serde(default)]
    pub events: Vec<EventRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventRecord {
    pub at: u64,
    pub kind: String,
    pub detail: Option<String>,
}

#[derive(Deserialize)]
struct MessageRow {
    id: String,
    status: String,
    mail_from: String,
    rcpt_to: String,
    attempts: f64,
    last_error: Option<String>,
    created_at: f64,
    updated_at: f64,
}

#[derive(Deserialize)]
struct EventRow {
    at: f64,
    kind: String,
    detail: Option<String>,
}

pub struct Store {
    db: D1Database,
}

impl Store {
    pub fn new(db: D1Database) -> Self {
        Store { db }
    }

    /// Records a newly accepted message and its `accepted` event, atomically.
    pub async fn insert_accepted(
        &self,
        id: &str,
        key_id: &str,
        mail_from: &str,
        rcpt_to: &[String],
        now_ms: u64,
    ) -> Result<()> {
        let rcpts = serde_json::to_string(rcpt_to).unwrap_or_else(|_| "[]".into());
        let insert = self
            .db
            .prepare(
                "INSERT INTO messages (id, key_id, mail_from, rcpt_to, status, attempts, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?5)",
            )
            .bind(&[s(id), s(key_id), s(mail_from), s(&rcpts), n(now_ms / 1000)])?;
        let event = self.event_statement(id, EventKind::Accepted, None, now_ms)?;
        self.db.batch(vec![insert, event]).await?;
        Ok(())
    }

    /// Removes a message whose enqueue failed, so nothing half-exists.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let a = self
            .db
            .prepare("DELETE FROM events WHERE message_id = ?1")
            .bind(&[s(id)])?;
        let b = self
            .db
            .prepare("DELETE FROM messages WHERE id = ?1")
            .bind(&[s(id)])?;
        self.db.batch(vec![a, b]).await?;
        Ok(())
    }

    /// The current status of a message, if it exists.
    pub async fn status_of(&self, id: &str) -> Result<Option<MessageStatus>> {
        Ok(self
            .db
            .prepare("SELECT status FROM messages WHERE id = ?1")
            .bind(&[s(id)])?
            .first::<String>(Some("status"))
            .await?
            .and_then(|s| MessageStatus::parse(&s)))
    }

    /// Moves a message to `status` after an attempt, with an event of `kind`.
    pub async fn record_attempt(
        &self,
        id: &str,
        status: MessageStatus,
        counts_attempt: bool,
        kind: EventKind,
        detail: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        let update = self
            .db
            .prepare(
                "UPDATE messages SET status = ?2, attempts = attempts + ?3, \
                 last_error = COALESCE(?4, last_error), updated_at = ?5 WHERE id = ?1",
            )
            .bind(&[
                s(id),
                s(status.as_str()),
                n(u64::from(counts_attempt)),
                if status == MessageStatus::Delivered {
                    JsValue::NULL
                } else {
                    opt_s(detail)
                },
                n(now_ms / 1000),
            ])?;
        let event = self.event_statement(id, kind, detail, now_ms)?;
        self.db.batch(vec![update, event]).await?;
        Ok(())
    }

    /// Adds an event without changing the status.
    pub async fn add_event(
        &self,
        id: &str,
        kind: EventKind,
        detail: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        self.event_statement(id, kind, detail, now_ms)?
            .run()
            .await?;
        Ok(())
    }

    fn event_statement(
        &self,
        id: &str,
        kind: EventKind,
        detail: Option<&str>,
        now_ms: u64,
    ) -> Result<worker::D1PreparedStatement> {
        self.db
            .prepare("INSERT INTO events (message_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)")
            .bind(&[s(id), n(now_ms), s(kind.as_str()), opt_s(detail)])
    }

    /// A message with its events, visible only to the key that sent it.
    pub async fn get(&self, id: &str, key_id: &str) -> Result<Option<MessageRecord>> {
        let row = self
            .db
            .prepare(
                "SELECT id, status, mail_from, rcpt_to, attempts, last_error, created_at, updated_at \
                 FROM messages WHERE id = ?1 AND key_id = ?2",
            )
            .bind(&[s(id), s(key_id)])?
            .first::<MessageRow>(None)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let events = self
            .db
            .prepare("SELECT at, kind, detail FROM events WHERE message_id = ?1 ORDER BY seq")
            .bind(&[s(id)])?
            .all()
            .await?
            .results::<EventRow>()?
            .into_iter()
            .map(|e| EventRecord {
                at: e.at as u64,
                kind: e.kind,
                detail: e.detail,
            })
            .collect();
        Ok(Some(MessageRecord {
            id: row.id,
            status: row.status,
            mail_from: row.mail_from,
            rcpt_to: serde_json::from_str(&row.rcpt_to).unwrap_or(serde_json::Value::Null),
            attempts: row.attempts as u32,
            last_error: row.last_error,
            created_at: row.created_at as u64,
            updated_at: row.updated_at as u64,
            events,
        }))
    }
}
