//! What comes back after the hand-off: the facts of a stored message a
//! report names, a recipient's state, the writes of a report's effect, and
//! the `inbound_reports` records with their listing.
//!
//! Every listing names who may see a record: its tenant, or, for a record
//! no message claimed, the sender domains of the caller's key.
//! Must not: decide what a report changes (`delivery::reports`) or whether
//! it is trusted (`inbound::matching`).

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::Result;

use crate::delivery::RecipientState;
use crate::delivery::reports::Changes;
use crate::events::MessageFacts;
use crate::http::inbound_reports::{ListQuery, RecordRow};
use crate::inbound::record::ReportRecord;
use crate::message::Tag;
use crate::queue::DEFAULT_STREAM;

use super::{Db, json_list, n, opt_n, opt_s, s};

/// The columns of `messages` that [`FactsRow`] reads.
pub(super) const FACT_COLUMNS: &str =
    "id, key_id, tenant, mail_from, rcpt_to, subject, stream, tags, sender, topic, metadata";

/// A message row's facts, as stored.
#[derive(Deserialize)]
pub(super) struct FactsRow {
    pub id: String,
    pub key_id: String,
    pub tenant: Option<String>,
    pub mail_from: String,
    pub rcpt_to: String,
    pub subject: Option<String>,
    pub stream: Option<String>,
    pub tags: Option<String>,
    pub sender: Option<String>,
    pub topic: Option<String>,
    pub metadata: Option<String>,
}

impl FactsRow {
    pub fn facts(self) -> MessageFacts {
        let r = self;
        // Columns that do not parse read as empty: they only decorate
        // the event.
        let tags: Map<String, Value> = r
            .tags
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        MessageFacts {
            tenant: r.tenant.unwrap_or_else(|| r.key_id.clone()),
            from: r.sender.unwrap_or(r.mail_from),
            to: serde_json::from_str(&r.rcpt_to).unwrap_or_default(),
            subject: r.subject,
            stream: r.stream.unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            topic: r.topic,
            tags: tags
                .into_iter()
                .filter_map(|(name, value)| {
                    Some(Tag {
                        name,
                        value: value.as_str()?.to_string(),
                    })
                })
                .collect(),
            metadata: r
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            id: r.id,
        }
    }
}

impl Db {
    /// What events about message `id` say of it, when it is stored.
    pub async fn message_facts(&self, id: &str) -> Result<Option<MessageFacts>> {
        let row = self
            .prepare(
                &format!("SELECT {FACT_COLUMNS} FROM messages WHERE id = ?1"),
                &[s(id)],
            )?
            .first::<FactsRow>(None)
            .await?;
        Ok(row.map(FactsRow::facts))
    }

    /// The recorded state of one recipient of a message.
    pub async fn recipient_state(
        &self,
        message_id: &str,
        address: &str,
    ) -> Result<Option<RecipientState>> {
        let state = self
            .prepare(
                "SELECT state FROM recipients WHERE message_id = ?1 AND address = ?2",
                &[s(message_id), s(address)],
            )?
            .first::<String>(Some("state"))
            .await?;
        Ok(state.and_then(|st| RecipientState::parse(&st)))
    }

    /// Writes a report's changes to the message (the recipient's state, the
    /// timeline entry, the suppression) in one batch; the event itself is
    /// published by the caller.
    pub async fn apply_report_changes(
        &self,
        message_id: &str,
        changes: &Changes,
        now_ms: u64,
    ) -> Result<()> {
        let mut statements = Vec::new();
        if let Some(r) = &changes.bounced {
            // A bounce after the upstream's 250 replaces it; nothing else
            // final is undone.
            statements.push(self.prepare(
                "INSERT INTO recipients (message_id, address, state, attempts, reply_code, enhanced_code, reply_text, updated_at) \
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (message_id, address) DO UPDATE SET \
                   state = excluded.state, reply_code = excluded.reply_code, \
                   enhanced_code = excluded.enhanced_code, reply_text = excluded.reply_text, \
                   updated_at = excluded.updated_at \
                 WHERE recipients.state NOT IN (?8, ?9, ?10)",
                &[
                    s(message_id),
                    s(&r.address),
                    s(r.state.as_str()),
                    opt_n(r.reply_code.map(u64::from)),
                    opt_s(r.enhanced_code.as_deref()),
                    s(&r.reply_text),
                    n(now_ms),
                    s(RecipientState::Failed.as_str()),
                    s(RecipientState::Suppressed.as_str()),
                    s(RecipientState::Bounced.as_str()),
                ],
            )?);
        }
        let (kind, detail) = &changes.timeline;
        statements.push(self.event_statement(message_id, *kind, Some(detail), now_ms)?);
        if let Some(entry) = &changes.suppress {
            statements.extend(self.suppression_statement(std::slice::from_ref(entry))?);
        }
        self.batch(statements).await
    }

