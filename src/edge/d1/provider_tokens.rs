//! The one-time tokens of signed provider requests already taken
//! (`provider_tokens`): Mailgun's, kept for as long as their signature is
//! fresh.
//!
//! Must not: decide how long a token is kept (the caller passes the cut-off).

use worker::Result;

use super::{Db, n, s};

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
        let results = self
            .db
            .batch(vec![
                self.prepare(
                    "DELETE FROM provider_tokens WHERE seen_at < ?1",
                    &[n(forget_before_ms)],
                )?,
                self.prepare(
                    "INSERT INTO provider_tokens (endpoint, token, seen_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (endpoint, token) DO NOTHING",
                    &[s(endpoint), s(token), n(now_ms)],
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

    /// Gives `token` back, when the request it came with could not be
    /// handled: the provider's retry carries the same token.
    pub async fn release_provider_token(&self, endpoint: &str, token: &str) -> Result<()> {
        self.prepare(
            "DELETE FROM provider_tokens WHERE endpoint = ?1 AND token = ?2",
            &[s(endpoint), s(token)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
