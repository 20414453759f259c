//! Per-recipient results (`recipients`): what is recorded, and each delivery
//! the moment it happens.
//!
//! A recipient recorded final (delivered, failed, unknown, suppressed) stays so whatever a
//! later write says: a stale redelivery must not undo a 250 (the upsert's
//! `WHERE`). An in-flight marker (`sending`) is written before a
//! transaction's final dot and replaced by its result.
//! Must not: decide a recipient's state (`delivery::recipients` does).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::delivery::{Event, RecipientResult, RecipientState};
use crate::events::suppression::Entry;

use super::{Db, json_list, n, opt_n, opt_s, s};

impl Db {
    /// Recorded recipient states of many messages, in one query:
    /// `(message id, address, state)`.
    pub async fn recipient_states(
        &self,
        message_ids: &[&str],
    ) -> Result<Vec<(String, String, RecipientState)>> {
        #[derive(Deserialize)]
        struct Row {
            message_id: String,
            address: String,
            state: String,
        }
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .prepare(
                "SELECT message_id, address, state FROM recipients \
                 WHERE message_id IN (SELECT value FROM json_each(?1))",
                &[json_list(message_ids)],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| RecipientState::parse(&r.state).map(|st| (r.message_id, r.address, st)))
            .collect())
    }

    /// Records recipients' results (or in-flight markers) on their own, the
    /// moment they are known; `counts` adds one to their attempt counts.
    pub async fn record_recipients(
        &self,
        message_id: &str,
        results: &[RecipientResult],
        counts: bool,
        now_ms: u64,
    ) -> Result<()> {
        let statements = self.recipient_statements(message_id, results, counts, now_ms)?;
        self.batch(statements).await
    }

    /// [`Self::record_recipients`] for several messages in one batch: the
    /// in-flight markers of every transaction about to go out together.
    pub async fn record_recipients_of(
        &self,
        messages: &[(&str, Vec<RecipientResult>)],
        counts: bool,
        now_ms: u64,
    ) -> Result<()> {
        let mut statements = Vec::new();
        for (message_id, results) in messages {
            statements.extend(self.recipient_statements(message_id, results, counts, now_ms)?);
        }
        self.batch(statements).await
    }

    /// Records a transaction's results the moment they are known, with the
    /// suppression entries its hard bounces add, in one batch.
    pub async fn record_results(
        &self,
        message_id: &str,
        results: &[RecipientResult],
        suppress: &[Entry],
        now_ms: u64,
    ) -> Result<()> {
        let mut statements = self.recipient_statements(message_id, results, true, now_ms)?;
        statements.extend(self.suppression_statement(suppress)?);
        self.batch(statements).await
    }

    /// Records the recipients a screening held back, with their timeline
    /// events, in one batch; the status is left to the attempt that follows.
    pub async fn record_held(
        &self,
        message_id: &str,
        results: &[RecipientResult],
        events: &[Event],
        now_ms: u64,
    ) -> Result<()> {
        let mut statements = self.recipient_statements(message_id, results, false, now_ms)?;
        for event in events {
            statements.push(self.event_statement(
                message_id,
                event.kind,
                Some(&event.detail),
                now_ms,
            )?);
        }
        self.batch(statements).await
    }

    /// Upserts recipients' results; `counts` adds one to their attempt count.
    /// A recipient already recorded final stays so whatever comes later (a
    /// stale redelivery must not undo a 250).
    pub(super) fn recipient_statements(
        &self,
        message_id: &str,
        results: &[RecipientResult],
        counts: bool,
        now_ms: u64,
    ) -> Result<Vec<D1PreparedStatement>> {
        results
            .iter()
            .map(|r| {
                self.prepare(
                    "INSERT INTO recipients (message_id, address, state, attempts, reply_code, enhanced_code, reply_text, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (message_id, address) DO UPDATE SET \
                       state = excluded.state, attempts = recipients.attempts + ?4, \
                       reply_code = excluded.reply_code, enhanced_code = excluded.enhanced_code, \
                       reply_text = excluded.reply_text, updated_at = excluded.updated_at \
                     WHERE recipients.state NOT IN (?9, ?10, ?11, ?12, ?13)",
                    &[
                        s(message_id),
                        s(&r.address),
                        s(r.state.as_str()),
                        n(u64::from(counts)),
                        opt_n(r.reply_code.map(u64::from)),
                        opt_s(r.enhanced_code.as_deref()),
                        s(&r.reply_text),
                        n(now_ms),
                        s(RecipientState::Delivered.as_str()),
                        s(RecipientState::Failed.as_str()),
                        s(RecipientState::Unknown.as_str()),
                        s(RecipientState::Suppressed.as_str()),
                        s(RecipientState::Bounced.as_str()),
                    ],
                )
            })
            .collect()
    }
}
