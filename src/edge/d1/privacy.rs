//! The SQL of retention and of the privacy routes: deleting messages with
//! everything that hangs off them, the purge's age-based deletions and its
//! log (`purge_runs`), the candidate rows of an export, and the rows an
//! erasure deletes or rewrites.
//!
//! Every statement of the privacy routes names the caller's tenant. Every
//! deletion is bounded (`LIMIT`): the callers pass the limits.
//! Must not: decide which messages are due, which rows are about an address
//! or what replaces it (`events::retention`, `events::erasure`,
//! `http::privacy` do).

use serde::Deserialize;
use serde_json::Value;
use worker::{D1PreparedStatement, Result};

use crate::events::retention::PurgePlan;
use crate::events::webhooks::schedule::DeliveryState;
use crate::http::privacy::Candidates;

use super::{Db, json_list, n, s};

/// A purged or erased message's dependants, deleted before the message:
/// (table, statement over `?1`, a JSON list of message ids).
const MESSAGE_DEPENDANTS: [(&str, &str); 7] = [
    (
        "webhook_attempts",
        "DELETE FROM webhook_attempts WHERE event_id IN (SELECT id FROM email_events \
         WHERE message_id IN (SELECT value FROM json_each(?1)))",
    ),
    (
        "webhook_deliveries",
        "DELETE FROM webhook_deliveries WHERE event_id IN (SELECT id FROM email_events \
         WHERE message_id IN (SELECT value FROM json_each(?1)))",
    ),
    (
        "email_events",
        "DELETE FROM email_events WHERE message_id IN (SELECT value FROM json_each(?1))",
    ),
    (
        "events",
        "DELETE FROM events WHERE message_id IN (SELECT value FROM json_each(?1))",
    ),
    (
        "recipients",
        "DELETE FROM recipients WHERE message_id IN (SELECT value FROM json_each(?1))",
    ),
    (
        "inbound_reports",
        "DELETE FROM inbound_reports WHERE message_id IN (SELECT value FROM json_each(?1))",
    ),
    (
        "immediate_leases",
        "DELETE FROM immediate_leases WHERE message_id IN (SELECT value FROM json_each(?1))",
    ),
];

/// The text columns an erasure rewrites, per table, and which of the
/// table's rows are the tenant's (`?1`: the tenant, or for idempotency
/// keys, which are kept per API key, the JSON list of the tenant's key
/// ids). Messages deleted whole are gone before this runs. `messages.job`
/// is left alone: only a message not final still has one, and its signed
/// body must go out as signed.
const SCRUBBED: [(&str, &[&str], &str); 8] = [
    (
        "messages",
        &[
            "mail_from",
            "rcpt_to",
            "sender",
            "subject",
            "last_error",
            "metadata",
            "tags",
        ],
        "tenant = ?1",
    ),
    (
        "recipients",
        &["address", "reply_text"],
        "message_id IN (SELECT id FROM messages WHERE tenant = ?1)",
    ),
    (
        "events",
        &["detail"],
        "message_id IN (SELECT id FROM messages WHERE tenant = ?1)",
    ),
    ("email_events", &["recipient", "payload"], "tenant = ?1"),
    ("webhook_deliveries", &["payload"], "tenant = ?1"),
    ("webhook_attempts", &["error"], "tenant = ?1"),
    ("suppressions", &["detail"], "tenant = ?1"),
    (
        "idempotency_keys",
        &["response_body"],
        "key_id IN (SELECT value FROM json_each(?1))",
    ),
];

/// Rows of one table whose text names an address: the row's id and its
/// text columns, in the order `SCRUBBED` names them.
pub struct ScrubRows {
    pub table: &'static str,
    pub rows: Vec<(f64, Vec<Option<String>>)>,
}

#[derive(Deserialize)]
struct BodyKey {
    body_key: Option<String>,
}

fn changes(result: &worker::D1Result) -> u64 {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0) as u64
}

