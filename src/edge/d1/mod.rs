//! The one handle on the D1 database, opened once per invocation, and all of
//! edgerelay's SQL, grouped by what it is about: messages and their events,
//! recipients, idempotency keys, delivery leases, upstream health, what the
//! reconciliation sweep reads, and the views of stored messages.
//!
//! Owns the SQL and the conversion of values to and from D1. Must not decide
//! anything: callers (and the core values they carry) say what to write.
//! Statuses, states and event kinds are bound from their enums, never
//! written into the SQL.

mod health;
mod keys;
mod leases;
mod messages;
mod recipients;
mod sweep;
mod views;

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use super::platform::DATABASE;

/// The database, as every edge function reaches it.
pub struct Db {
    db: D1Database,
}

impl Db {
    /// Opens the binding; once per invocation, then passed along.
    pub fn open(env: &Env) -> Result<Db> {
        Ok(Db {
            db: env.d1(DATABASE)?,
        })
    }

    fn prepare(&self, sql: &str, values: &[JsValue]) -> Result<D1PreparedStatement> {
        self.db.prepare(sql).bind(values)
    }

    /// Runs statements as one atomic batch; nothing to do for none.
    async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<()> {
        if !statements.is_empty() {
            self.db.batch(statements).await?;
        }
        Ok(())
    }
}

// Values bound to statements: D1 takes JS values, numbers as f64 and absent
// values as NULL.

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn n(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

fn opt_s(v: Option<&str>) -> JsValue {
    v.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

fn opt_n(v: Option<u64>) -> JsValue {
    v.map(n).unwrap_or(JsValue::NULL)
}

/// A list of values as the JSON text `json_each(?)` reads, for `IN` queries.
fn json_list(values: &[&str]) -> JsValue {
    s(&serde_json::to_string(values).unwrap_or_else(|_| "[]".into()))
}
