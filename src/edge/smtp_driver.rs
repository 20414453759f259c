//! Pumps a `worker::Socket` through the sans-IO SMTP session, one session per
//! step of the failover plan.
//!
//! One connection per upstream for the jobs it is given (a share of the
//! batch, see `delivery::plan`), pipelined when the server allows. Which
//! upstream comes next, which jobs it is offered and what each session's end
//! means for the upstream's health are `delivery::failover`'s decisions; this
//! module runs each session, stores the record each session leaves and the
//! health records it says changed (one D1 batch per session, see
//! `d1::health`) and logs its notices. If the records cannot be read,
//! every upstream counts as healthy: mail keeps flowing, only the skipping is
//! lost. Before it writes the bytes that end a transaction's data, it awaits
//! the caller's [`BeforeDataEnd`] (the in-flight record), once for all the
//! transactions about to go out together (pipelined BDAT writes many).
//!
//! Every socket operation has a deadline the core sets: connect and the TLS
//! handshake `SMTP_TIMEOUT_SECONDS`, each read the session's
//! `poll_timeout`, each write with its flush, and the close,
//! `write_timeout_ms`. An upstream that stops reading ends its session
//! like one that stops answering, and the jobs go to the next upstream.
//! An upstream of an API kind (`delivery::transport`) runs through
//! `api_transport` instead, under the same failover.
//! Must not: decide anything about email.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::{Either, LocalBoxFuture, select};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use worker::{Delay, Env, SecureTransport, Socket};

use crate::delivery::attempt::{envelope_for, kept_back, session_config};
use crate::delivery::failover::tally;
use crate::delivery::parts::{self, Part};
use crate::delivery::routing::{RouteKey, route_key};
use crate::delivery::shaping::{Grant, Limits, Pacer, Pacing, wait_seconds};
use crate::delivery::{
    AttemptReport, DeliverySettings, Failover, Notice, Outgoing, SessionEnd, SessionRecord,
    Upstream, UpstreamHealth, UpstreamSecurity,
};
use crate::events::log_line::LogValue;
use crate::smtp::{Event, Outcome, SmtpConfig, SmtpSession, TransactionOutcome};

use super::api_transport;
use super::d1::Db;
use super::platform::now_ms;
use super::{log, random, shaper};

/// Awaited before the bytes that end transactions' data (a final dot, or
/// the end of `BDAT … LAST`) are written, with each job's index and the
/// recipients its data goes to: every transaction whose data end is about
/// to go out, in one call. `false` ends the session before those bytes go
/// out, so the upstream never gets those messages.
pub type BeforeDataEnd<'f> = dyn Fn(Vec<(usize, Vec<String>)>) -> LocalBoxFuture<'f, bool> + 'f;

enum Read {
    Data(usize),
    Eof,
    TimedOut,
    Failed,
}

/// Delivers every job, returning one report per job in the same order.
/// `before_data_end` is awaited before transactions' data ends go out, and
/// `on_done(job index, outcome)` is called the moment each SMTP transaction
/// completes, so the caller can record both before the session ends.
pub async fn deliver_with<'f>(
    env: &Env,
    settings: &DeliverySettings,
    db: &Db,
    jobs: &[&Outgoing],
    before_data_end: &BeforeDataEnd<'f>,
    on_done: &dyn Fn(usize, &TransactionOutcome),
) -> Vec<AttemptReport> {
    deliver_tuned(env, settings, db, jobs, before_data_end, on_done, &|_| {}).await
}

