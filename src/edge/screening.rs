//! Screening jobs against their tenants' suppression lists, and taking out
//! the test addresses (`delivery::test_addresses`), before any body is read
//! and any upstream sees an address: the queue consumer and immediate
//! deliveries both screen here, so their records are the same.
//!
//! For each job with a held recipient or a test address, in this order: its
//! events (`email.suppressed`, and each test address's, through
//! `email_events::publish`: stored, and queued to webhooks), then its
//! recipients' rows and timeline events, or, when none is left to send to,
//! the settlement that ends it.
//! Events first: a death in between records them again on the redelivery
//! (events are delivered at least once), never not at all.
//! Must not: decide which recipient is held (`delivery::screen` does) or
//! what a test address records (`delivery::test_addresses` does).

use worker::Env;

use crate::delivery::Settlement;
use crate::delivery::recipients::with_results;
use crate::delivery::screen::{
    ALL_HELD_DETAIL, NONE_SENT_DETAIL, email_events, held_record, lookups, screen, settle_none_left,
};
use crate::delivery::test_addresses;
use crate::delivery::{RecipientResult, RecipientState};
use crate::events::EmailEvent;
use crate::events::log_line::LogValue;
use crate::events::suppression::Entry;
use crate::queue::DeliveryJob;

use super::d1::Db;
use super::email_events;
use super::log;
use super::platform::now_ms;
use super::random;

/// Recipients' recorded states.
pub(crate) type States = Vec<(String, RecipientState)>;

/// What becomes of one screened job.
pub(crate) enum Screened {
    /// Deliver it to the recipients left (all of them when none is held):
    /// the job, the recorded states with the held ones, and their rows.
    Go(DeliveryJob, States, Vec<RecipientResult>),
    /// None is left: carry out this settlement instead of an attempt.
    Settle(Settlement),
    /// The held recipients could not be recorded: deliver nothing now.
    NotRecorded,
}

/// The suppression entries for every recipient of `jobs`, in one query.
pub(crate) async fn entries_for(db: &Db, jobs: &[&DeliveryJob]) -> worker::Result<Vec<Entry>> {
    db.suppression_entries(&lookups(jobs)).await
}

/// Screens one job against `entries` (see [`entries_for`]) and records what
/// it held back.
pub(crate) async fn screen_job(
    env: &Env,
    db: &Db,
    job: DeliveryJob,
    mut states: States,
    entries: &[Entry],
) -> Screened {
    let now = now_ms();
    let screened = screen(&job, entries, now);
    let tests = test_addresses::split(&screened.rcpt_to);
    if screened.held.is_empty() && tests.simulated.is_empty() {
        return Screened::Go(job, states, Vec::new());
    }
    let mut stream = email_events(&job, &screened.held, now, &mut random::bytes::<16>);
    let (mut results, mut events) = held_record(&screened.held);
    let (test_rows, test_timeline, test_events) =
        test_addresses::record(&job, &tests.simulated, now);
    stream.extend(test_events);
    results.extend(test_rows);
    events.extend(test_timeline);
    if !record_events(env, db, &job, &stream).await {
        return Screened::NotRecorded;
    }
    if tests.rcpt_to.is_empty() {
        let detail = if tests.simulated.is_empty() {
            ALL_HELD_DETAIL
        } else {
            NONE_SENT_DETAIL
        };
        return Screened::Settle(settle_none_left(&job, &states, results, events, detail));
    }
    if let Err(e) = db.record_held(&job.id, &results, &events, now).await {
        log::error(
            "could_not_record_suppressed_recipients",
            &[
                ("message_id", LogValue::Id(&job.id)),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
        return Screened::NotRecorded;
    }
    with_results(&mut states, results.clone());
    Screened::Go(
        DeliveryJob {
            rcpt_to: tests.rcpt_to,
            ..job
        },
        states,
        results,
    )
}

async fn record_events(env: &Env, db: &Db, job: &DeliveryJob, events: &[EmailEvent]) -> bool {
    match email_events::publish(env, db, events).await {
        Ok(()) => true,
        Err(e) => {
            log::error(
                "could_not_record_screening_events",
                &[
                    ("message_id", LogValue::Id(&job.id)),
                    ("error", LogValue::Text(&e.to_string())),
                ],
            );
            false
        }
    }
}
