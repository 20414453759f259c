//! What the provider event receivers have already taken: the one-time
//! tokens of signed requests (`provider_tokens`: Mailgun's, kept for as
//! long as their signature is fresh) and the keys of events applied
//! (`provider_events_seen`, so a provider's retry emits nothing twice).
//!
//! Must not: decide how long anything is kept (the caller passes the
//! cut-off) or what makes two events the same.

use worker::Result;

use super::{Db, n, s};

/// The two tables and their key column; never caller input.
const TOKENS: (&str, &str) = ("provider_tokens", "token");
const EVENTS: (&str, &str) = ("provider_events_seen", "event_key");

impl Db {
    /// Takes `token` for `endpoint`: `true` the first time, `false` when it
    /// was seen before. Tokens seen before `forget_before_ms` are dropped
    /// first: their signatures are stale by now.
    pub async fn claim_provider_token(
        &self,
        endpoint: &str,
        token: &str,
        now_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool> {
        self.claim(TOKENS, endpoint, token, now_ms, forget_before_ms)
            .await
    }

    /// Gives `token` back, when the request it came with could not be
    /// handled: the provider's retry carries the same token.
    pub async fn release_provider_token(&self, endpoint: &str, token: &str) -> Result<()> {
        self.release(TOKENS, endpoint, token).await
    }

    /// Takes an event's key for `endpoint`: `false` when that event was
    /// applied before (since `forget_before_ms`).
    pub async fn claim_provider_event(
        &self,
        endpoint: &str,
        key: &str,
        now_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool> {
        self.claim(EVENTS, endpoint, key, now_ms, forget_before_ms)
            .await
    }

    /// Gives an event's key back, when applying it failed.
    pub async fn release_provider_event(&self, endpoint: &str, key: &str) -> Result<()> {
        self.release(EVENTS, endpoint, key).await
    }

    async fn claim(
        &self,
        (table, column): (&str, &str),
        endpoint: &str,
        value: &str,
        now_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool> {
        let results = self
            .db
            .batch(vec![
                self.prepare(
                    &format!("DELETE FROM {table} WHERE seen_at < ?1"),
                    &[n(forget_before_ms)],
                )?,
                self.prepare(
                    &format!(
                        "INSERT INTO {table} (endpoint, {column}, seen_at) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (endpoint, {column}) DO NOTHING"
                    ),
                    &[s(endpoint), s(value), n(now_ms)],
                )?,
            ])
            .await?;
        let inserted = results
            .get(1)
            .map(|r| r.meta())
            .transpose()?
            .flatten()
            .and_then(|m| m.changes)
            .unwrap_or(0);
        Ok(inserted > 0)
    }

    async fn release(
        &self,
        (table, column): (&str, &str),
        endpoint: &str,
        value: &str,
    ) -> Result<()> {
        self.prepare(
            &format!("DELETE FROM {table} WHERE endpoint = ?1 AND {column} = ?2"),
            &[s(endpoint), s(value)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
