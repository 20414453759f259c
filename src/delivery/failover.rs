//! Failover across upstreams within one invocation: which upstream gets a
//! session next, which jobs it is offered, and what each job's attempt came to.
//!
//! The upstreams are tried in priority order, skipping those cooling down
//! (`health::upstream_order`). Every pending job goes over one session to the
//! first upstream; a job that upstream could not take for reasons of its own
//! (connection refused, 4xx greeting, bad credentials: nothing reached a
//! recipient) is offered to the next one, and so on. Every session's end
//! updates its upstream's health record.
//!
//! A state machine the edge drives: ask [`Failover::next_session`], run that
//! one SMTP session, feed [`Failover::session_ended`] its outcomes, repeat
//! until there is no next session, then take [`Failover::into_reports`].
//! Must not: open sockets, store health records or read the clock.

use crate::smtp::{Outcome, OutcomeKind, TransactionOutcome};

use super::attempt::{AttemptReport, report};
use super::health::{HealthChange, SessionVerdict, UpstreamHealth, change, upstream_order};
use super::policy::AttemptResult;
use super::settings::HealthSettings;
use super::shaping::{Tally, throttles};

/// One SMTP session to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The upstream's index in the configuration.
    pub upstream: usize,
    /// The jobs to send, as indexes into the batch, in this order.
    pub jobs: Vec<usize>,
}

/// How a session ended, as the edge saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// Each offered job's outcome, in the session's order; `None` for a job
    /// the session recorded nothing for.
    pub outcomes: Vec<Option<TransactionOutcome>>,
    /// The failure the session ended with; `None` after a clean QUIT.
    pub failure: Option<Outcome>,
}

/// Failover for one batch of jobs.
#[derive(Debug, Clone)]
pub struct Failover {
    labels: Vec<String>,
    health: Vec<UpstreamHealth>,
    /// Upstream indexes to try, in order.
    order: Vec<usize>,
    /// How many of `order` have had their session.
    tried: usize,
    /// Each job's recipients, for the report of a job with no outcome.
    recipients: Vec<Vec<String>>,
    /// Jobs to offer to the next upstream.
    pending: Vec<usize>,
    reports: Vec<Option<AttemptReport>>,
}

impl Failover {
    /// `labels` and `health` describe the configured upstreams, in
    /// configuration order; `recipients` holds each job's recipients.
    pub fn new(
        labels: Vec<String>,
        mut health: Vec<UpstreamHealth>,
        now_ms: u64,
        recipients: Vec<Vec<String>>,
    ) -> Self {
        // A missing record counts as healthy.
        health.resize(labels.len(), UpstreamHealth::default());
        let order = upstream_order(&health, now_ms);
        Failover {
            pending: (0..recipients.len()).collect(),
            reports: vec![None; recipients.len()],
            labels,
            health,
            order,
            tried: 0,
            recipients,
        }
    }

    /// The next session to run, or `None` when every job has its report.
    pub fn next_session(&self) -> Option<Session> {
        if self.pending.is_empty() {
            return None;
        }
        let upstream = *self.order.get(self.tried)?;
        Some(Session {
            upstream,
            jobs: self.pending.clone(),
        })
    }

    /// Takes the end of the session [`Failover::next_session`] named: each
    /// job's report, which jobs go on to the next upstream, and the change to
    /// the upstream's health record (to store), if any.
    pub fn session_ended(
        &mut self,
        end: SessionEnd,
        settings: &HealthSettings,
        now_ms: u64,
    ) -> Option<HealthChange> {
        let &upstream = self.order.get(self.tried)?;
        self.tried += 1;
        let is_last = self.tried == self.order.len();
        let label = self.labels.get(upstream).cloned().unwrap_or_default();

        let verdict = SessionVerdict::from_session_end(end.failure.as_ref());
        let old = self.health.get(upstream).cloned().unwrap_or_default();
        let changed = change(upstream, &label, &old, &verdict, settings, now_ms);
        if let (Some(c), Some(slot)) = (&changed, self.health.get_mut(upstream)) {
            *slot = c.record.clone();
        }

        let mut outcomes = end.outcomes.into_iter();
        let mut next = Vec::new();
        for &job in &std::mem::take(&mut self.pending) {
            let r = match outcomes.next().flatten() {
                Some(outcome) => report(&outcome),
                None => no_outcome(&label, self.recipients.get(job)),
            };
            if r.try_next_upstream && !is_last {
                next.push(job);
            }
            if let Some(slot) = self.reports.get_mut(job) {
                *slot = Some(r);
            }
        }
        self.pending = next;
        changed
    }

