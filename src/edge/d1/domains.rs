//! Sending domains added through `/v1/domains` (`domains`) and their keys
//! (`domain_keys`): storing, listing, reading, verifying and deleting them.
//!
//! Every read and write names the caller's tenant. A key's private half is
//! written and read only in its sealed form.
//! Must not: seal or open keys (`edge::domains`), or decide a domain's
//! status (`http::domains::verify`).

use serde::Deserialize;
use worker::Result;

use super::{Db, n, opt_n, s};

/// One stored domain.
#[derive(Debug, Clone, Deserialize)]
pub struct DomainRow {
    pub domain: String,
    pub tenant: String,
    pub created_at: f64,
    pub status: String,
    pub verified_at: Option<f64>,
    pub report: Option<String>,
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

const DOMAIN_COLUMNS: &str = "domain, tenant, created_at, status, verified_at, report";

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
    pub async fn record_verification(
        &self,
        tenant: &str,
        domain: &str,
        verified: bool,
        report: &str,
        now_ms: u64,
    ) -> Result<()> {
        let status = if verified { "verified" } else { "pending" };
        self.prepare(
            "UPDATE domains SET status = ?3, report = ?4, checked_at = ?5, \
               verified_at = CASE WHEN ?6 IS NULL THEN verified_at ELSE ?6 END \
             WHERE tenant = ?1 AND domain = ?2",
            &[
                s(tenant),
                s(domain),
                s(status),
                s(report),
                n(now_ms),
                opt_n(verified.then_some(now_ms)),
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
