//! Routing: which upstreams may carry a message, by its tenant, its stream
//! and its From domain (`UPSTREAM_ROUTES`). Marketing mail can go through
//! one smarthost and password resets through another, with the usual
//! priority order and failover inside each route's list.
//!
//! Rules are tried in order; the first whose every condition holds names the
//! upstreams, in priority order. A message no rule matches may use every
//! upstream in `SMTP_UPSTREAMS` order, as without routes.
//!
//! Owns the rule format, matching, and splitting a batch into groups that
//! share a route. Must not: know how a session runs, or quote a setting's
//! text in an error (errors name the rule by position).

use serde::Deserialize;

use crate::queue::DeliveryJob;

use super::upstream::Upstream;

/// At most this many rules: a table an operator reads, not a database.
pub const MAX_ROUTES: usize = 100;

/// One rule as written in `UPSTREAM_ROUTES`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    from_domain: Option<String>,
    upstreams: Vec<String>,
}

/// One rule: conditions (each `None` matches anything) and the upstreams,
/// as indexes into `SMTP_UPSTREAMS`, in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub tenant: Option<String>,
    pub stream: Option<String>,
    /// Lower case. `*.example.com` matches the subdomains of example.com
    /// (not example.com itself).
    pub from_domain: Option<String>,
    pub upstreams: Vec<usize>,
}

/// The routing table; empty when `UPSTREAM_ROUTES` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    rules: Vec<Route>,
}

/// What a message is routed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteKey<'a> {
    pub tenant: &'a str,
    /// `transactional` when the message names none.
    pub stream: &'a str,
    /// The From address's domain, any case.
    pub from_domain: &'a str,
}

/// A share of a batch that goes the same way: the upstreams to try, in
/// order, and the jobs (indexes into the batch), in batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteGroup {
    pub upstreams: Vec<usize>,
    pub jobs: Vec<usize>,
}

/// What `job` is routed by: its tenant, its stream (`transactional` when it
/// names none) and the domain of its From address (of its return path for
/// a job written before jobs carried the From address).
pub fn route_key(job: &DeliveryJob) -> RouteKey<'_> {
    let from = job.from.as_deref().unwrap_or(&job.mail_from);
    RouteKey {
        tenant: &job.tenant,
        stream: job.stream.as_deref().unwrap_or("transactional"),
        from_domain: from
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain.trim_end_matches('>')),
    }
}

impl Routes {
    /// Parses `UPSTREAM_ROUTES`: a JSON list of
    /// `{"tenant"?, "stream"?, "from_domain"?, "upstreams": ["host:port", ...]}`,
    /// upstreams named as `GET /v1/upstreams` names them. The error names the
    /// rule by position and never quotes its text.
    pub fn parse(raw: &str, upstreams: &[Upstream]) -> Result<Routes, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Routes::default());
        }
        let texts: Vec<RuleText> = serde_json::from_str(raw).map_err(|_| {
            "must be a JSON list of {tenant?, stream?, from_domain?, upstreams} objects".to_string()
        })?;
        if texts.len() > MAX_ROUTES {
            return Err(format!("has more than {MAX_ROUTES} rules"));
        }
        let labels: Vec<String> = upstreams.iter().map(Upstream::label).collect();
        let rules = texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| rule(i + 1, text, &labels))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Routes { rules })
    }

    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The upstreams a message may use, in priority order, out of `count`
    /// configured ones.
    pub fn pick(&self, key: RouteKey<'_>, count: usize) -> Vec<usize> {
        self.rules
            .iter()
            .find(|r| r.matches(key))
            .map(|r| r.upstreams.clone())
            .unwrap_or_else(|| (0..count).collect())
    }

    /// Splits a batch into groups that share a route, in the order each
    /// route first appears; jobs keep their batch order inside a group.
    pub fn group(&self, keys: &[RouteKey<'_>], count: usize) -> Vec<RouteGroup> {
        let mut groups: Vec<RouteGroup> = Vec::new();
        for (job, key) in keys.iter().enumerate() {
            let upstreams = self.pick(*key, count);
            match groups.iter_mut().find(|g| g.upstreams == upstreams) {
                Some(group) => group.jobs.push(job),
                None => groups.push(RouteGroup {
                    upstreams,
                    jobs: vec![job],
                }),
            }
        }
        groups
    }
}

impl Route {
    fn matches(&self, key: RouteKey<'_>) -> bool {
        let tenant = self.tenant.as_deref().is_none_or(|t| t == key.tenant);
        let stream = self.stream.as_deref().is_none_or(|s| s == key.stream);
        let domain = self.from_domain.as_deref().is_none_or(|d| {
            let from = key.from_domain.to_ascii_lowercase();
            match d.strip_prefix("*.") {
                Some(parent) => from
                    .strip_suffix(parent)
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                None => from == d,
            }
        });
        tenant && stream && domain
    }
}

