//! Sending domains added through `/v1/domains` (`domains`) and their keys
//! (`domain_keys`): storing, listing, reading, verifying and deleting them.
//!
//! Every read and write names the caller's tenant. A key's private half is
//! written and read only in its sealed form.
//! Must not: seal or open keys (`edge::domains`), or decide a domain's
//! status (`http::domains::verify`).

use serde::Deserialize;
use worker::Result;

use crate::http::domains::rotation::Generations;

use super::{Db, n, opt_n, opt_s, s};

/// One stored domain.
#[derive(Debug, Clone, Deserialize)]
pub struct DomainRow {
    pub domain: String,
    pub tenant: String,
    pub created_at: f64,
    pub status: String,
    pub verified_at: Option<f64>,
    pub checked_at: Option<f64>,
    pub report: Option<String>,
    pub signing_generation: f64,
    pub next_generation: Option<f64>,
    pub previous_generation: Option<f64>,
    pub switched_at: Option<f64>,
}

impl DomainRow {
    /// The generations of its keys, as `http::domains::rotation` reads them.
    pub fn generations(&self) -> Generations {
        Generations {
            signing: self.signing_generation as u32,
            next: self.next_generation.map(|g| g as u32),
            previous: self
                .previous_generation
                .zip(self.switched_at)
                .map(|(g, at)| (g as u32, at as u64)),
        }
    }
}

/// One stored key: its public record and its sealed private half.
#[derive(Debug, Clone, Deserialize)]
pub struct DomainKeyRow {
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub public_record: String,
    pub sealed_key: String,
}

/// A key to store.
pub struct NewDomainKey<'a> {
    pub selector: &'a str,
    pub algorithm: &'a str,
    pub public_record: &'a str,
    pub sealed_key: &'a str,
}

const DOMAIN_COLUMNS: &str = "domain, tenant, created_at, status, verified_at, checked_at, report, \
     signing_generation, next_generation, previous_generation, switched_at";

impl Db {
    /// Stores a new domain and its keys at once; `false` when the domain
    /// is already stored (by any tenant).
    pub async fn insert_domain(
        &self,
        domain: &str,
        tenant: &str,
        created_by: &str,
        keys: &[NewDomainKey<'_>],
        now_ms: u64,
    ) -> Result<bool> {
        if self.domain_row(domain).await?.is_some() {
            return Ok(false);
        }
        let mut statements = vec![self.prepare(
            "INSERT INTO domains (domain, tenant, created_at, created_by, status) \
             VALUES (?1, ?2, ?3, ?4, 'pending')",
            &[s(domain), s(tenant), n(now_ms), s(created_by)],
        )?];
        for key in keys {
            statements.push(self.prepare(
                "INSERT INTO domain_keys (domain, selector, algorithm, public_record, sealed_key, \
                   created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[
                    s(domain),
                    s(key.selector),
                    s(key.algorithm),
                    s(key.public_record),
                    s(key.sealed_key),
                    n(now_ms),
                ],
            )?);
        }
        self.batch(statements).await?;
        Ok(true)
    }

    async fn domain_row(&self, domain: &str) -> Result<Option<DomainRow>> {
        self.prepare(
            &format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE domain = ?1"),
            &[s(domain)],
        )?
        .first::<DomainRow>(None)
        .await
    }

    /// The tenant's domain, if it has it.
    pub async fn domain(&self, tenant: &str, domain: &str) -> Result<Option<DomainRow>> {
        Ok(self
            .domain_row(domain)
            .await?
            .filter(|row| row.tenant == tenant))
    }