impl Db {
    /// Deletes messages and everything about them (events, recipients,
    /// webhook deliveries and attempts, reports naming them, leases) in one
    /// atomic batch. The rows deleted per table, and the bucket keys of the
    /// reports' kept bodies (for the caller to delete).
    pub async fn delete_messages(
        &self,
        ids: &[&str],
    ) -> Result<(Vec<(&'static str, u64)>, Vec<String>)> {
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let keys = self
            .prepare(
                "SELECT body_key FROM inbound_reports WHERE body_key IS NOT NULL \
                 AND message_id IN (SELECT value FROM json_each(?1))",
                &[json_list(ids)],
            )?
            .all()
            .await?
            .results::<BodyKey>()?
            .into_iter()
            .filter_map(|k| k.body_key)
            .collect();
        let mut tables = Vec::new();
        let mut statements = Vec::new();
        for (table, sql) in MESSAGE_DEPENDANTS {
            tables.push(table);
            statements.push(self.prepare(sql, &[json_list(ids)])?);
        }
        tables.push("messages");
        statements.push(self.prepare(
            "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1))",
            &[json_list(ids)],
        )?);
        let results = self.db.batch(statements).await?;
        let counts = tables
            .into_iter()
            .zip(results.iter().map(changes))
            .collect();
        Ok((counts, keys))
    }

    /// The final messages whose last change is before the plan's cutoff,
    /// and that hold no job: `(id, status, has job, updated_at)`, oldest
    /// first, at most the plan's limit.
    pub async fn purge_candidates(
        &self,
        plan: &PurgePlan,
    ) -> Result<Vec<(String, String, bool, u64)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            status: String,
            has_job: f64,
            updated_at: f64,
        }
        let finals = PurgePlan::final_statuses();
        let rows = self
            .prepare(
                "SELECT id, status, job IS NOT NULL AS has_job, updated_at FROM messages \
                 WHERE status IN (SELECT value FROM json_each(?1)) AND updated_at < ?2 \
                   AND job IS NULL \
                 ORDER BY updated_at, id LIMIT ?3",
                &[
                    json_list(&finals),
                    n(plan.cutoff_s),
                    n(u64::from(plan.limit)),
                ],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .map(|r| (r.id, r.status, r.has_job != 0.0, r.updated_at as u64))
            .collect())
    }

    /// The purge's deletions by age, each at most `plan.limit` rows, in one
    /// batch: events of messages final or gone, finished webhook deliveries,
    /// webhook attempts, expired suppression entries, idempotency keys and
    /// old purge records. Rows deleted per table.
    pub async fn purge_by_age(&self, plan: &PurgePlan) -> Result<Vec<(&'static str, u64)>> {
        let finals = json_list(&PurgePlan::final_statuses());
        let done: Vec<&str> = [
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::EndpointDisabled,
        ]
        .iter()
        .map(|d| d.as_str())
        .collect();
        let limit = n(u64::from(plan.limit));
        let cutoff = n(plan.cutoff_ms);
        let statements: Vec<(&'static str, D1PreparedStatement)> = vec![
            (
                "email_events",
                self.prepare(
                    "DELETE FROM email_events WHERE rowid IN (SELECT e.rowid FROM email_events e \
                     WHERE e.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM messages m \
                       WHERE m.id = e.message_id AND m.status NOT IN (SELECT value FROM json_each(?2))) \
                     LIMIT ?3)",
                    &[cutoff.clone(), finals.clone(), limit.clone()],
                )?,
            ),
            (
                "webhook_deliveries",
                self.prepare(
                    "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM webhook_deliveries \
                     WHERE created_at < ?1 AND state IN (SELECT value FROM json_each(?2)) LIMIT ?3)",
                    &[cutoff.clone(), json_list(&done), limit.clone()],
                )?,
            ),
            (
                "webhook_attempts",
                self.prepare(
                    "DELETE FROM webhook_attempts WHERE rowid IN (SELECT rowid FROM webhook_attempts \
                     WHERE at < ?1 LIMIT ?2)",
                    &[cutoff.clone(), limit.clone()],
                )?,
            ),
            (
                "suppressions",
                self.prepare(
                    "DELETE FROM suppressions WHERE rowid IN (SELECT rowid FROM suppressions \
                     WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)",
                    &[n(plan.now_ms), limit.clone()],
                )?,
            ),
            (
                "idempotency_keys",
                self.prepare(
                    "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys \
                     WHERE created_at < ?1 LIMIT ?2)",
                    &[n(plan.idempotency_cutoff_ms), limit.clone()],
                )?,
            ),
            (
                "purge_runs",
                self.prepare(
                    "DELETE FROM purge_runs WHERE rowid IN (SELECT rowid FROM purge_runs \
                     WHERE at < ?1 LIMIT ?2)",
                    &[n(plan.purge_log_cutoff_ms), limit],
                )?,
            ),
        ];
        let (tables, statements): (Vec<_>, Vec<_>) = statements.into_iter().unzip();
        let results = self.db.batch(statements).await?;
        Ok(tables
            .into_iter()
            .zip(results.iter().map(changes))
            .collect())
    }

    /// Inbound reports received before the cutoff whose message is final or
    /// gone (or that name none): `(id, body_key)`, at most the limit.
    pub async fn purgeable_reports(
        &self,
        plan: &PurgePlan,
    ) -> Result<Vec<(String, Option<String>)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            body_key: Option<String>,
        }
        let rows = self
            .prepare(
                "SELECT r.id, r.body_key FROM inbound_reports r WHERE r.received_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.message_id \
                   AND m.status NOT IN (SELECT value FROM json_each(?2))) \
                 ORDER BY r.received_at LIMIT ?3",
                &[
                    n(plan.cutoff_ms),
                    json_list(&PurgePlan::final_statuses()),
                    n(u64::from(plan.limit)),
                ],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows.into_iter().map(|r| (r.id, r.body_key)).collect())
    }

    /// Deletes reports by id; how many.
    pub async fn delete_reports(&self, ids: &[&str]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let result = self
            .prepare(
                "DELETE FROM inbound_reports WHERE id IN (SELECT value FROM json_each(?1))",
                &[json_list(ids)],
            )?
            .run()
            .await?;
        Ok(changes(&result))
    }

    /// Records one purge run.
    pub async fn record_purge(
        &self,
        plan: &PurgePlan,
        complete: bool,
        deleted: &Value,
    ) -> Result<()> {
        self.prepare(
            "INSERT INTO purge_runs (at, cutoff, complete, deleted) VALUES (?1, ?2, ?3, ?4)",
            &[
                n(plan.now_ms),
                n(plan.cutoff_ms),
                n(u64::from(complete)),
                s(&deleted.to_string()),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// The tenant's messages whose recipients, envelope sender or From
    /// contain `key` (lower-cased text; the core keeps those about it),
    /// oldest first, at most `limit`.
    pub async fn messages_mentioning(
        &self,
        tenant: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<Value>> {
        self.prepare(
            "SELECT id, key_id, status, mail_from, sender, rcpt_to, subject, stream, topic, tags, \
                    metadata, attempts, last_error, created_at, updated_at \
             FROM messages WHERE tenant = ?1 AND (instr(lower(rcpt_to), ?2) > 0 \
               OR instr(lower(mail_from), ?2) > 0 OR instr(lower(COALESCE(sender, '')), ?2) > 0) \
             ORDER BY created_at, id LIMIT ?3",
            &[s(tenant), s(key), n(u64::from(limit))],
        )?
        .all()
        .await?
        .results::<Value>()
    }

    /// The candidates of an export: the tenant's rows that may be about
    /// `key`, beside the messages already found (`ids`).
    pub async fn export_candidates(
        &self,
        tenant: &str,
        key: &str,
        hashed: &str,
        messages: Vec<Value>,
        ids: &[&str],
        limit: u32,
    ) -> Result<Candidates> {
        let lim = n(u64::from(limit));
        let recipients = self
            .prepare(
                "SELECT message_id, address, state, attempts, reply_code, enhanced_code, reply_text, \
                        updated_at FROM recipients \
                 WHERE message_id IN (SELECT value FROM json_each(?1)) LIMIT ?2",
                &[json_list(ids), lim.clone()],
            )?
            .all()
            .await?
            .results::<Value>()?;
        let events = self
            .prepare(
                "SELECT message_id, seq, at, kind, detail FROM events \
                 WHERE message_id IN (SELECT value FROM json_each(?1)) ORDER BY message_id, seq LIMIT ?2",
                &[json_list(ids), lim.clone()],
            )?
            .all()
            .await?
            .results::<Value>()?;
        let email_events = self
            .prepare(
                "SELECT id, message_id, recipient, type, created_at, payload FROM email_events \
                 WHERE tenant = ?1 AND (instr(lower(COALESCE(recipient, '')), ?2) > 0 \
                   OR message_id IN (SELECT value FROM json_each(?3))) \
                 ORDER BY created_at, id LIMIT ?4",
                &[s(tenant), s(key), json_list(ids), lim.clone()],
            )?
            .all()
            .await?
            .results::<Value>()?;
        let suppressions = self
            .prepare(
                "SELECT address, scope, reason, message_id, detail, created_at, expires_at \
                 FROM suppressions WHERE tenant = ?1 AND address IN (?2, ?3)",
                &[s(tenant), s(key), s(hashed)],
            )?
            .all()
            .await?
            .results::<Value>()?;
        let inbound_reports = self
            .prepare(
                "SELECT id, received_at, source, kind, verdict, reason, message_id, recipient, \
                        events, mail_from, rcpt_to, subject, size FROM inbound_reports \
                 WHERE tenant = ?1 AND (instr(lower(COALESCE(recipient, '')), ?2) > 0 \
                   OR instr(lower(COALESCE(rcpt_to, '')), ?2) > 0 \
                   OR instr(lower(COALESCE(mail_from, '')), ?2) > 0) \
                 ORDER BY received_at, id LIMIT ?3",
                &[s(tenant), s(key), lim],
            )?
            .all()
            .await?
            .results::<Value>()?;
        let full = |rows: &Vec<Value>| rows.len() >= limit as usize;
        let truncated =
            full(&recipients) || full(&events) || full(&email_events) || full(&inbound_reports);
        Ok(Candidates {
            messages,
            recipients,
            events,
            email_events,
            suppressions,
            inbound_reports,
            truncated,
        })
    }

    /// The tenant's reports whose text names `key` anywhere: `(id,
    /// body_key)`, at most `limit`.
    pub async fn reports_mentioning(
        &self,
        tenant: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<(String, Option<String>)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            body_key: Option<String>,
        }
        let rows = self
            .prepare(
                "SELECT id, body_key FROM inbound_reports WHERE tenant = ?1 AND ( \
                   instr(lower(COALESCE(recipient, '')), ?2) > 0 \
                   OR instr(lower(COALESCE(rcpt_to, '')), ?2) > 0 \
                   OR instr(lower(COALESCE(mail_from, '')), ?2) > 0 \
                   OR instr(lower(COALESCE(subject, '')), ?2) > 0 \
                   OR instr(lower(COALESCE(reason, '')), ?2) > 0) LIMIT ?3",
                &[s(tenant), s(key), n(u64::from(limit))],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows.into_iter().map(|r| (r.id, r.body_key)).collect())
    }

    /// Removes the tenant's plain entries for `key` (every scope); how many.
    pub async fn delete_plain_suppressions(&self, tenant: &str, key: &str) -> Result<u64> {
        let result = self
            .prepare(
                "DELETE FROM suppressions WHERE tenant = ?1 AND address = ?2",
                &[s(tenant), s(key)],
            )?
            .run()
            .await?;
        Ok(changes(&result))
    }

    /// For each table an erasure rewrites, the tenant's rows whose text
    /// contains `key` (at most `limit` per table); `key_ids` are the
    /// tenant's API keys.
    pub async fn rows_mentioning(
        &self,
        tenant: &str,
        key_ids: &[&str],
        key: &str,
        limit: u32,
    ) -> Result<Vec<ScrubRows>> {
        let mut found = Vec::new();
        for (table, columns, scope) in SCRUBBED {
            let owner = if table == "idempotency_keys" {
                json_list(key_ids)
            } else {
                s(tenant)
            };
            let matches: Vec<String> = columns
                .iter()
                .map(|c| format!("instr(lower(COALESCE({c}, '')), ?2) > 0"))
                .collect();
            let sql = format!(
                "SELECT rowid AS rid, {} FROM {table} WHERE {scope} AND ({}) LIMIT ?3",
                columns.join(", "),
                matches.join(" OR ")
            );
            let rows = self
                .prepare(&sql, &[owner, s(key), n(u64::from(limit))])?
                .all()
                .await?
                .results::<serde_json::Map<String, Value>>()?;
            let rows = rows
                .into_iter()
                .filter_map(|row| {
                    let rid = row.get("rid")?.as_f64()?;
                    let values = columns
                        .iter()
                        .map(|c| row.get(*c).and_then(Value::as_str).map(str::to_string))
                        .collect();
                    Some((rid, values))
                })
                .collect();
            found.push(ScrubRows { table, rows });
        }
        Ok(found)
    }

    /// Writes rewritten rows back, one statement per table; rows changed
    /// per table.
    pub async fn rewrite_rows(&self, tables: &[ScrubRows]) -> Result<Vec<(&'static str, u64)>> {
        let mut names = Vec::new();
        let mut statements = Vec::new();
        for t in tables.iter().filter(|t| !t.rows.is_empty()) {
            let Some((_, columns, _)) = SCRUBBED.iter().find(|(name, _, _)| *name == t.table)
            else {
                continue;
            };
            let sets: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = json_extract(j.value, '$[{}]')", i + 1))
                .collect();
            // OR REPLACE: two rows that differed only in the address's case
            // (recipients' key) become one.
            let sql = format!(
                "UPDATE OR REPLACE {table} SET {} FROM json_each(?1) j \
                 WHERE {table}.rowid = json_extract(j.value, '$[0]')",
                sets.join(", "),
                table = t.table
            );
            let rows: Vec<Value> = t
                .rows
                .iter()
                .map(|(rid, values)| {
                    let mut row = vec![Value::from(*rid as i64)];
                    row.extend(
                        values
                            .iter()
                            .map(|v| v.clone().map_or(Value::Null, Value::from)),
                    );
                    Value::Array(row)
                })
                .collect();
            names.push(t.table);
            statements.push(self.prepare(&sql, &[s(&Value::Array(rows).to_string())])?);
        }
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let results = self.db.batch(statements).await?;
        Ok(names.into_iter().zip(results.iter().map(changes)).collect())
    }
}
