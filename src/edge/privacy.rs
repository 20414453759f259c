//! Retention and the privacy routes, carried out: the purge the cron trigger
//! runs, `GET /v1/privacy/export` and `DELETE /v1/privacy/data`.
//!
//! The purge deletes, in bounded batches, the final messages that
//! `events::retention` says are due with everything about them, the other
//! tables' rows by age, and the bucket objects of what it deleted; it records
//! the run in `purge_runs` and one `retention.purge` log line. The routes
//! read candidates (scoped to the caller's tenant), keep what
//! `http::privacy` and `events::erasure` say, and write it.
//! Must not: decide what is due, which rows are about an address or what
//! replaces it; or log an address (log lines carry counts only).

use std::collections::BTreeSet;

use worker::{Env, Response, Url};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::events::erasure::{deleted_whole, erased_entry, placeholder, scrub_row};
use crate::events::log_line::LogValue;
use crate::events::retention::{PurgeCounts, PurgePlan, RetentionSettings};
use crate::events::suppression::erased_address;
use crate::http::privacy::{
    Erased, MAX_MESSAGES, MAX_ROWS, erased, export as export_view, message_ids, parse_email_query,
};
use crate::queue::body::body_key;

use super::d1::Db;
use super::http::{self, internal};
use super::log;
use super::platform::{BODIES_BUCKET, now_ms};

/// Deletes bucket objects, best effort (a leftover costs storage, never a
/// wrong delivery; the next run or a bucket lifecycle rule gets it); how
/// many deletions were asked for.
async fn delete_objects(env: &Env, keys: Vec<String>) -> u64 {
    if keys.is_empty() {
        return 0;
    }
    let count = keys.len() as u64;
    let deleted = match env.bucket(BODIES_BUCKET) {
        Ok(bucket) => bucket.delete_multiple(keys).await,
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => count,
        Err(e) => {
            log::warn(
                "could_not_delete_stored_bodies",
                &[
                    ("count", LogValue::Num(count)),
                    ("error", LogValue::Text(&e.to_string())),
                ],
            );
            0
        }
    }
}

/// One purge run (from the cron trigger). Errors end the run early; what it
/// deleted until then is still recorded.
pub async fn purge(env: &Env, db: &Db, settings: RetentionSettings) {
    let plan = PurgePlan::at(&settings, now_ms());
    let mut counts = PurgeCounts::default();
    let result = purge_steps(env, db, &plan, &mut counts).await;
    let complete = result.is_ok() && !counts.reached_limit(plan.limit);
    if let Err(e) = &result {
        log::error_because("purge_stopped_early", &e);
    }
    // A run that found nothing is not recorded (the cron runs often).
    if (counts.total() > 0 || !complete)
        && let Err(e) = db.record_purge(&plan, complete, &counts.to_json()).await
    {
        log::warn_because("could_not_record_the_purge_run", &e);
    }
    log::built(&counts.log_line(&plan, complete));
}

async fn purge_steps(
    env: &Env,
    db: &Db,
    plan: &PurgePlan,
    counts: &mut PurgeCounts,
) -> worker::Result<()> {
    let due: Vec<String> = db
        .purge_candidates(plan)
        .await?
        .into_iter()
        .filter(|(_, status, has_job, updated)| plan.message_due(status, *has_job, *updated))
        .map(|(id, ..)| id)
        .collect();
    let ids: Vec<&str> = due.iter().map(String::as_str).collect();
    let (deleted, report_keys) = db.delete_messages(&ids).await?;
    for (table, n) in deleted {
        counts.add(table, n);
    }
    // Message bodies are deleted when the message settles; asking again
    // for the purged ones makes sure none outlives its message.
    let mut keys: Vec<String> = ids.iter().map(|id| body_key(id)).collect();
    keys.extend(report_keys);
    counts.objects += delete_objects(env, keys).await;
    let reports = db.purgeable_reports(plan).await?;
    let report_ids: Vec<&str> = reports.iter().map(|(id, _)| id.as_str()).collect();
    let report_keys: Vec<String> = reports.iter().filter_map(|(_, k)| k.clone()).collect();
    counts.objects += delete_objects(env, report_keys).await;
    counts.add("inbound_reports", db.delete_reports(&report_ids).await?);
    for (table, n) in db.purge_by_age(plan).await? {
        counts.add(table, n);
    }
    Ok(())
}