    /// The tenant's domains, oldest first.
    pub async fn domains_of(&self, tenant: &str, limit: usize) -> Result<Vec<DomainRow>> {
        self.prepare(
            &format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains WHERE tenant = ?1 \
                 ORDER BY created_at, domain LIMIT ?2"
            ),
            &[s(tenant), n(limit as u64)],
        )?
        .all()
        .await?
        .results::<DomainRow>()
    }

    /// A domain's keys, by selector.
    pub async fn domain_keys(&self, domain: &str) -> Result<Vec<DomainKeyRow>> {
        self.prepare(
            "SELECT domain, selector, algorithm, public_record, sealed_key FROM domain_keys \
             WHERE domain = ?1 ORDER BY selector",
            &[s(domain)],
        )?
        .all()
        .await?
        .results::<DomainKeyRow>()
    }

    /// Records a verification: its report, and the status it gives.
    /// `status` `None` keeps the stored status (a failed re-verification on
    /// the cron trigger warns; it does not stop the domain's mail).
    pub async fn record_verification(
        &self,
        tenant: &str,
        domain: &str,
        status: Option<&str>,
        report: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        let verified = status == Some("verified");
        self.prepare(
            "UPDATE domains SET status = COALESCE(?3, status), report = COALESCE(?4, report), \
               checked_at = ?5, \
               verified_at = CASE WHEN ?6 IS NULL THEN verified_at ELSE ?6 END \
             WHERE tenant = ?1 AND domain = ?2",
            &[
                s(tenant),
                s(domain),
                opt_s(status),
                opt_s(report),
                n(now_ms),
                opt_n(verified.then_some(now_ms)),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// The domains whose last check is older than `checked_before` (or
    /// never made), the oldest check first.
    pub async fn domains_due(&self, checked_before: u64, limit: usize) -> Result<Vec<DomainRow>> {
        self.prepare(
            &format!(
                "SELECT {DOMAIN_COLUMNS} FROM domains \
                 WHERE checked_at IS NULL OR checked_at <= ?1 \
                 ORDER BY checked_at IS NOT NULL, checked_at, domain LIMIT ?2"
            ),
            &[n(checked_before), n(limit as u64)],
        )?
        .all()
        .await?
        .results::<DomainRow>()
    }

    /// Starts a rotation in one batch: names the next generation, deletes
    /// the retired keys (`retired` selectors) and stores the next
    /// generation's keys. A rotation that started first makes it fail (the
    /// keys' primary key), so nothing of it is kept.
    pub async fn start_rotation(
        &self,
        tenant: &str,
        domain: &str,
        next: u32,
        keys: &[NewDomainKey<'_>],
        retired: &[String],
        now_ms: u64,
    ) -> Result<()> {
        let mut statements = vec![self.prepare(
            "UPDATE domains SET next_generation = ?3, previous_generation = NULL, \
               switched_at = NULL \
             WHERE tenant = ?1 AND domain = ?2 AND next_generation IS NULL",
            &[s(tenant), s(domain), n(u64::from(next))],
        )?];
        for selector in retired {
            statements.push(self.prepare(
                "DELETE FROM domain_keys WHERE domain = ?1 AND selector = ?2",
                &[s(domain), s(selector)],
            )?);
        }
        for key in keys {
            statements.push(self.prepare(
                "INSERT INTO domain_keys (domain, selector, algorithm, public_record, \
                   sealed_key, created_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS \
                   (SELECT 1 FROM domains WHERE domain = ?1 AND tenant = ?7 \
                    AND next_generation = ?8)",
                &[
                    s(domain),
                    s(key.selector),
                    s(key.algorithm),
                    s(key.public_record),
                    s(key.sealed_key),
                    n(now_ms),
                    s(tenant),
                    n(u64::from(next)),
                ],
            )?);
        }
        self.batch(statements).await
    }

    /// Switches to the next generation: it signs from now on, the old one
    /// is rotated out at `now_ms`.
    pub async fn switch_generation(
        &self,
        tenant: &str,
        domain: &str,
        to: Generations,
        now_ms: u64,
    ) -> Result<()> {
        let Some((old, _)) = to.previous else {
            return Ok(());
        };
        self.prepare(
            "UPDATE domains SET signing_generation = ?3, next_generation = NULL, \
               previous_generation = ?4, switched_at = ?5 \
             WHERE tenant = ?1 AND domain = ?2 AND next_generation = ?3",
            &[
                s(tenant),
                s(domain),
                n(u64::from(to.signing)),
                n(u64::from(old)),
                n(now_ms),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Deletes the tenant's domain and its keys.
    pub async fn delete_domain(&self, tenant: &str, domain: &str) -> Result<()> {
        self.batch(vec![
            self.prepare(
                "DELETE FROM domain_keys WHERE domain = ?2 \
                 AND EXISTS (SELECT 1 FROM domains WHERE domain = ?2 AND tenant = ?1)",
                &[s(tenant), s(domain)],
            )?,
            self.prepare(
                "DELETE FROM domains WHERE tenant = ?1 AND domain = ?2",
                &[s(tenant), s(domain)],
            )?,
        ])
        .await
    }
}
