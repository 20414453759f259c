//! Message rows and their events: accepting, rejecting, deleting, settling and
//! noting. A status change and its event are written in one atomic batch.
//!
//! Must not: choose a status or an event (the caller's core value says which),
//! or write a status or kind as SQL text: both are bound from their enums.

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::accept::commit::NewRow;
use crate::delivery::Record;
use crate::delivery::dispatch::StoredEnvelope;
use crate::events::rollup::accepted_keys;
use crate::http::listing::tags_json;
use crate::message::Tag;
use crate::queue::{DEFAULT_STREAM, EventKind, MessageStatus};

use super::{Db, json_list, n, opt_n, opt_s, s};

impl Db {
    /// Records a newly accepted message, its `accepted` event, its
    /// warnings, its tags, its lease (immediate mode) and the job that
    /// delivers it (as the queue carries it: with the MIME, or with the
    /// body's key when stored apart), atomically, in one round trip.
    pub async fn insert_accepted(&self, row: &NewRow<'_>) -> Result<()> {
        let job = row.job;
        let now_ms = row.accepted_at_ms;
        let id = job.id.as_str();
        let rcpts = serde_json::to_string(&job.rcpt_to).unwrap_or_else(|_| "[]".into());
        // A struct of strings and numbers always serialises.
        let stored = serde_json::to_string(&job.for_queue()).unwrap_or_default();
        let metadata = job
            .metadata
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        let tags = tags_json(&job.tags);
        let insert = self.prepare(
            "INSERT INTO messages (id, key_id, mail_from, rcpt_to, status, attempts, created_at, updated_at, job, \
                                   tenant, stream, subject, sender, topic, metadata, tags, scheduled_at, next_attempt_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
            &[
                s(id),
                s(&job.key_id),
                s(&job.mail_from),
                s(&rcpts),
                s(match row.send_at {
                    Some(_) => MessageStatus::Scheduled.as_str(),
                    None => MessageStatus::Queued.as_str(),
                }),
                n(now_ms / 1000),
                s(&stored),
                s(job.tenant()),
                s(job.stream()),
                opt_s(job.subject.as_deref()),
                opt_s(job.from.as_deref()),
                opt_s(job.topic.as_deref()),
                opt_s(metadata.as_deref()),
                opt_s(tags.as_deref()),
                opt_n(row.send_at),
            ],
        )?;
        let counted = accepted_keys(job.tenant(), job.stream(), &job.tags, now_ms);
        let mut statements = vec![insert];
        if let Some(until) = row.lease_until_ms {
            statements.push(self.prepare(
                "INSERT INTO immediate_leases (message_id, until) VALUES (?1, ?2) \
                 ON CONFLICT (message_id) DO UPDATE SET until = excluded.until",
                &[s(id), n(until)],
            )?);
        }
        statements.extend(self.rollup_statements(&counted, 1)?);
        statements.push(self.event_statement(id, EventKind::Accepted, None, now_ms)?);
        for warning in row.warnings {
            statements.push(self.event_statement(id, EventKind::Warning, Some(warning), now_ms)?);
        }
        self.batch(statements).await
    }

    /// Removes a message whose enqueue failed, with its stored job, so
    /// nothing half-exists (a job that did reach the queue finds no row and
    /// is refused).
    /// Its acceptance is counted out of the statistics with it.
    pub async fn delete(&self, id: &str) -> Result<()> {
        #[derive(Deserialize)]
        struct Row {
            tenant: Option<String>,
            stream: Option<String>,
            created_at: f64,
            job: Option<String>,
        }
        let row = self
            .prepare(
                "SELECT tenant, stream, created_at, job FROM messages WHERE id = ?1",
                &[s(id)],
            )?
            .first::<Row>(None)
            .await?;
        let events = self.prepare("DELETE FROM events WHERE message_id = ?1", &[s(id)])?;
        let message = self.prepare("DELETE FROM messages WHERE id = ?1", &[s(id)])?;
        let mut statements = vec![events, message];
        if let Some(row) = row {
            let tags: Vec<Tag> = row
                .job
                .as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .and_then(|j| serde_json::from_value(j.get("tags")?.clone()).ok())
                .unwrap_or_default();
            let counted = accepted_keys(
                row.tenant.as_deref().unwrap_or_default(),
                row.stream.as_deref().unwrap_or(DEFAULT_STREAM),
                &tags,
                (row.created_at as u64).saturating_mul(1000),
            );
            statements.extend(self.rollup_statements(&counted, -1)?);
        }
        self.batch(statements).await
    }

    /// The current status of a message, if it exists.
    pub async fn status_of(&self, id: &str) -> Result<Option<MessageStatus>> {
        Ok(self
            .prepare("SELECT status FROM messages WHERE id = ?1", &[s(id)])?
            .first::<String>(Some("status"))
            .await?
            .and_then(|s| MessageStatus::parse(&s)))
    }

