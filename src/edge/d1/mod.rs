//! The one handle on the D1 database, opened once per invocation, and all of
//! edgerelay's SQL, grouped by what it is about: messages and their events,
//! recipients, idempotency keys, delivery leases, upstream health, what the
//! reconciliation sweep reads, the views of stored messages, the event
//! stream, the tenants' suppression lists, and webhook endpoints,
//! deliveries and attempts, what comes back after the hand-off (with the
//! provider tokens already taken), retention and erasure, and the API keys
//! issued through `/v1/keys`, the reputation guard's records, and scheduled
//! messages' conditional writes.
//!
//! Owns the SQL and the conversion of values to and from D1. Must not decide
//! anything: callers (and the core values they carry) say what to write.
//! Statuses, states and event kinds are bound from their enums, never
//! written into the SQL.

pub mod api_keys;
pub mod domains;
mod email_events;
mod health;
mod keys;
mod leases;
mod messages;
pub mod privacy;
mod provider_tokens;
mod recipients;
mod reports;
mod reputation;
pub mod schedule;
mod stats;
mod suppressions;
mod sweep;
pub mod templates;
mod tracking;
mod unsubscribes;
mod views;
pub mod webhooks;

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use super::platform::DATABASE;

/// The database, as every edge function reaches it.
pub struct Db {
    db: D1Database,
    /// Diagnostics builds only (`FAULT_D1_OUTAGE`): every call fails until
    /// then (Unix ms), with this error.
    #[cfg(feature = "diagnostics")]
    outage: Option<(u64, String)>,
}

#[cfg(feature = "diagnostics")]
thread_local! {
    /// When the consumer's first batch arrived, for `FAULT_D1_OUTAGE`.
    static FIRST_BATCH_MS: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// Statements prepared in this isolate: reads (`SELECT`) and writes
    /// (everything else), for `GET /bench/d1` (diagnostics builds only).
    static STATEMENTS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    /// Batches run in this isolate, and the rows they read and wrote as
    /// D1's own result metadata counts them (index entries included).
    static BATCHES: std::cell::Cell<(u64, u64, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
}

/// What this isolate has asked of D1 so far, for `GET /bench/d1`.
#[cfg(feature = "diagnostics")]
pub fn counts() -> serde_json::Value {
    let (reads, writes) = STATEMENTS.with(std::cell::Cell::get);
    let (batches, rows_read, rows_written) = BATCHES.with(std::cell::Cell::get);
    serde_json::json!({
        "statements_read": reads,
        "statements_written": writes,
        "batches": batches,
        "batch_rows_read": rows_read,
        "batch_rows_written": rows_written,
    })
}

impl Db {
    /// Opens the binding; once per invocation, then passed along.
    pub fn open(env: &Env) -> Result<Db> {
        Ok(Db {
            db: env.d1(DATABASE)?,
            #[cfg(feature = "diagnostics")]
            outage: None,
        })
    }

    /// [`Db::open`] for the queue consumer, where a diagnostics build can
    /// fail every call for a while (`FAULT_D1_OUTAGE`).
    pub fn open_for_consumer(env: &Env) -> Result<Db> {
        #[cfg(feature = "diagnostics")]
        {
            use crate::diagnostics::d1_outage::{D1Outage, VAR};
            let value = env.var(VAR).ok().map(|v| v.to_string());
            let outage = D1Outage::parse(value.as_deref()).map(|o| {
                let now = super::platform::now_ms();
                let started = FIRST_BATCH_MS.with(|c| {
                    let started = c.get().unwrap_or(now);
                    c.set(Some(started));
                    started
                });
                (o.until_ms(started), o.error())
            });
            Ok(Db {
                outage,
                ..Db::open(env)?
            })
        }
        #[cfg(not(feature = "diagnostics"))]
        Db::open(env)
    }

    fn prepare(&self, sql: &str, values: &[JsValue]) -> Result<D1PreparedStatement> {
        #[cfg(feature = "diagnostics")]
        if let Some((until, error)) = &self.outage
            && super::platform::now_ms() < *until
        {
            return Err(worker::Error::RustError(error.clone()));
        }
        #[cfg(feature = "diagnostics")]
        STATEMENTS.with(|c| {
            let (reads, writes) = c.get();
            let read = sql
                .trim_start()
                .get(..6)
                .is_some_and(|v| v.eq_ignore_ascii_case("select"));
            c.set(if read {
                (reads + 1, writes)
            } else {
                (reads, writes + 1)
            });
        });
        self.db.prepare(sql).bind(values)
    }

    /// Runs statements as one atomic batch; nothing to do for none.
    async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<()> {
        if !statements.is_empty() {
            let _results = self.db.batch(statements).await?;
            #[cfg(feature = "diagnostics")]
            BATCHES.with(|c| {
                let (mut batches, mut read, mut written) = c.get();
                batches += 1;
                for meta in _results.iter().filter_map(|r| r.meta().ok().flatten()) {
                    read += meta.rows_read.unwrap_or(0) as u64;
                    written += meta.rows_written.unwrap_or(0) as u64;
                }
                c.set((batches, read, written));
            });
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