/// [`deliver_with`], with `tune` adjusting each session's configuration after
/// it is derived from the settings (the benchmark route switches pipelining
/// per request this way, to compare both in one run).
pub async fn deliver_tuned<'f>(
    env: &Env,
    settings: &DeliverySettings,
    db: &Db,
    jobs: &[&Outgoing],
    before_data_end: &BeforeDataEnd<'f>,
    on_done: &dyn Fn(usize, &TransactionOutcome),
    tune: &dyn Fn(&mut SmtpConfig),
) -> Vec<AttemptReport> {
    let labels: Vec<String> = settings.upstreams.iter().map(Upstream::label).collect();
    let health = match db.upstream_health(&labels).await {
        Ok(records) => records,
        Err(e) => {
            log::warn_because("upstream_health_unavailable", &e);
            vec![UpstreamHealth::default(); labels.len()]
        }
    };
    // Each share of the batch that goes the same way (`UPSTREAM_ROUTES`)
    // fails over within its own upstreams.
    let keys: Vec<RouteKey<'_>> = jobs.iter().map(|o| route_key(&o.job)).collect();
    let mut reports: Vec<Option<AttemptReport>> = jobs.iter().map(|_| None).collect();
    for group in settings.routes.group(&keys, labels.len()) {
        let shared: Vec<&Outgoing> = group
            .jobs
            .iter()
            .filter_map(|&i| jobs.get(i).copied())
            .collect();
        let before = |ends: Vec<(usize, Vec<String>)>| {
            let ends = ends
                .into_iter()
                .filter_map(|(pos, recipients)| {
                    group.jobs.get(pos).map(|&index| (index, recipients))
                })
                .collect();
            before_data_end(ends)
        };
        let done = |pos: usize, o: &TransactionOutcome| {
            if let Some(&index) = group.jobs.get(pos) {
                on_done(index, o)
            }
        };
        let group_health = group
            .upstreams
            .iter()
            .map(|&u| health.get(u).cloned().unwrap_or_default())
            .collect();
        let hooks = Hooks {
            slot_of: None,
            before_data_end: &before,
            on_done: &done,
            tune,
        };
        let routed = deliver_route(
            env,
            settings,
            db,
            &group.upstreams,
            group_health,
            &shared,
            &hooks,
        )
        .await;
        for (&index, report) in group.jobs.iter().zip(routed) {
            if let Some(slot) = reports.get_mut(index) {
                *slot = Some(report);
            }
        }
    }
    reports.into_iter().flatten().collect()
}

/// What the caller runs around each transaction, by the job's position in
/// the share being sent.
struct Hooks<'h, 'f> {
    /// Each job's slot in the shaper's grant; `None` for a later part of
    /// the job before it, which follows at once. Unset: each job is its
    /// own, the `i`-th taking slot `i`.
    slot_of: Option<&'h dyn Fn(usize) -> Option<u32>>,
    before_data_end: &'h BeforeDataEnd<'f>,
    on_done: &'h dyn Fn(usize, &TransactionOutcome),
    tune: &'h dyn Fn(&mut SmtpConfig),
}

impl Hooks<'_, '_> {
    /// The slot of the job at `pos`.
    fn slot(&self, pos: usize) -> Option<u32> {
        match self.slot_of {
            Some(slot_of) => slot_of(pos),
            None => u32::try_from(pos).ok(),
        }
    }
}

