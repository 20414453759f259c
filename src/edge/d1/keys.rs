//! Idempotency keys (`idempotency_keys`): claiming one for a request, its
//! remembered answer, and giving it back.
//!
//! The primary key decides which of two concurrent claims wins, and a key is
//! given back only while it has no answer, so a remembered answer is never lost.
//! Must not: decide what a key means (the window, fingerprints, replays are
//! `accept::idempotency`'s).

use serde::Deserialize;
use worker::Result;

use crate::accept::idempotency::{ClaimCutoffs, StoredKey};

use super::{Db, n, s};

#[derive(Deserialize)]
struct KeyRow {
    fingerprint: String,
    response_status: Option<f64>,
    response_body: Option<String>,
}

impl Db {
    /// Claims a key for this request. True when this request holds it now
    /// (a new key, one older than the window, or one whose request died
    /// without an answer: `accept::idempotency::may_claim`, applied here in
    /// one statement); false when another request does. The primary key
    /// decides concurrent claims.
    pub async fn claim_key(
        &self,
        key_id: &str,
        key: &str,
        fingerprint: &str,
        now_ms: u64,
        cutoffs: &ClaimCutoffs,
    ) -> Result<bool> {
        let won = self
            .prepare(
                "INSERT INTO idempotency_keys (key_id, idempotency_key, fingerprint, created_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (key_id, idempotency_key) DO UPDATE SET \
                   fingerprint = excluded.fingerprint, created_at = excluded.created_at, \
                   response_status = NULL, response_body = NULL \
                 WHERE idempotency_keys.created_at < ?5 \
                    OR (idempotency_keys.response_status IS NULL \
                        AND idempotency_keys.created_at < ?6) \
                 RETURNING created_at",
                &[
                    s(key_id),
                    s(key),
                    s(fingerprint),
                    n(now_ms),
                    n(cutoffs.expired_before),
                    n(cutoffs.abandoned_before),
                ],
            )?
            .first::<f64>(Some("created_at"))
            .await?;
        Ok(won.is_some())
    }

    pub async fn read_key(&self, key_id: &str, key: &str) -> Result<Option<StoredKey>> {
        let row = self
            .prepare(
                "SELECT fingerprint, response_status, response_body FROM idempotency_keys \
                 WHERE key_id = ?1 AND idempotency_key = ?2",
                &[s(key_id), s(key)],
            )?
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
        self.prepare(
            "UPDATE idempotency_keys SET response_status = ?3, response_body = ?4 \
             WHERE key_id = ?1 AND idempotency_key = ?2",
            &[s(key_id), s(key), n(u64::from(status)), s(body)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Gives a key back after a failed request, so the caller's retry runs.
    pub async fn release_key(&self, key_id: &str, key: &str) -> Result<()> {
        self.prepare(
            "DELETE FROM idempotency_keys WHERE key_id = ?1 AND idempotency_key = ?2 \
             AND response_status IS NULL",
            &[s(key_id), s(key)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