fn rule(position: usize, text: RuleText, labels: &[String]) -> Result<Route, String> {
    let problem = |what: &str| format!("rule {position}: {what}");
    let non_empty = |v: Option<String>, field: &str| match v {
        Some(s) if s.trim().is_empty() => Err(problem(&format!("has an empty {field}"))),
        other => Ok(other.map(|s| s.trim().to_string())),
    };
    let tenant = non_empty(text.tenant, "tenant")?;
    let stream = non_empty(text.stream, "stream")?;
    let from_domain = non_empty(text.from_domain, "from_domain")?.map(|d| d.to_ascii_lowercase());
    if let Some(d) = &from_domain {
        let bare = d.strip_prefix("*.").unwrap_or(d);
        if bare.is_empty()
            || bare.contains('*')
            || !bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(problem(
                "has a from_domain that is not a domain (or *. and a domain)",
            ));
        }
    }
    if text.upstreams.is_empty() {
        return Err(problem("lists no upstream"));
    }
    let mut upstreams = Vec::with_capacity(text.upstreams.len());
    for name in &text.upstreams {
        let index = labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| problem("names an upstream that is not in SMTP_UPSTREAMS"))?;
        if upstreams.contains(&index) {
            return Err(problem("names an upstream twice"));
        }
        upstreams.push(index);
    }
    Ok(Route {
        tenant,
        stream,
        from_domain,
        upstreams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams() -> Vec<Upstream> {
        [
            "smtp://a.example:587",
            "smtp://b.example:2525",
            "smtps://c.example",
        ]
        .iter()
        .map(|u| Upstream::parse(u).unwrap())
        .collect()
    }

    fn key<'a>(tenant: &'a str, stream: &'a str, from_domain: &'a str) -> RouteKey<'a> {
        RouteKey {
            tenant,
            stream,
            from_domain,
        }
    }

    const TABLE: &str = r#"[
        {"stream": "marketing", "upstreams": ["b.example:2525"]},
        {"tenant": "acme", "from_domain": "*.acme.test", "upstreams": ["c.example:465", "a.example:587"]},
        {"from_domain": "Billing.Example", "upstreams": ["c.example:465"]}
    ]"#;

    #[test]
    fn rules_pick_upstreams_in_order_and_the_first_match_wins() {
        let routes = Routes::parse(TABLE, &upstreams()).unwrap();
        let cases: &[(RouteKey, &[usize])] = &[
            (key("t", "marketing", "x.test"), &[1]),
            // The stream rule comes first, even for acme.
            (key("acme", "marketing", "mail.acme.test"), &[1]),
            (key("acme", "transactional", "mail.acme.test"), &[2, 0]),
            // `*.acme.test` is the subdomains only.
            (key("acme", "transactional", "acme.test"), &[0, 1, 2]),
            (key("acme", "transactional", "evilacme.test"), &[0, 1, 2]),
            (key("other", "transactional", "mail.acme.test"), &[0, 1, 2]),
            (key("t", "transactional", "BILLING.example"), &[2]),
            (key("t", "transactional", "x.test"), &[0, 1, 2]),
        ];
        for (k, want) in cases {
            assert_eq!(routes.pick(*k, 3), *want, "{k:?}");
        }
    }

    #[test]
    fn a_job_is_routed_by_tenant_stream_and_from_domain() {
        let mut job = DeliveryJob::sample("m1", "body");
        job.tenant = "acme".into();
        job.stream = None;
        job.from = Some("news@Mail.Acme.test".into());
        job.mail_from = "b+x@rp.other.test".into();
        assert_eq!(
            route_key(&job),
            key("acme", "transactional", "Mail.Acme.test")
        );
        job.stream = Some("marketing".into());
        job.from = None;
        assert_eq!(route_key(&job), key("acme", "marketing", "rp.other.test"));
    }

    #[test]
    fn no_rules_means_every_upstream() {
        let routes = Routes::parse("", &upstreams()).unwrap();
        assert!(routes.is_empty());
        assert_eq!(routes.pick(key("t", "marketing", "x"), 3), vec![0, 1, 2]);
    }

    #[test]
    fn a_batch_splits_into_groups_by_route_keeping_order() {
        let routes = Routes::parse(TABLE, &upstreams()).unwrap();
        let keys = [
            key("t", "transactional", "x.test"),
            key("t", "marketing", "x.test"),
            key("u", "transactional", "y.test"),
            key("t", "marketing", "z.test"),
        ];
        assert_eq!(
            routes.group(&keys, 3),
            vec![
                RouteGroup {
                    upstreams: vec![0, 1, 2],
                    jobs: vec![0, 2]
                },
                RouteGroup {
                    upstreams: vec![1],
                    jobs: vec![1, 3]
                },
            ]
        );
        assert_eq!(Routes::default().group(&keys, 2).len(), 1);
    }

    #[test]
    fn bad_tables_are_refused_by_rule_position_without_quoting() {
        let cases = [
            ("{}", "JSON list"),
            ("[{\"upstreams\": []}]", "rule 1: lists no upstream"),
            (
                "[{\"upstreams\": [\"secret-host:1\"]}]",
                "rule 1: names an upstream that is not",
            ),
            (
                "[{\"upstreams\": [\"a.example:587\"]}, {\"upstreams\": [\"a.example:587\", \"a.example:587\"]}]",
                "rule 2: names an upstream twice",
            ),
            (
                "[{\"stream\": \" \", \"upstreams\": [\"a.example:587\"]}]",
                "rule 1: has an empty stream",
            ),
            (
                "[{\"from_domain\": \"*\", \"upstreams\": [\"a.example:587\"]}]",
                "not a domain",
            ),
            (
                "[{\"from_domain\": \"a b\", \"upstreams\": [\"a.example:587\"]}]",
                "not a domain",
            ),
            (
                "[{\"sender\": \"x\", \"upstreams\": [\"a.example:587\"]}]",
                "JSON list",
            ),
        ];
        for (raw, want) in cases {
            let e = Routes::parse(raw, &upstreams()).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
            assert!(!e.contains("secret-host"), "{e}");
        }
        let many = format!(
            "[{}]",
            vec![r#"{"upstreams": ["a.example:587"]}"#; MAX_ROUTES + 1].join(",")
        );
        assert!(Routes::parse(&many, &upstreams()).is_err());
    }
}