    /// Takes `jobs` (of the session [`Failover::next_session`] named) out
    /// of it before it runs: the upstream's shaping keeps them back, each
    /// reported as `kept(its recipients)`. None goes on to another upstream.
    pub fn keep_back(&mut self, jobs: &[usize], kept: impl Fn(&[String]) -> AttemptReport) {
        self.pending.retain(|j| !jobs.contains(j));
        for &job in jobs {
            let recipients = self.recipients.get(job).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(slot) = self.reports.get_mut(job) {
                *slot = Some(kept(recipients));
            }
        }
    }

    /// One report per job, in batch order.
    pub fn into_reports(self) -> Vec<AttemptReport> {
        self.reports
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| AttemptReport {
                    result: AttemptResult::Transient("no upstream configured".into()),
                    remaining: Vec::new(),
                    detail: "no upstream configured".into(),
                    try_next_upstream: false,
                })
            })
            .collect()
    }
}

/// Counts a session's end for its shaper.
pub fn tally(end: &SessionEnd) -> Tally {
    let mut t = Tally {
        throttled: end.failure.as_ref().is_some_and(throttles),
        ..Tally::default()
    };
    for outcome in &end.outcomes {
        let Some(o) = outcome else {
            t.returned += 1;
            continue;
        };
        match report(o).result {
            AttemptResult::Waiting { .. } => {
                t.returned += 1;
                t.throttled = true;
            }
            _ if o
                .recipients
                .iter()
                .any(|r| r.outcome.kind == OutcomeKind::Delivered)
                || o.outcome.kind == OutcomeKind::Delivered =>
            {
                t.accepted += 1
            }
            _ => {}
        }
    }
    t
}