/// One route's share of the batch over its upstreams (indexes into
/// `settings.upstreams`, in priority order, with their health records) with
/// failover among them. An upstream with limits (`UPSTREAM_LIMITS`) first
/// asks its shaper for a place and a pace: the jobs it does not grant are
/// kept back (they wait, no attempt used), the others go out on its schedule.
async fn deliver_route(
    env: &Env,
    settings: &DeliverySettings,
    db: &Db,
    route: &[usize],
    health: Vec<UpstreamHealth>,
    jobs: &[&Outgoing],
    hooks: &Hooks<'_, '_>,
) -> Vec<AttemptReport> {
    let Hooks {
        before_data_end,
        on_done,
        tune,
        ..
    } = *hooks;
    let upstreams: Vec<&Upstream> = route
        .iter()
        .filter_map(|&u| settings.upstreams.get(u))
        .collect();
    let labels: Vec<String> = upstreams.iter().map(|u| u.label()).collect();
    let recipients = jobs.iter().map(|o| o.job.rcpt_to.clone()).collect();
    let mut failover = Failover::new(labels, health, now_ms(), recipients);
    while let Some(mut step) = failover.next_session() {
        let Some(upstream) = upstreams.get(step.upstream).copied() else {
            break;
        };
        let label = upstream.label();
        let limits = settings.limits.of(&label);
        let lease = format!("{:016x}", u64::from_le_bytes(random::bytes::<8>()));
        let wanted = u32::try_from(step.jobs.len()).unwrap_or(u32::MAX);
        let shaped = limits.filter(Limits::needs_shaper);
        let grant = match shaped {
            Some(l) => shaper::grant(env, &label, l, &lease, wanted).await,
            None => Grant::all(wanted),
        };
        let granted_at = now_ms();
        let granted = step.jobs.len().min(grant.messages as usize);
        if granted < step.jobs.len() {
            let wait = wait_seconds(grant.retry_in_ms);
            let kept = step.jobs.split_off(granted);
            failover.keep_back(&kept, |recipients| kept_back(recipients, &label, wait));
            log::info(
                "upstream_shaped",
                &[
                    ("upstream", LogValue::Id(&label)),
                    ("kept_back", LogValue::Num(kept.len() as u64)),
                    ("wait_seconds", LogValue::Num(u64::from(wait))),
                ],
            );
        }
        if step.jobs.is_empty() {
            continue;
        }
        let Some(batch) = step
            .jobs
            .iter()
            .map(|&i| jobs.get(i).copied())
            .collect::<Option<Vec<&Outgoing>>>()
        else {
            break;
        };
        let on_done = |pos: usize, o: &TransactionOutcome| {
            if let Some(&index) = step.jobs.get(pos) {
                on_done(index, o)
            }
        };
        let before = |ends: Vec<(usize, Vec<String>)>| {
            let ends = ends
                .into_iter()
                .filter_map(|(pos, recipients)| {
                    step.jobs.get(pos).map(|&index| (index, recipients))
                })
                .collect();
            before_data_end(ends)
        };
        let started = now_ms();
        let pace = Pace {
            grant: &grant,
            granted_at,
        };
        let share = Share {
            upstream,
            settings,
            limits: limits.unwrap_or_default(),
        };
        let step_hooks = Hooks {
            slot_of: None,
            before_data_end: &before,
            on_done: &on_done,
            tune,
        };
        let (mut end, missed) = run_share(&share, &batch, &pace, &step_hooks).await;
        if let Some(l) = shaped {
            let t = tally(&end);
            let ended = shaper::Ended {
                accepted: t.accepted,
                returned: t.returned,
                throttled: t.throttled,
            };
            shaper::report(env, &label, l, &lease, ended).await;
        }
        if !missed.is_empty() {
            // Jobs whose slot passed before the session could send them:
            // kept back like the ones never granted.
            let wait = wait_seconds(grant.interval_ms);
            let kept: Vec<usize> = missed
                .iter()
                .filter_map(|&pos| step.jobs.get(pos).copied())
                .collect();
            end.outcomes = end
                .outcomes
                .into_iter()
                .enumerate()
                .filter(|(pos, _)| !missed.contains(pos))
                .map(|(_, o)| o)
                .collect();
            failover.keep_back(&kept, |recipients| kept_back(recipients, &label, wait));
        }
        let now = now_ms();
        let record = SessionRecord::of(&end, started, now);
        let change = failover.session_ended(end, &settings.upstream_health, now);
        if let Some(change) = &change {
            let fields = |text| [("upstream", LogValue::Id(&change.label)), ("detail", text)];
            match &change.notice {
                Some(Notice::Paused(text)) => {
                    log::error("upstream_paused", &fields(LogValue::Text(text)))
                }
                Some(Notice::CoolingDown(text)) => {
                    log::warn("upstream_cooling_down", &fields(LogValue::Text(text)))
                }
                None => {}
            }
        }
        if let Err(e) = db
            .record_session(&upstream.label(), &record, change.as_ref(), now)
            .await
        {
            log::warn_because("upstream_session_not_stored", &e);
        }
    }
    failover.into_reports()
}

/// When a share's messages may go: the shaper's grant, and when it was
/// given (Unix ms); slots count from then.
struct Pace<'g> {
    grant: &'g Grant,
    granted_at: u64,
}

/// The upstream a share goes to, with its limits.
struct Share<'s> {
    upstream: &'s Upstream,
    settings: &'s DeliverySettings,
    limits: Limits,
}

