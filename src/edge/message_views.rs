//! `GET /v1/messages/{id}` and `GET /v1/messages`: what a key can see of its
//! own messages. Another key's message is indistinguishable from a missing one.
//!
//! Must not: change anything; reading only.

use serde_json::{Value, json};
use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::http::listing::{Cursor, parse_query};

use super::http::{self, internal};
use super::ledger::{Ledger, ListedRow, RecipientRow};
use super::platform::DATABASE;
use super::store::Store;

fn recipients_view(rcpt_to: &Value, rows: Vec<RecipientRow>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    // Recipients with no attempt yet are pending.
    for address in rcpt_to
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !rows.iter().any(|r| r.address.eq_ignore_ascii_case(address)) {
            out.push(
                json!({"address": address, "state": "pending", "attempts": 0,
                            "reply_code": null, "enhanced_code": null, "reply_text": null}),
            );
        }
    }
    for r in rows {
        out.push(json!({
            "address": r.address,
            "state": r.state,
            "attempts": r.attempts as u64,
            "reply_code": r.reply_code.map(|c| c as u64),
            "enhanced_code": r.enhanced_code,
            "reply_text": r.reply_text,
            "updated_at": r.updated_at as u64,
        }));
    }
    out
}

fn tags_view(tags: Option<&str>) -> Value {
    tags.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Object(Default::default()))
}

pub async fn detail(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = || env.d1(DATABASE).map_err(internal);
    let store = Store::new(db()?);
    let Some(record) = store.get(id, &key.id).await.map_err(internal)? else {
        return Err(ApiError::not_found(format!("no message {id} for this key")));
    };
    let ledger = Ledger::new(db()?);
    let rows = ledger.recipients(id).await.map_err(internal)?;
    let extras = ledger.extras(id).await.map_err(internal)?;
    let mut body = serde_json::to_value(&record).map_err(|e| internal(e.into()))?;
    body["recipients"] = Value::Array(recipients_view(&record.rcpt_to, rows));
    if let Some(x) = extras {
        body["next_attempt_at"] = json!(x.next_attempt_at.map(|t| t as u64));
        body["producer"] = json!(x.producer_id);
        body["tags"] = tags_view(x.tags.as_deref());
    }
    http::json(200, &body).map_err(internal)
}

fn summary(r: &ListedRow) -> Value {
    json!({
        "id": r.id,
        "status": r.status,
        "mail_from": r.mail_from,
        "rcpt_to": serde_json::from_str::<Value>(&r.rcpt_to).unwrap_or(Value::Null),
        "attempts": r.attempts as u64,
        "last_error": r.last_error,
        "created_at": r.created_at as u64,
        "updated_at": r.updated_at as u64,
        "next_attempt_at": r.next_attempt_at.map(|t| t as u64),
        "producer": r.producer_id,
        "tags": tags_view(r.tags.as_deref()),
    })
}

pub async fn list(
    env: &Env,
    key: &AuthenticatedKey,
    url: &worker::Url,
) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let query = parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let ledger = Ledger::new(env.d1(DATABASE).map_err(internal)?);
    let mut rows = ledger.list(&key.id, &query).await.map_err(internal)?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| {
            Cursor {
                created_at: r.created_at as u64,
                id: r.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    let data: Vec<Value> = rows.iter().map(summary).collect();
    http::json(200, &json!({"data": data, "next_cursor": next_cursor})).map_err(internal)
}