/// A job the session never reached (it ended before the job's turn).
fn no_outcome(label: &str, recipients: Option<&Vec<String>>) -> AttemptReport {
    let detail = format!("{label}: no outcome recorded");
    AttemptReport {
        result: AttemptResult::Transient(detail.clone()),
        remaining: recipients.cloned().unwrap_or_default(),
        detail,
        try_next_upstream: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::health::Notice;
    use crate::smtp::{Cause, OutcomeKind, RecipientOutcome, Reply};

    const SETTINGS: HealthSettings = HealthSettings {
        failure_threshold: 1,
        cooldown_seconds: 60,
        max_cooldown_seconds: 600,
    };
    const NOW: u64 = 1_000_000;

    /// What one job's transaction came to, for a table row.
    #[derive(Clone, Copy, Debug)]
    enum Got {
        /// 250 for every recipient.
        Ok,
        /// 451 for every recipient.
        Busy,
        /// 550 for every recipient.
        Gone,
        /// Connection refused before any recipient.
        Refused,
        /// Credentials refused (535) before any recipient.
        BadAuth,
        /// The session recorded nothing for the job.
        Nothing,
    }

    fn rcpt(address: &str, kind: OutcomeKind, code: u16, text: &str) -> RecipientOutcome {
        RecipientOutcome {
            address: address.into(),
            outcome: Outcome {
                kind,
                cause: Cause::Reply,
                reply: Some(Reply::new(code, text)),
            },
        }
    }

    fn transaction(job: usize, got: Got) -> Option<TransactionOutcome> {
        let address = format!("r{job}@x.net");
        let id = job as u64;
        let per_rcpt = |kind, code, text| {
            TransactionOutcome::summarise(
                id,
                vec![rcpt(&address, kind, code, text)],
                Outcome::new(kind, Cause::Reply),
            )
        };
        let session = |kind, cause| TransactionOutcome {
            id,
            outcome: Outcome::new(kind, cause),
            recipients: vec![],
        };
        Some(match got {
            Got::Ok => per_rcpt(OutcomeKind::Delivered, 250, "2.0.0 OK"),
            Got::Busy => per_rcpt(OutcomeKind::Transient, 451, "4.3.0 busy"),
            Got::Gone => per_rcpt(OutcomeKind::Permanent, 550, "5.1.1 no such user"),
            Got::Refused => session(
                OutcomeKind::Transient,
                Cause::ConnectFailed("refused".into()),
            ),
            Got::BadAuth => TransactionOutcome {
                id,
                outcome: Outcome::new(OutcomeKind::Configuration, Cause::Reply)
                    .with_reply(Reply::new(535, "5.7.8 bad credentials")),
                recipients: vec![],
            },
            Got::Nothing => return None,
        })
    }

    /// The failure a session ends with when every job got `got`.
    fn failure(got: Got) -> Option<Outcome> {
        match got {
            Got::Refused => Some(Outcome::new(
                OutcomeKind::Transient,
                Cause::ConnectFailed("refused".into()),
            )),
            Got::BadAuth => Some(
                Outcome::new(OutcomeKind::Configuration, Cause::Reply)
                    .with_reply(Reply::new(535, "5.7.8 bad credentials")),
            ),
            _ => None,
        }
    }

    fn cooling(until: u64) -> UpstreamHealth {
        UpstreamHealth {
            consecutive_failures: 3,
            skip_until_ms: until,
            ..UpstreamHealth::default()
        }
    }

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("up{i}:465")).collect()
    }

    /// One step of a scenario: the session expected next (upstream, jobs) and
    /// what each of its jobs got, in the session's order.
    type Step = (usize, Vec<usize>, Vec<Got>);

    struct Case {
        name: &'static str,
        health: Vec<UpstreamHealth>,
        jobs: usize,
        steps: Vec<Step>,
        /// Each job's final result kind (`"delivered"`, `"transient"`, ...).
        results: Vec<&'static str>,
    }

    fn kind(r: &AttemptResult) -> &'static str {
        match r {
            AttemptResult::Delivered => "delivered",
            AttemptResult::Transient(_) => "transient",
            AttemptResult::Permanent(_) => "permanent",
            AttemptResult::UpstreamMisconfigured(_) => "misconfigured",
            AttemptResult::Unknown(_) => "unknown",
            AttemptResult::Waiting { .. } => "waiting",
        }
    }

    #[test]
    fn sessions_and_reports_table() {
        use Got::*;
        let ok = UpstreamHealth::default;
        let cases = vec![
            Case {
                name: "one upstream takes everything",
                health: vec![ok()],
                jobs: 3,
                steps: vec![(0, vec![0, 1, 2], vec![Ok, Ok, Ok])],
                results: vec!["delivered"; 3],
            },
            Case {
                name: "a refused connection moves every job to the next upstream",
                health: vec![ok(), ok()],
                jobs: 2,
                steps: vec![
                    (0, vec![0, 1], vec![Refused, Refused]),
                    (1, vec![0, 1], vec![Ok, Ok]),
                ],
                results: vec!["delivered"; 2],
            },
            Case {
                name: "bad credentials move the jobs on too",
                health: vec![ok(), ok()],
                jobs: 1,
                steps: vec![(0, vec![0], vec![BadAuth]), (1, vec![0], vec![Ok])],
                results: vec!["delivered"],
            },
            Case {
                name: "only untouched jobs go on; a refused recipient is the message's fault",
                health: vec![ok(), ok(), ok()],
                jobs: 4,
                steps: vec![
                    (0, vec![0, 1, 2, 3], vec![Ok, Busy, Gone, Nothing]),
                    (1, vec![1, 3], vec![Busy, Ok]),
                    (2, vec![1], vec![Ok]),
                ],
                results: vec!["delivered", "delivered", "permanent", "delivered"],
            },
            Case {
                name: "the last upstream's answer stands",
                health: vec![ok(), ok()],
                jobs: 2,
                steps: vec![
                    (0, vec![0, 1], vec![Refused, Refused]),
                    (1, vec![0, 1], vec![Busy, BadAuth]),
                ],
                results: vec!["transient", "misconfigured"],
            },
            Case {
                name: "a job with no outcome on the last upstream is transient",
                health: vec![ok()],
                jobs: 2,
                steps: vec![(0, vec![0, 1], vec![Ok, Nothing])],
                results: vec!["delivered", "transient"],
            },
            Case {
                name: "an upstream cooling down is skipped",
                health: vec![cooling(NOW + 1), ok()],
                jobs: 1,
                steps: vec![(1, vec![0], vec![Refused])],
                results: vec!["transient"],
            },
            Case {
                name: "when all cool down, the one that ends first probes alone",
                health: vec![cooling(NOW + 9_000), cooling(NOW + 5_000)],
                jobs: 1,
                steps: vec![(1, vec![0], vec![Refused])],
                results: vec!["transient"],
            },
            Case {
                name: "no upstream configured",
                health: vec![],
                jobs: 2,
                steps: vec![],
                results: vec!["transient"; 2],
            },
            Case {
                name: "no jobs, no session",
                health: vec![ok()],
                jobs: 0,
                steps: vec![],
                results: vec![],
            },
        ];
        for case in cases {
            let name = case.name;
            let recipients = (0..case.jobs)
                .map(|j| vec![format!("r{j}@x.net")])
                .collect();
            let mut f = Failover::new(labels(case.health.len()), case.health, NOW, recipients);
            for (upstream, jobs, got) in case.steps {
                let session = f
                    .next_session()
                    .unwrap_or_else(|| panic!("{name}: ended early"));
                assert_eq!(
                    (session.upstream, &session.jobs),
                    (upstream, &jobs),
                    "{name}"
                );
                let all_same = got.iter().all(|g| matches!(g, Refused))
                    || got.iter().all(|g| matches!(g, BadAuth));
                let end = SessionEnd {
                    outcomes: jobs
                        .iter()
                        .zip(&got)
                        .map(|(&j, &g)| transaction(j, g))
                        .collect(),
                    failure: if all_same { failure(got[0]) } else { None },
                };
                f.session_ended(end, &SETTINGS, NOW);
            }
            assert_eq!(f.next_session(), None, "{name}: one session too many");
            let got: Vec<&str> = f.into_reports().iter().map(|r| kind(&r.result)).collect();
            assert_eq!(got, case.results, "{name}");
        }
    }

    #[test]
    fn a_job_without_outcome_keeps_its_recipients() {
        let rcpts = vec!["a@x.net".to_string(), "b@x.net".to_string()];
        let mut f = Failover::new(labels(1), vec![], NOW, vec![rcpts.clone()]);
        f.session_ended(SessionEnd::default(), &SETTINGS, NOW);
        let r = &f.into_reports()[0];
        assert_eq!(r.remaining, rcpts);
        assert_eq!(r.detail, "up0:465: no outcome recorded");
        assert!(r.try_next_upstream);
    }

    #[test]
    fn with_no_upstream_the_report_says_so() {
        let f = Failover::new(vec![], vec![], NOW, vec![vec!["a@x.net".into()]]);
        assert_eq!(f.next_session(), None);
        let r = &f.into_reports()[0];
        assert_eq!(r.detail, "no upstream configured");
        assert!(r.remaining.is_empty());
        assert!(!r.try_next_upstream);
    }

    #[test]
    fn each_session_end_changes_its_upstreams_health() {
        let mut f = Failover::new(labels(2), vec![], NOW, vec![vec!["a@x.net".into()]]);
        let refused = SessionEnd {
            outcomes: vec![transaction(0, Got::Refused)],
            failure: failure(Got::Refused),
        };
        let change = f.session_ended(refused, &SETTINGS, NOW).unwrap();
        assert_eq!((change.upstream, change.label.as_str()), (0, "up0:465"));
        assert_eq!(change.record.skip_until_ms, NOW + 60_000);
        assert!(matches!(change.notice, Some(Notice::CoolingDown(_))));
        // The second upstream was healthy and stays so: nothing to store.
        let ok = SessionEnd {
            outcomes: vec![transaction(0, Got::Ok)],
            failure: None,
        };
        assert_eq!(f.session_ended(ok, &SETTINGS, NOW), None);

        let mut f = Failover::new(labels(1), vec![], NOW, vec![vec!["a@x.net".into()]]);
        let bad = SessionEnd {
            outcomes: vec![transaction(0, Got::BadAuth)],
            failure: failure(Got::BadAuth),
        };
        let change = f.session_ended(bad, &SETTINGS, NOW).unwrap();
        assert!(matches!(change.notice, Some(Notice::Paused(ref t)) if t.contains("535")));
        assert!(change.record.paused_reason.is_some());
    }

    #[test]
    fn a_recovered_upstream_is_reset() {
        let mut f = Failover::new(labels(1), vec![cooling(NOW - 1)], NOW, vec![vec![]]);
        let end = SessionEnd {
            outcomes: vec![transaction(0, Got::Ok)],
            failure: None,
        };
        let change = f.session_ended(end, &SETTINGS, NOW).unwrap();
        assert_eq!(change.record, UpstreamHealth::default());
        assert_eq!(change.notice, None);
    }

    #[test]
    fn a_session_is_tallied_for_its_shaper() {
        let throttled = TransactionOutcome::summarise(
            1,
            vec![rcpt(
                "r1@x.net",
                OutcomeKind::Transient,
                454,
                "4.7.0 Throttling failure: Maximum sending rate exceeded.",
            )],
            Outcome::new(OutcomeKind::Transient, Cause::Reply),
        );
        let end = SessionEnd {
            outcomes: vec![
                transaction(0, Got::Ok),
                Some(throttled),
                transaction(2, Got::Gone),
                None,
            ],
            failure: None,
        };
        assert_eq!(
            tally(&end),
            Tally {
                accepted: 1,
                returned: 2,
                throttled: true
            }
        );
        let calm = SessionEnd {
            outcomes: vec![transaction(0, Got::Busy)],
            failure: None,
        };
        assert_eq!(tally(&calm), Tally::default());
    }
}