/// One step's share of jobs to one upstream: one session, or, where the
/// upstream's recipient limits cut it (`delivery::parts`), several
/// sessions one after another, each a list of transactions. Returns one
/// outcome per job (its parts' put together) and the jobs whose slot
/// passed, as one session would. `on_done` hears of a job once all its
/// parts are in, or once no more of them will be.
async fn run_share(
    share: &Share<'_>,
    jobs: &[&Outgoing],
    pace: &Pace<'_>,
    hooks: &Hooks<'_, '_>,
) -> (SessionEnd, Vec<usize>) {
    let Hooks {
        before_data_end,
        on_done,
        ..
    } = *hooks;
    let upstream = share.upstream;
    let counts: Vec<usize> = jobs.iter().map(|o| o.job.rcpt_to.len()).collect();
    let per_message = parts::per_message(
        share.limits.recipients_per_message,
        upstream.api.as_ref().and_then(|a| a.max_recipients()),
    );
    let plan = parts::plan(&counts, per_message, share.limits.recipients_per_session);
    if parts::is_whole(&plan, &counts) {
        return run_one(share, jobs, pace, hooks).await;
    }
    // Each job's parts (their ranges) and what each came to.
    let mut ranges: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new(); jobs.len()];
    for part in plan.iter().flatten() {
        if let Some(r) = ranges.get_mut(part.job) {
            r.push(part.recipients.clone());
        }
    }
    let results: RefCell<Vec<Vec<Option<TransactionOutcome>>>> =
        RefCell::new(ranges.iter().map(|r| vec![None; r.len()]).collect());
    let told: RefCell<Vec<bool>> = RefCell::new(vec![false; jobs.len()]);
    let merged = |job: usize, unreached: Option<&Outcome>| -> Option<TransactionOutcome> {
        let results = results.borrow();
        let (Some(out), Some(r), Some(done)) = (jobs.get(job), ranges.get(job), results.get(job))
        else {
            return None;
        };
        let answered: Vec<_> = r
            .iter()
            .cloned()
            .zip(done.iter().map(Option::as_ref))
            .collect();
        parts::merge(job as u64, &out.job.rcpt_to, &answered, unreached)
    };
    let mut missed_jobs: BTreeSet<usize> = BTreeSet::new();
    let mut failure = None;
    for session in plan {
        let session: Vec<Part> = session
            .into_iter()
            .filter(|p| !missed_jobs.contains(&p.job))
            .collect();
        let outgoing: Vec<Outgoing> = session
            .iter()
            .filter_map(|p| {
                jobs.get(p.job)
                    .map(|o| o.for_recipients(p.recipients.clone()))
            })
            .collect();
        if outgoing.is_empty() {
            continue;
        }
        let refs: Vec<&Outgoing> = outgoing.iter().collect();
        let slot_of = |i: usize| {
            session
                .get(i)
                .filter(|p| p.opens_job())
                .and_then(|p| u32::try_from(p.job).ok())
        };
        let before = |ends: Vec<(usize, Vec<String>)>| {
            let ends = ends
                .into_iter()
                .filter_map(|(i, recipients)| session.get(i).map(|p| (p.job, recipients)))
                .collect();
            before_data_end(ends)
        };
        let store = |i: usize, o: TransactionOutcome| -> Option<usize> {
            let part = session.get(i)?;
            let ordinal = ranges
                .get(part.job)?
                .iter()
                .position(|r| *r == part.recipients)?;
            let mut results = results.borrow_mut();
            let slot = results.get_mut(part.job)?.get_mut(ordinal)?;
            *slot = Some(o);
            Some(part.job)
        };
        let part_done = |i: usize, o: &TransactionOutcome| {
            let Some(job) = store(i, o.clone()) else {
                return;
            };
            let complete = results
                .borrow()
                .get(job)
                .is_some_and(|r| r.iter().all(Option::is_some));
            let untold = !told.borrow().get(job).copied().unwrap_or(true);
            if complete
                && untold
                && let Some(m) = merged(job, None)
            {
                if let Some(t) = told.borrow_mut().get_mut(job) {
                    *t = true;
                }
                on_done(job, &m);
            }
        };
        let part_hooks = Hooks {
            slot_of: Some(&slot_of),
            before_data_end: &before,
            on_done: &part_done,
            tune: hooks.tune,
        };
        let (end, missed) = run_one(share, &refs, pace, &part_hooks).await;
        for (i, o) in end.outcomes.into_iter().enumerate() {
            if let Some(o) = o {
                store(i, o);
            }
        }
        missed_jobs.extend(missed.iter().filter_map(|&i| session.get(i).map(|p| p.job)));
        if end.failure.is_some() {
            // The upstream is in trouble: the rest waits for the next one.
            failure = end.failure;
            break;
        }
    }
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in 0..jobs.len() {
        let m = merged(job, failure.as_ref()).filter(|_| !missed_jobs.contains(&job));
        let untold = !told.borrow().get(job).copied().unwrap_or(true);
        if let Some(m) = &m
            && untold
        {
            on_done(job, m);
        }
        outcomes.push(m);
    }
    (
        SessionEnd { outcomes, failure },
        missed_jobs.into_iter().collect(),
    )
}

