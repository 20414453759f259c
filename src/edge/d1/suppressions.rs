//! The tenants' suppression lists (`suppressions`): reading the entries for
//! a batch's recipients, listing a tenant's page, adding entries (from the
//! API, or a settlement's hard bounces, in the settlement's own batch) and
//! removing them.
//!
//! Every statement names the tenant: no query reads or writes another
//! tenant's rows. Many entries are written by one statement over a JSON list
//! (`json_each`), so an add of a thousand is one query.
//! Must not: decide which entry applies or what a refusal adds
//! (`events::suppression`, `delivery::screen`).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::events::suppression::Entry;
use crate::http::suppressions::{EntryRow, ListQuery, Removal};

use super::{Db, n, opt_s, s};

impl Db {
    /// The entries of each `(tenant, address)` pair (addresses as the list
    /// keeps them), in one query; expired ones too (the core tells).
    pub async fn suppression_entries(&self, lookups: &[(String, String)]) -> Result<Vec<Entry>> {
        #[derive(Deserialize)]
        struct Row {
            tenant: String,
            #[serde(flatten)]
            entry: EntryRow,
        }
        if lookups.is_empty() {
            return Ok(Vec::new());
        }
        let pairs = serde_json::to_string(lookups).unwrap_or_else(|_| "[]".into());
        let rows = self
            .prepare(
                "SELECT tenant, address, scope, reason, message_id, detail, created_at, expires_at \
                 FROM suppressions WHERE (tenant, address) IN \
                 (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))",
                &[s(&pairs)],
            )?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.entry.entry(&r.tenant))
            .collect())
    }

    /// One page of `tenant`'s list, newest first (then by address and
    /// scope), with one row more than `limit` when another page follows.
    pub async fn list_suppressions(&self, tenant: &str, q: &ListQuery) -> Result<Vec<EntryRow>> {
        let (after_at, after_address, after_scope) = match &q.cursor {
            Some(c) => (n(c.created_at_ms), s(&c.address), s(&c.scope)),
            None => (
                wasm_bindgen::JsValue::NULL,
                wasm_bindgen::JsValue::NULL,
                wasm_bindgen::JsValue::NULL,
            ),
        };
        self.prepare(
            "SELECT address, scope, reason, message_id, detail, created_at, expires_at \
             FROM suppressions WHERE tenant = ?1 \
             AND (?2 IS NULL OR address = ?2) \
             AND (?3 IS NULL OR reason = ?3) \
             AND (?4 IS NULL OR scope = ?4) \
             AND (?5 IS NULL OR created_at < ?5 \
                  OR (created_at = ?5 AND (address > ?6 OR (address = ?6 AND scope > ?7)))) \
             ORDER BY created_at DESC, address ASC, scope ASC LIMIT ?8",
            &[
                s(tenant),
                opt_s(q.address.as_deref()),
                opt_s(q.reason.map(|r| r.as_str())),
                opt_s(q.scope.as_deref()),
                after_at,
                after_address,
                after_scope,
                n(u64::from(q.limit) + 1),
            ],
        )?
        .all()
        .await?
        .results::<EntryRow>()
    }

    /// Adds entries (one statement); an entry already there for the same
    /// tenant, address and scope is replaced.
    pub async fn add_suppressions(&self, entries: &[Entry]) -> Result<()> {
        if let Some(statement) = self.suppression_statement(entries)? {
            statement.run().await?;
        }
        Ok(())
    }

    /// Adds the entries the list does not have yet (an import: an entry
    /// already there for the same address and scope is left as it is), in
    /// statements of at most 1,000 entries, one after another (a failure
    /// part way is repaired by importing again); how many were added.
    pub async fn import_suppressions(&self, entries: &[Entry]) -> Result<usize> {
        let mut added = 0;
        for chunk in entries.chunks(1000) {
            let rows: Vec<serde_json::Value> = chunk
                .iter()
                .map(|e| {
                    serde_json::json!([
                        e.tenant,
                        e.address,
                        e.scope.as_stored(),
                        e.reason.as_str(),
                        e.detail,
                        e.created_at_ms,
                    ])
                })
                .collect();
            let result = self
                .prepare(
                    "INSERT INTO suppressions (tenant, address, scope, reason, detail, created_at) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                        json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                        json_extract(value, '$[4]'), json_extract(value, '$[5]') \
                 FROM json_each(?1) WHERE true \
                 ON CONFLICT (tenant, address, scope) DO NOTHING",
                    &[s(&serde_json::Value::Array(rows).to_string())],
                )?
                .run()
                .await?;
            added += result.meta()?.and_then(|m| m.changes).unwrap_or(0);
        }
        Ok(added)
    }

    /// Removes `tenant`'s entries for an address (one scope, or all);
    /// how many were removed.
    pub async fn remove_suppressions(&self, tenant: &str, removal: &Removal) -> Result<usize> {
        let result = self
            .prepare(
                "DELETE FROM suppressions WHERE tenant = ?1 AND address = ?2 \
                 AND (?3 IS NULL OR scope = ?3)",
                &[
                    s(tenant),
                    s(&removal.address),
                    opt_s(removal.scope.as_deref()),
                ],
            )?
            .run()
            .await?;
        Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0))
    }

    /// The upsert of `entries`, for a batch of its own or a settlement's;
    /// `None` for none.
    pub(super) fn suppression_statement(
        &self,
        entries: &[Entry],
    ) -> Result<Option<D1PreparedStatement>> {
        if entries.is_empty() {
            return Ok(None);
        }
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!([
                    e.tenant,
                    e.address,
                    e.scope.as_stored(),
                    e.reason.as_str(),
                    e.message_id,
                    e.detail,
                    e.created_at_ms,
                    e.expires_at_ms,
                ])
            })
            .collect();
        let rows = serde_json::Value::Array(rows).to_string();
        // `WHERE true` keeps SQLite from reading ON CONFLICT as a join's.
        self.prepare(
            "INSERT INTO suppressions \
             (tenant, address, scope, reason, message_id, detail, created_at, expires_at) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                    json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
                    json_extract(value, '$[6]'), json_extract(value, '$[7]') \
             FROM json_each(?1) WHERE true \
             ON CONFLICT (tenant, address, scope) DO UPDATE SET \
               reason = excluded.reason, message_id = excluded.message_id, \
               detail = excluded.detail, created_at = excluded.created_at, \
               expires_at = excluded.expires_at",
            &[s(&rows)],
        )
        .map(Some)
    }
}
