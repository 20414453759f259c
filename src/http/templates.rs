//! The shapes of `/v1/templates`: a stored template as the API shows it,
//! and the list.
//!
//! Must not: check a template's content (`accept::templates`) or store it.

use serde_json::{Value, json};

use crate::accept::templates::Template;

/// The most templates a tenant may keep, and the most one list shows.
pub const MAX_TEMPLATES: usize = 500;

/// A stored template: its draft, and the version sends use once published.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub draft: Template,
    pub published: Option<Template>,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    pub published_at: Option<u64>,
}

impl Stored {
    /// A template just saved as a draft at `now_ms`.
    pub fn new_draft(id: String, draft: Template, now_ms: u64) -> Self {
        Self {
            id,
            draft,
            published: None,
            created_at: now_ms / 1000,
            updated_at: now_ms / 1000,
            published_at: None,
        }
    }

    /// `draft` until published; sends take only a published template.
    fn status(&self) -> &'static str {
        if self.published.is_some() {
            "published"
        } else {
            "draft"
        }
    }
}

/// A template as `GET /v1/templates/{id}` and the other routes answer it.
pub fn view(t: &Stored) -> Value {
    json!({
        "object": "template",
        "id": t.id,
        "name": t.draft.name,
        "status": t.status(),
        "subject": t.draft.subject,
        "html": t.draft.html,
        "text": t.draft.text,
        "variables": t.draft.variables,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "published_at": t.published_at,
    })
}

/// `POST /v1/templates/import`'s answer: the template, and the id
/// SendGrid's SDKs send it by (`d-<hex>`: they send `dynamic_template_data`
/// only for such an id).
pub fn imported_view(t: &Stored) -> Value {
    let mut v = view(t);
    v["sendgrid_template_id"] = json!(crate::accept::templates::import::sendgrid_id(&t.id));
    v
}

/// The list: newest first, without the bodies.
pub fn list_view(templates: &[Stored]) -> Value {
    let data: Vec<Value> = templates
        .iter()
        .map(|t| {
            json!({
                "object": "template",
                "id": t.id,
                "name": t.draft.name,
                "status": t.status(),
                "created_at": t.created_at,
                "updated_at": t.updated_at,
                "published_at": t.published_at,
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}