/// One session of SMTP, or one run of an API upstream's calls.
async fn run_one(
    share: &Share<'_>,
    jobs: &[&Outgoing],
    pace: &Pace<'_>,
    hooks: &Hooks<'_, '_>,
) -> (SessionEnd, Vec<usize>) {
    let (upstream, settings) = (share.upstream, share.settings);
    match &upstream.api {
        Some(api) => {
            let timeout_ms = u64::from(settings.smtp_timeout_seconds) * 1000;
            let run = api_transport::Run {
                upstream,
                api,
                timeout_ms,
                grant: pace.grant,
                granted_at: pace.granted_at,
                slot_of: &|i| hooks.slot(i),
            };
            api_transport::run_session(&run, jobs, hooks.before_data_end, hooks.on_done).await
        }
        None => run_session(share, jobs, pace, hooks).await,
    }
}

/// One connection to one upstream, carrying `jobs`: each job's outcome, and
/// the failure the session ended with (`None` after a clean QUIT). Each job
/// is handed to the session at its slot of `pace` (all at once without a
/// rate); the ones not handed over when the session ends get its failure.
/// A job whose slot passed by more than an interval before the session
/// could hand it over is not sent (its place in time is gone): its position
/// is returned, to be kept back.
async fn run_session(
    share: &Share<'_>,
    jobs: &[&Outgoing],
    pace: &Pace<'_>,
    hooks: &Hooks<'_, '_>,
) -> (SessionEnd, Vec<usize>) {
    let Share {
        upstream, settings, ..
    } = *share;
    let Hooks {
        before_data_end,
        on_done,
        tune,
        ..
    } = *hooks;
    let mut config = session_config(upstream, settings);
    tune(&mut config);
    let granted_at = pace.granted_at;
    let mut session = SmtpSession::new(config, now_ms());
    let mut fed = 0usize;
    let mut pacer = Pacer::new(pace.grant);
    let mut missed: Vec<usize> = Vec::new();
    // Hands the session every job whose slot has come (`all`: every job
    // left, once the session is over); says whether it handed any, and
    // when the next slot is. A job's later parts (no slot of their own)
    // follow its first at once, and are missed with it.
    let mut feed = |session: &mut SmtpSession, all: bool| -> (bool, Option<u64>) {
        let mut any = false;
        while let Some(job) = jobs.get(fed) {
            let now = now_ms();
            match pacer.next(hooks.slot(fed), now.saturating_sub(granted_at), all) {
                Pacing::WaitUntil(due) => return (any, Some(granted_at.saturating_add(due))),
                Pacing::Skip => {
                    missed.push(fed);
                    fed += 1;
                    if fed == jobs.len() {
                        session.finish(now);
                    }
                    continue;
                }
                Pacing::Send => {}
            }
            session.send(envelope_for(upstream, fed as u64, job), now);
            any = true;
            fed += 1;
            if fed == jobs.len() {
                session.finish(now_ms());
            }
        }
        (any, None)
    };
    if jobs.is_empty() {
        session.finish(now_ms());
    }
    let (_, mut next_due) = feed(&mut session, false);
    let mut outcomes: Vec<Option<TransactionOutcome>> = vec![None; jobs.len()];
    let label = upstream.label();

    let transport = match upstream.security {
        UpstreamSecurity::ImplicitTls => SecureTransport::On,
        UpstreamSecurity::StartTls => SecureTransport::StartTls,
        UpstreamSecurity::Insecure => SecureTransport::Off,
    };
    let connect_timeout = u64::from(settings.smtp_timeout_seconds) * 1000;
    let mut socket = match open(&upstream.host, upstream.port, transport, connect_timeout).await {
        Ok(s) => s,
        Err(reason) => {
            session.connect_failed(format!("connect to {label} failed: {reason}"), now_ms());
            feed(&mut session, true);
            let failure = drain(&mut session, &mut outcomes);
            return (SessionEnd { outcomes, failure }, missed);
        }
    };

    let mut buf = vec![0u8; 16 * 1024];
    let mut failure = None;
    loop {
        // The in-flight records are written before the bytes that end the
        // data: once those are out, the upstream may take the message. All
        // that are due go in one call.
        let ends: Vec<(usize, Vec<String>)> = std::iter::from_fn(|| session.poll_in_flight())
            .filter_map(|f| usize::try_from(f.id).ok().map(|pos| (pos, f.recipients)))
            .collect();
        let recorded = ends.is_empty() || before_data_end(ends).await;
        if !recorded {
            // Without its record the end of data must not go out.
            session.handle_closed(now_ms());
        }
        while let Some(bytes) = session.poll_transmit() {
            let write = async {
                socket.write_all(&bytes).await?;
                socket.flush().await
            };
            match with_timeout(write, session.write_timeout_ms()).await {
                Some(Ok(())) => session.handle_written(now_ms()),
                Some(Err(_)) => session.handle_closed(now_ms()),
                // The upstream stopped reading; the session ends.
                None => session.handle_write_timeout(now_ms()),
            }
            if session.is_closed() {
                break;
            }
        }
        if let Some(event) = session.poll_event() {
            match event {
                Event::StartTls => {
                    socket = socket.start_tls();
                    match with_timeout(socket.opened(), connect_timeout).await {
                        Some(Ok(_)) => session.handle_tls_established(now_ms()),
                        Some(Err(e)) => session.handle_tls_failed(e.to_string(), now_ms()),
                        None => session.handle_tls_failed("TLS handshake timed out", now_ms()),
                    }
                }
                Event::TransactionDone(outcome) => {
                    if let Ok(pos) = usize::try_from(outcome.id) {
                        on_done(pos, &outcome);
                    }
                    store(&mut outcomes, outcome)
                }
                Event::Closed { failure: f } => failure = f,
            }
            continue;
        }
        if session.is_closed() {
            break;
        }
        if next_due.is_some() {
            let (any, next) = feed(&mut session, false);
            next_due = next;
            if any {
                continue;
            }
        }
        let deadline = match (session.poll_timeout(), next_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match read(&mut socket, &mut buf, deadline).await {
            Read::Data(n) => session.handle_input(buf.get(..n).unwrap_or_default(), now_ms()),
            Read::Eof | Read::Failed => session.handle_closed(now_ms()),
            Read::TimedOut => session.handle_timeout(now_ms()),
        }
    }
    feed(&mut session, true);
    if let Some(f) = drain(&mut session, &mut outcomes) {
        failure = Some(f);
    }
    // Closing waits for writes still pending: bounded like any write.
    let _ = with_timeout(socket.close(), session.write_timeout_ms()).await;
    (SessionEnd { outcomes, failure }, missed)
}

fn store(outcomes: &mut [Option<TransactionOutcome>], outcome: TransactionOutcome) {
    if let Some(slot) = usize::try_from(outcome.id)
        .ok()
        .and_then(|i| outcomes.get_mut(i))
    {
        *slot = Some(outcome);
    }
}

/// Collects the remaining events; returns the failure the session ended
/// with, if it ended here.
fn drain(
    session: &mut SmtpSession,
    outcomes: &mut [Option<TransactionOutcome>],
) -> Option<Outcome> {
    let mut failure = None;
    while let Some(event) = session.poll_event() {
        match event {
            Event::TransactionDone(outcome) => store(outcomes, outcome),
            Event::Closed { failure: f } => failure = f,
            Event::StartTls => {}
        }
    }
    failure
}

async fn open(
    host: &str,
    port: u16,
    transport: SecureTransport,
    timeout_ms: u64,
) -> Result<Socket, String> {
    let socket = Socket::builder()
        .secure_transport(transport)
        .connect(host, port)
        .map_err(|e| e.to_string())?;
    match with_timeout(socket.opened(), timeout_ms).await {
        Some(Ok(_)) => Ok(socket),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("timed out".into()),
    }
}

pub(crate) async fn with_timeout<F: Future>(fut: F, timeout_ms: u64) -> Option<F::Output> {
    let delay = Delay::from(Duration::from_millis(timeout_ms));
    match select(std::pin::pin!(fut), delay).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

async fn read(socket: &mut Socket, buf: &mut [u8], deadline: Option<u64>) -> Read {
    let outcome = match deadline {
        None => Some(socket.read(buf).await),
        Some(at) => with_timeout(socket.read(buf), at.saturating_sub(now_ms())).await,
    };
    match outcome {
        None => Read::TimedOut,
        Some(Ok(0)) => Read::Eof,
        Some(Ok(n)) => Read::Data(n),
        Some(Err(_)) => Read::Failed,
    }
}