    /// Stores one record.
    pub async fn insert_report(&self, r: &ReportRecord) -> Result<()> {
        let events = serde_json::to_string(&r.events).unwrap_or_else(|_| "[]".into());
        self.prepare(
            "INSERT INTO inbound_reports (id, received_at, source, kind, verdict, reason, tenant, domain, \
               message_id, recipient, events, mail_from, rcpt_to, subject, size, body_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            &[
                s(&r.id),
                n(r.received_at_ms),
                s(r.channel.as_str()),
                s(r.kind.as_str()),
                s(r.outcome.as_str()),
                opt_s(r.reason.as_deref()),
                opt_s(r.tenant.as_deref()),
                opt_s(r.domain.as_deref()),
                opt_s(r.message_id.as_deref()),
                opt_s(r.recipient.as_deref()),
                s(&events),
                opt_s(r.mail_from.as_deref()),
                opt_s(r.rcpt_to.as_deref()),
                opt_s(r.subject.as_deref()),
                n(r.size),
                opt_s(r.body_key.as_deref()),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// A page of the records `tenant` (or its sender `domains`, for records
    /// no message claimed) may see, newest first.
    pub async fn list_reports(
        &self,
        tenant: &str,
        domains: &[&str],
        q: &ListQuery,
    ) -> Result<Vec<RecordRow>> {
        let (after_at, after_id) = match &q.cursor {
            Some(c) => (n(c.received_at_ms), s(&c.id)),
            None => (wasm_bindgen::JsValue::NULL, wasm_bindgen::JsValue::NULL),
        };
        self.prepare(
            &format!(
                "SELECT {COLUMNS} FROM inbound_reports \
                 WHERE (tenant = ?1 OR (tenant IS NULL AND domain IN (SELECT value FROM json_each(?2)))) \
                 AND (?3 IS NULL OR verdict = ?3) \
                 AND (?4 IS NULL OR message_id = ?4) \
                 AND (?5 IS NULL OR source = ?5) \
                 AND (?6 IS NULL OR received_at < ?6 OR (received_at = ?6 AND id < ?7)) \
                 ORDER BY received_at DESC, id DESC LIMIT ?8"
            ),
            &[
                s(tenant),
                json_list(domains),
                opt_s(q.outcome.map(|o| o.as_str())),
                opt_s(q.message_id.as_deref()),
                opt_s(q.source.as_deref()),
                after_at,
                after_id,
                n(u64::from(q.limit) + 1),
            ],
        )?
        .all()
        .await?
        .results::<RecordRow>()
    }

    /// One record, when `tenant` (or its sender `domains`) may see it.
    pub async fn report(
        &self,
        tenant: &str,
        domains: &[&str],
        id: &str,
    ) -> Result<Option<RecordRow>> {
        self.prepare(
            &format!(
                "SELECT {COLUMNS} FROM inbound_reports WHERE id = ?3 \
                 AND (tenant = ?1 OR (tenant IS NULL AND domain IN (SELECT value FROM json_each(?2))))"
            ),
            &[s(tenant), json_list(domains), s(id)],
        )?
        .first::<RecordRow>(None)
        .await
    }
}

const COLUMNS: &str = "id, received_at, source, kind, verdict, reason, tenant, domain, message_id, \
                       recipient, events, mail_from, rcpt_to, subject, size, body_key";
