//! Stored templates (`templates`): saving a draft, publishing it, reading,
//! listing and deleting a tenant's templates.
//!
//! Every statement names the caller's tenant: a template of another tenant
//! is not found. Must not: check a template's content (`accept::templates`).

use serde::Deserialize;
use worker::Result;

use super::{Db, n, s};

/// One stored template, as the table holds it.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub draft: String,
    pub published: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    pub published_at: Option<u64>,
}

const COLUMNS: &str = "id, name, draft, published, created_at, updated_at, published_at";

impl Db {
    /// Stores a new draft.
    pub async fn insert_template(
        &self,
        tenant: &str,
        id: &str,
        name: &str,
        draft: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.prepare(
            "INSERT INTO templates (id, tenant, name, draft, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            &[s(id), s(tenant), s(name), s(draft), n(now_ms)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Stores a new draft under `id` unless that id is taken (by this
    /// tenant or another); whether it was stored.
    pub async fn insert_template_if_new(
        &self,
        tenant: &str,
        id: &str,
        name: &str,
        draft: &str,
        now_ms: u64,
    ) -> Result<bool> {
        let result = self
            .prepare(
                "INSERT INTO templates (id, tenant, name, draft, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (id) DO NOTHING",
                &[s(id), s(tenant), s(name), s(draft), n(now_ms)],
            )?
            .run()
            .await?;
        Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    /// How many templates a tenant has.
    pub async fn template_count(&self, tenant: &str) -> Result<usize> {
        let count = self
            .prepare(
                "SELECT COUNT(*) AS c FROM templates WHERE tenant = ?1",
                &[s(tenant)],
            )?
            .first::<f64>(Some("c"))
            .await?;
        Ok(count.unwrap_or(0.0) as usize)
    }

    /// One of a tenant's templates.
    pub async fn template(&self, tenant: &str, id: &str) -> Result<Option<TemplateRow>> {
        self.prepare(
            &format!("SELECT {COLUMNS} FROM templates WHERE tenant = ?1 AND id = ?2"),
            &[s(tenant), s(id)],
        )?
        .first::<TemplateRow>(None)
        .await
    }

    /// A tenant's templates, newest first, at most `limit`.
    pub async fn templates(&self, tenant: &str, limit: u32) -> Result<Vec<TemplateRow>> {
        self.prepare(
            &format!(
                "SELECT {COLUMNS} FROM templates WHERE tenant = ?1 \
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            ),
            &[s(tenant), n(u64::from(limit))],
        )?
        .all()
        .await?
        .results::<TemplateRow>()
    }

    /// Publishes the draft: sends use it from now on. `false` when there is
    /// no such template.
    pub async fn publish_template(&self, tenant: &str, id: &str, now_ms: u64) -> Result<bool> {
        let result = self
            .prepare(
                "UPDATE templates SET published = draft, published_at = ?3, updated_at = ?3 \
                 WHERE tenant = ?1 AND id = ?2",
                &[s(tenant), s(id), n(now_ms)],
            )?
            .run()
            .await?;
        Ok(changed(&result))
    }

    /// Deletes a template. `false` when there is no such template.
    pub async fn delete_template(&self, tenant: &str, id: &str) -> Result<bool> {
        let result = self
            .prepare(
                "DELETE FROM templates WHERE tenant = ?1 AND id = ?2",
                &[s(tenant), s(id)],
            )?
            .run()
            .await?;
        Ok(changed(&result))
    }
}

fn changed(result: &worker::D1Result) -> bool {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
        > 0
}
