//! Keys issued through `/v1/keys` (`api_keys`): storing one, finding one by
//! its digest, listing, revoking and rotating a tenant's keys.
//!
//! The table holds each key's SHA-256 and display prefix, never the key.
//! Every read and write the API makes names the caller's tenant; only the
//! authentication lookup reads by digest alone.
//! Must not: decide what a key may hold (`accept::issued_keys`) or cache a
//! key: a revoked key must be refused by the next request.

use worker::Result;

use crate::accept::issued_keys::{Grant, IssuedKeyRow, NewKey};

use super::{Db, n, opt_s, s};

const COLUMNS: &str = "id, tenant, name, prefix, scopes, domains, streams, unsubscribe_base_url, \
     limits, created_at, created_by, revoked_at, rotated_from";

/// A key to store: its id, its tenant, who issued it and when.
pub struct Issue<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    pub key: &'a NewKey,
    pub created_by: &'a str,
    pub now_ms: u64,
}

impl Db {
    /// The key whose digest is `sha256`, unless it was revoked by `now_ms`.
    pub async fn issued_key_by_digest(
        &self,
        sha256: &str,
        now_ms: u64,
    ) -> Result<Option<IssuedKeyRow>> {
        self.prepare(
            &format!(
                "SELECT {COLUMNS} FROM api_keys WHERE sha256 = ?1 \
                 AND (revoked_at IS NULL OR revoked_at > ?2)"
            ),
            &[s(sha256), n(now_ms)],
        )?
        .first::<IssuedKeyRow>(None)
        .await
    }

    /// Stores a new key with `grant`.
    pub async fn insert_issued_key(&self, issue: &Issue<'_>, grant: &Grant) -> Result<()> {
        let c = grant.columns();
        self.prepare(
            "INSERT INTO api_keys (id, tenant, name, sha256, prefix, scopes, domains, streams, \
               unsubscribe_base_url, limits, created_at, created_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            &[
                s(issue.id),
                s(issue.tenant),
                s(&grant.name),
                s(&issue.key.sha256),
                s(&issue.key.prefix),
                s(&c.scopes),
                s(&c.domains),
                s(&c.streams),
                opt_s(grant.unsubscribe_base_url.as_deref()),
                s(&c.limits),
                n(issue.now_ms),
                s(issue.created_by),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// How many of a tenant's issued keys are still in force at `now_ms`.
    pub async fn issued_keys_in_force(&self, tenant: &str, now_ms: u64) -> Result<usize> {
        let count = self
            .prepare(
                "SELECT COUNT(*) AS n FROM api_keys WHERE tenant = ?1 \
                 AND (revoked_at IS NULL OR revoked_at > ?2)",
                &[s(tenant), n(now_ms)],
            )?
            .first::<f64>(Some("n"))
            .await?;
        Ok(count.unwrap_or(0.0) as usize)
    }

    /// A tenant's issued keys, newest first, at most `limit`.
    pub async fn issued_keys_of(&self, tenant: &str, limit: usize) -> Result<Vec<IssuedKeyRow>> {
        self.prepare(
            &format!(
                "SELECT {COLUMNS} FROM api_keys WHERE tenant = ?1 \
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            ),
            &[s(tenant), n(limit as u64)],
        )?
        .all()
        .await?
        .results::<IssuedKeyRow>()
    }

    /// One of a tenant's issued keys.
    pub async fn issued_key(&self, tenant: &str, id: &str) -> Result<Option<IssuedKeyRow>> {
        self.prepare(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1 AND tenant = ?2"),
            &[s(id), s(tenant)],
        )?
        .first::<IssuedKeyRow>(None)
        .await
    }

    /// Revokes a tenant's key from `at_ms` on, unless it was to be refused
    /// sooner already.
    pub async fn revoke_issued_key(&self, tenant: &str, id: &str, at_ms: u64) -> Result<()> {
        self.prepare(
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND tenant = ?2 \
             AND (revoked_at IS NULL OR revoked_at > ?3)",
            &[s(id), s(tenant), n(at_ms)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Replaces a tenant's key `old_id` by `issue`, with the same settings,
    /// in one batch: the new key is stored only while the old one is still
    /// in force and has no successor, and the old one is refused from
    /// `old_revoked_at` on. The caller reads the new key back to learn
    /// whether it was stored.
    pub async fn rotate_issued_key(
        &self,
        old_id: &str,
        issue: &Issue<'_>,
        old_revoked_at: u64,
    ) -> Result<()> {
        let insert = self.prepare(
            "INSERT INTO api_keys (id, tenant, name, sha256, prefix, scopes, domains, streams, \
               unsubscribe_base_url, limits, created_at, created_by, rotated_from) \
             SELECT ?1, tenant, name, ?2, ?3, scopes, domains, streams, unsubscribe_base_url, \
               limits, ?4, ?5, id FROM api_keys \
             WHERE id = ?6 AND tenant = ?7 AND (revoked_at IS NULL OR revoked_at > ?4) \
               AND NOT EXISTS (SELECT 1 FROM api_keys WHERE rotated_from = ?6)",
            &[
                s(issue.id),
                s(&issue.key.sha256),
                s(&issue.key.prefix),
                n(issue.now_ms),
                s(issue.created_by),
                s(old_id),
                s(issue.tenant),
            ],
        )?;
        // Only when the insert above happened: the new key names the old.
        let revoke = self.prepare(
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND tenant = ?2 \
             AND (revoked_at IS NULL OR revoked_at > ?3) \
             AND EXISTS (SELECT 1 FROM api_keys WHERE id = ?4 AND rotated_from = ?1)",
            &[s(old_id), s(issue.tenant), n(old_revoked_at), s(issue.id)],
        )?;
        self.batch(vec![insert, revoke]).await
    }

    /// The ids of a tenant's issued keys (for erasure, which looks for rows
    /// keyed by a key id).
    pub async fn issued_key_ids_of(&self, tenant: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        Ok(self
            .prepare("SELECT id FROM api_keys WHERE tenant = ?1", &[s(tenant)])?
            .all()
            .await?
            .results::<Id>()?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }
}