fn email_of(url: &Url) -> Result<String, ApiError> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    parse_email_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// `GET /v1/privacy/export?email=`.
pub async fn export(env: &Env, key: &AuthenticatedKey, url: &Url) -> Result<Response, ApiError> {
    let email = email_of(url)?;
    let db = Db::open(env).map_err(internal)?;
    let tenant = &key.tenant;
    let messages = db
        .messages_mentioning(tenant, &email, MAX_MESSAGES)
        .await
        .map_err(internal)?;
    let more_messages = messages.len() >= MAX_MESSAGES as usize;
    let ids: Vec<String> = message_ids(&messages, &email).into_iter().collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let hashed = erased_address(tenant, &email);
    let mut candidates = db
        .export_candidates(tenant, &email, &hashed, messages, &id_refs, MAX_ROWS)
        .await
        .map_err(internal)?;
    candidates.truncated |= more_messages;
    http::json(200, &export_view(tenant, &email, candidates)).map_err(internal)
}

/// `DELETE /v1/privacy/data?email=`; `key_ids` are the ids of every API key
/// of the caller's tenant (idempotency keys are kept per key).
pub async fn erase(
    env: &Env,
    key: &AuthenticatedKey,
    key_ids: &[&str],
    url: &Url,
) -> Result<Response, ApiError> {
    let email = email_of(url)?;
    let db = Db::open(env).map_err(internal)?;
    let tenant = &key.tenant;
    let now = now_ms();
    let mut done = Erased::default();
    let mut full = false;

    // Messages only to the address, final: deleted whole.
    let messages = db
        .messages_mentioning(tenant, &email, MAX_MESSAGES)
        .await
        .map_err(internal)?;
    full |= messages.len() >= MAX_MESSAGES as usize;
    let whole: BTreeSet<String> = messages
        .iter()
        .filter(|m| {
            let text = |f: &str| m.get(f).and_then(serde_json::Value::as_str).unwrap_or("");
            deleted_whole(text("status"), text("rcpt_to"), &email)
        })
        .filter_map(|m| m.get("id").and_then(serde_json::Value::as_str))
        .map(str::to_string)
        .collect();
    let ids: Vec<&str> = whole.iter().map(String::as_str).collect();
    let (deleted, report_keys) = db.delete_messages(&ids).await.map_err(internal)?;
    for (table, n) in deleted {
        done.deleted(table, n);
    }
    let mut keys: Vec<String> = ids.iter().map(|id| body_key(id)).collect();
    keys.extend(report_keys);

    // Reports naming the address, with their kept raw bodies.
    let reports = db
        .reports_mentioning(tenant, &email, MAX_ROWS)
        .await
        .map_err(internal)?;
    full |= reports.len() >= MAX_ROWS as usize;
    let report_ids: Vec<&str> = reports.iter().map(|(id, _)| id.as_str()).collect();
    keys.extend(reports.iter().filter_map(|(_, k)| k.clone()));
    done.deleted(
        "inbound_reports",
        db.delete_reports(&report_ids).await.map_err(internal)?,
    );
    done.objects = delete_objects(env, keys).await;

    // Its plain suppression entries: the hashed one below replaces them.
    done.deleted(
        "suppressions",
        db.delete_plain_suppressions(tenant, &email)
            .await
            .map_err(internal)?,
    );

    // Everything else that names it: rewritten with the placeholder.
    let with = placeholder(tenant, &email);
    let mut found = db
        .rows_mentioning(tenant, key_ids, &email, MAX_ROWS)
        .await
        .map_err(internal)?;
    for table in &mut found {
        full |= table.rows.len() >= MAX_ROWS as usize;
        table.rows = std::mem::take(&mut table.rows)
            .into_iter()
            .filter_map(|(rid, values)| scrub_row(&values, &email, &with).map(|v| (rid, v)))
            .collect();
    }
    for (table, n) in db.rewrite_rows(&found).await.map_err(internal)? {
        done.anonymised(table, n);
    }

    db.add_suppressions(&[erased_entry(tenant, &email, now)])
        .await
        .map_err(internal)?;
    done.complete = !full;
    let counts = serde_json::json!({"deleted": done.deleted, "anonymised": done.anonymised});
    log::info(
        "privacy.erase",
        &[
            ("tenant", LogValue::Id(tenant)),
            ("deleted", LogValue::Json(&counts["deleted"])),
            ("anonymised", LogValue::Json(&counts["anonymised"])),
            ("complete", LogValue::Bool(done.complete)),
        ],
    );
    http::json(200, &erased(tenant, &email, &done)).map_err(internal)
}