    /// The stored envelopes (key, MAIL FROM, recipients) of many messages,
    /// in one query: what a queued job is checked against.
    pub async fn stored_envelopes(&self, ids: &[&str]) -> Result<Vec<(String, StoredEnvelope)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            key_id: String,
            mail_from: String,
            rcpt_to: String,
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .prepare(
                "SELECT id, key_id, mail_from, rcpt_to FROM messages \
                 WHERE id IN (SELECT value FROM json_each(?1))",
                &[json_list(ids)],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .map(|r| {
                // A list that does not parse matches no recipient.
                let rcpt_to = serde_json::from_str(&r.rcpt_to).unwrap_or_default();
                let envelope = StoredEnvelope {
                    key_id: r.key_id,
                    mail_from: r.mail_from,
                    rcpt_to,
                };
                (r.id, envelope)
            })
            .collect())
    }

    /// Sets tags and producer of a freshly accepted message.
    pub async fn annotate(
        &self,
        message_id: &str,
        tags_json: Option<&str>,
        producer_id: Option<&str>,
    ) -> Result<()> {
        self.prepare(
            "UPDATE messages SET tags = ?2, producer_id = ?3 WHERE id = ?1",
            &[s(message_id), opt_s(tags_json), opt_s(producer_id)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Records a queue message that could not become a delivery job: a failed
    /// message row with the reason, visible to the producer's tenant.
    pub async fn insert_rejected(
        &self,
        message_id: &str,
        owner: (&str, &str),
        producer_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<()> {
        let (owner_key_id, tenant) = owner;
        let insert = self.prepare(
            "INSERT INTO messages (id, key_id, mail_from, rcpt_to, status, attempts, last_error, created_at, updated_at, producer_id, tenant) \
             VALUES (?1, ?2, '', '[]', ?3, 0, ?4, ?5, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            &[
                s(message_id),
                s(owner_key_id),
                s(MessageStatus::Failed.as_str()),
                s(reason),
                n(now_ms / 1000),
                s(producer_id),
                s(tenant),
            ],
        )?;
        let event = self.event_statement(message_id, EventKind::Rejected, Some(reason), now_ms)?;
        self.batch(vec![insert, event]).await
    }

    /// Moves a message to `status` with an event of `kind`; `detail` also
    /// becomes its `last_error`.
    pub async fn record_attempt(
        &self,
        id: &str,
        status: MessageStatus,
        counts_attempt: bool,
        kind: EventKind,
        detail: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        let update = self.prepare(
            "UPDATE messages SET status = ?2, attempts = attempts + ?3, \
             last_error = COALESCE(?4, last_error), updated_at = ?5 WHERE id = ?1",
            &[
                s(id),
                s(status.as_str()),
                n(u64::from(counts_attempt)),
                opt_s(detail),
                n(now_ms / 1000),
            ],
        )?;
        let event = self.event_statement(id, kind, detail, now_ms)?;
        self.batch(vec![update, event]).await
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

    /// Adds an event to a message only if it exists (the id comes from an
    /// untrusted queue body: no event is left without its message), without
    /// changing its status.
    pub async fn add_event_if_exists(
        &self,
        id: &str,
        kind: EventKind,
        detail: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.prepare(
            "INSERT INTO events (message_id, at, kind, detail) \
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)",
            &[s(id), n(now_ms), s(kind.as_str()), s(detail)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Writes a settlement's record in one batch: the recipients, the
    /// events in order, the status with its error, the schedule, and the
    /// suppression entries its hard bounces add. A final status also drops
    /// the stored job: nothing will send it again.
    pub async fn write_record(&self, id: &str, record: &Record, now_ms: u64) -> Result<()> {
        let count_recipients = record.counts_attempt && !record.recipients_recorded;
        let mut statements =
            self.recipient_statements(id, &record.recipients, count_recipients, now_ms)?;
        for event in &record.events {
            statements.push(self.event_statement(id, event.kind, Some(&event.detail), now_ms)?);
        }
        statements.push(self.prepare(
            "UPDATE messages SET status = ?2, attempts = attempts + ?3, \
             last_error = COALESCE(?4, last_error), updated_at = ?5, next_attempt_at = ?6, \
             job = CASE WHEN ?7 = 1 THEN NULL ELSE job END \
             WHERE id = ?1",
            &[
                s(id),
                s(record.status.as_str()),
                n(u64::from(record.counts_attempt)),
                opt_s(record.last_error.as_deref()),
                n(now_ms / 1000),
                opt_n(record.next_attempt_at),
                n(u64::from(record.status.is_final())),
            ],
        )?);
        statements.extend(self.suppression_statement(&record.suppress)?);
        self.batch(statements).await
    }

    pub(super) fn event_statement(
        &self,
        id: &str,
        kind: EventKind,
        detail: Option<&str>,
        now_ms: u64,
    ) -> Result<D1PreparedStatement> {
        self.prepare(
            "INSERT INTO events (message_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            &[s(id), n(now_ms), s(kind.as_str()), opt_s(detail)],
        )
    }
}
