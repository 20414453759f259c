//! `/v1/templates` at the edge (save a draft, import a SendGrid template as
//! one, publish, list, read, delete),
//! and filling a send request's `template` in before the send path reads it.
//!
//! Must not: check or render a template (`accept::templates`) or shape the
//! answers (`http::templates`).

use std::borrow::Cow;

use worker::{Env, Response};

use crate::accept::templates::{self, Template};
use crate::accept::{ApiError, AuthenticatedKey};
use crate::http::templates::{MAX_TEMPLATES, Stored, imported_view, list_view, view};

use super::d1::Db;
use super::d1::templates::TemplateRow;
use super::http::{self, internal};
use super::platform::now_ms;
use super::random;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no template {id} for this tenant"))
}

fn stored(row: TemplateRow) -> Result<Stored, ApiError> {
    let read = |json: &str| serde_json::from_str::<Template>(json).map_err(unreadable);
    Ok(Stored {
        draft: read(&row.draft)?,
        published: row.published.as_deref().map(read).transpose()?,
        id: row.id,
        created_at: row.created_at / 1000,
        updated_at: row.updated_at / 1000,
        published_at: row.published_at.map(|t| t / 1000),
    })
}

/// `POST /v1/templates`: saves a checked draft.
pub async fn create(env: &Env, key: &AuthenticatedKey, body: &[u8]) -> Result<Response, ApiError> {
    let template = templates::parse(body)?;
    let db = Db::open(env).map_err(internal)?;
    if db.template_count(&key.tenant).await.map_err(internal)? >= MAX_TEMPLATES {
        return Err(ApiError::conflict(
            "too_many_templates",
            "name",
            format!("a tenant keeps at most {MAX_TEMPLATES} templates: delete one first"),
        ));
    }
    let id = format!("tpl_{}", hex(&random::bytes::<12>()));
    let draft = serde_json::to_string(&template).map_err(unreadable)?;
    let now = now_ms();
    db.insert_template(&key.tenant, &id, template.name.trim(), &draft, now)
        .await
        .map_err(internal)?;
    let t = Stored::new_draft(id, template, now);
    http::json(201, &view(&t)).map_err(internal)
}

/// `POST /v1/templates/import`: a SendGrid dynamic template saved as a
/// draft. It keeps its SendGrid id (`tpl_<hex>` for `d-<hex>`) unless
/// another tenant's template has it; imported twice, it is a 409.
pub async fn import(env: &Env, key: &AuthenticatedKey, body: &[u8]) -> Result<Response, ApiError> {
    let imported = templates::import::parse_sendgrid(body)?;
    let db = Db::open(env).map_err(internal)?;
    if db.template_count(&key.tenant).await.map_err(internal)? >= MAX_TEMPLATES {
        return Err(ApiError::conflict(
            "too_many_templates",
            "name",
            format!("a tenant keeps at most {MAX_TEMPLATES} templates: delete one first"),
        ));
    }
    let template = imported.template;
    let draft = serde_json::to_string(&template).map_err(unreadable)?;
    let name = template.name.trim();
    let now = now_ms();
    let kept = match imported.id {
        Some(id) => {
            if db
                .template(&key.tenant, &id)
                .await
                .map_err(internal)?
                .is_some()
            {
                return Err(ApiError::conflict(
                    "template_exists",
                    "id",
                    format!("this template is already imported as {id}"),
                ));
            }
            db.insert_template_if_new(&key.tenant, &id, name, &draft, now)
                .await
                .map_err(internal)?
                .then_some(id)
        }
        None => None,
    };
    let id = match kept {
        Some(id) => id,
        None => {
            let id = format!("tpl_{}", hex(&random::bytes::<12>()));
            db.insert_template(&key.tenant, &id, name, &draft, now)
                .await
                .map_err(internal)?;
            id
        }
    };
    let t = Stored::new_draft(id, template, now);
    http::json(201, &imported_view(&t)).map_err(internal)
}

/// `GET /v1/templates`.
pub async fn list(env: &Env, key: &AuthenticatedKey) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let rows = db
        .templates(&key.tenant, MAX_TEMPLATES as u32)
        .await
        .map_err(internal)?;
    let all = rows
        .into_iter()
        .map(stored)
        .collect::<Result<Vec<_>, _>>()?;
    http::json(200, &list_view(&all)).map_err(internal)
}

/// `GET /v1/templates/{id}`.
pub async fn get(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let row = db.template(&key.tenant, id).await.map_err(internal)?;
    let t = stored(row.ok_or_else(|| not_found(id))?)?;
    http::json(200, &view(&t)).map_err(internal)
}

/// `POST /v1/templates/{id}/publish`: sends use the draft from now on.
pub async fn publish(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    if !db
        .publish_template(&key.tenant, id, now_ms())
        .await
        .map_err(internal)?
    {
        return Err(not_found(id));
    }
    get(env, key, id).await
}

/// `DELETE /v1/templates/{id}`.
pub async fn delete(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    if !db
        .delete_template(&key.tenant, id)
        .await
        .map_err(internal)?
    {
        return Err(not_found(id));
    }
    http::json(
        200,
        &serde_json::json!({"object": "template", "id": id, "deleted": true}),
    )
    .map_err(internal)
}

/// The send request with its `template` rendered in (one D1 read), or the
/// request as it came when it names none.
pub async fn fill_in<'b>(
    env: &Env,
    key: &AuthenticatedKey,
    body: &'b [u8],
) -> Result<Cow<'b, [u8]>, ApiError> {
    let Some(asked) = templates::requested(body)? else {
        return Ok(Cow::Borrowed(body));
    };
    let template = published(env, key, &asked.id).await?;
    let rendered = templates::render(&template, &asked.variables)?;
    templates::expand(body, rendered).map(Cow::Owned)
}

/// The published version of the tenant's template `id` (one D1 read); an
/// unknown or unpublished one is a 404 naming `template.id`, as any other
/// unknown resource a request names.
pub async fn published(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Template, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let row = db.template(&key.tenant, id).await.map_err(internal)?;
    let unknown = || {
        let mut e = ApiError::not_found(format!("no published template {id} for this tenant"));
        e.field = Some("template.id".into());
        e
    };
    let published = row.and_then(|r| r.published).ok_or_else(unknown)?;
    serde_json::from_str(&published).map_err(unreadable)
}

fn unreadable(e: serde_json::Error) -> ApiError {
    internal(worker::Error::SerdeJsonError(e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
