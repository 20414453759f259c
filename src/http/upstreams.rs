//! `/v1/upstreams` without the HTTP: which configured upstream a path's name
//! means, and the answers of `GET /v1/upstreams` and `POST
//! /v1/upstreams/{name}/resume`.
//!
//! An upstream is named by its label, `host:port` (percent-encoded in a
//! path). The view shows what an operator needs to act: host, port,
//! transport, priority, whether it authenticates, its state, its latest
//! sessions and its totals. Upstreams serve every tenant: this is an
//! operator's view, behind the `admin` scope.
//! Must not: perform I/O, or show a credential (user name or password) or
//! anything a session carried (addresses, messages).

use serde_json::{Value, json};

use crate::accept::error::ApiError;
use crate::accept::{AuthenticatedKey, Scope};
use crate::delivery::shaping::{Limits, ShaperView};
use crate::delivery::{
    SessionRecord, SessionTotals, Upstream, UpstreamHealth, UpstreamSecurity, UpstreamState,
};
use crate::events::time::rfc3339_ms;

use super::suppressions::percent_decoded;

/// What storage holds about one upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub health: UpstreamHealth,
    pub totals: SessionTotals,
    /// The latest sessions, newest first.
    pub recent: Vec<SessionRecord>,
    /// Its limits (`UPSTREAM_LIMITS`), if it has any.
    pub limits: Option<Limits>,
    /// Its shaper's state, when it has limits and the shaper answered.
    pub shaping: Option<ShaperView>,
}

/// Both routes are the operator's: the upstreams serve every tenant, so a
/// key needs the `admin` scope.
pub fn authorize(key: &AuthenticatedKey) -> Result<(), ApiError> {
    if key.has_scope(Scope::Admin) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "insufficient_scope",
        "Authorization",
        "the upstreams serve every tenant: this route needs a key with the `admin` scope",
    ))
}

/// The index of the upstream `segment` (a path segment, percent-encoded)
/// names; 404 when none is configured under that name.
pub fn find(upstreams: &[Upstream], segment: &str) -> Result<usize, ApiError> {
    let name = percent_decoded(segment).unwrap_or_default();
    upstreams
        .iter()
        .position(|u| !name.is_empty() && u.label().eq_ignore_ascii_case(&name))
        .ok_or_else(|| ApiError::not_found("no upstream is configured under that name (host:port)"))
}

fn transport(security: UpstreamSecurity) -> &'static str {
    match security {
        UpstreamSecurity::ImplicitTls => "smtps",
        UpstreamSecurity::StartTls => "starttls",
        UpstreamSecurity::Insecure => "smtp",
    }
}

fn session(r: &SessionRecord) -> Value {
    json!({
        "at": rfc3339_ms(r.at_ms),
        "outcome": r.outcome.as_str(),
        "code": r.code,
        "messages_sent": r.messages_sent,
        "duration_ms": r.duration_ms,
    })
}

fn state(health: &UpstreamHealth, now_ms: u64) -> Value {
    let state = UpstreamState::of(health, now_ms);
    let mut v = json!({
        "state": state.as_str(),
        "consecutive_failures": health.consecutive_failures,
    });
    match state {
        UpstreamState::Healthy => {}
        UpstreamState::CoolingDown { until_ms } => {
            v["until"] = json!(rfc3339_ms(until_ms));
        }
        UpstreamState::Paused {
            reason,
            since_ms,
            until_ms,
        } => {
            v["reason"] = json!(reason);
            v["since"] = json!(since_ms.map(rfc3339_ms));
            v["until"] = json!(until_ms.map(rfc3339_ms));
        }
    }
    v
}

/// The shaping part of an upstream's view: `null` without limits; the
/// state's fields `null` when its shaper could not be asked.
fn shaping(stored: &Stored) -> Value {
    let Some(limits) = stored.limits else {
        return Value::Null;
    };
    let v = stored.shaping.as_ref();
    json!({
        "limits": {
            "rate": limits.rate,
            "sessions": limits.sessions,
            "per_day": limits.per_day,
            "recipients_per_message": limits.recipients_per_message,
            "recipients_per_session": limits.recipients_per_session,
        },
        "current_rate": v.and_then(|v| v.current_rate),
        "throttled_since": v.and_then(|v| v.throttled_since_ms).map(rfc3339_ms),
        "sessions_in_use": v.map(|v| v.sessions_in_use),
        "today": v.map(|v| v.today),
    })
}

/// One upstream as `GET /v1/upstreams` shows it; `priority` is its place
/// in the configuration (0 is tried first).
pub fn upstream_view(upstream: &Upstream, priority: usize, stored: &Stored, now_ms: u64) -> Value {
    let totals = &stored.totals;
    json!({
        "name": upstream.label(),
        "host": upstream.host,
        "port": upstream.port,
        "transport": transport(upstream.security),
        "priority": priority,
        "auth": upstream.username.is_some(),
        "health": state(&stored.health, now_ms),
        "shaping": shaping(stored),
        "recent_sessions": stored.recent.iter().map(session).collect::<Vec<_>>(),
        "totals": {
            "sessions": totals.sessions,
            "failed": totals.failed,
            "messages_sent": totals.messages_sent,
            "mean_duration_ms": totals.mean_duration_ms(),
        },
    })
}

/// The answer of `GET /v1/upstreams`: every configured upstream in priority
/// order; `stored` holds each one's records, in the same order.
pub fn list_view(upstreams: &[Upstream], stored: &[Stored], now_ms: u64) -> Value {
    let empty = Stored::default();
    let data: Vec<Value> = upstreams
        .iter()
        .enumerate()
        .map(|(i, u)| upstream_view(u, i, stored.get(i).unwrap_or(&empty), now_ms))
        .collect();
    json!({ "object": "list", "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::SessionOutcome;

    fn upstreams() -> Vec<Upstream> {
        [
            "smtps://apikey:SG.secret@smtp.sendgrid.net:465",
            "smtp://user:pa55@Relay.Example.net",
            "smtp+insecure://127.0.0.1:2525",
        ]
        .iter()
        .map(|u| Upstream::parse(u).unwrap())
        .collect()
    }

    #[test]
    fn only_admin_keys_see_the_upstreams() {
        let key = |scopes: Vec<Scope>| AuthenticatedKey {
            id: "k".into(),
            domains: vec![],
            tenant: "t".into(),
            streams: Default::default(),
            unsubscribe_base_url: None,
            scopes,
            limits: Default::default(),
        };
        let table = [
            (vec![Scope::Admin], true),
            (vec![Scope::Send, Scope::Admin], true),
            (Scope::ALL.to_vec(), true),
            (vec![Scope::Read], false),
            (vec![Scope::Send, Scope::Read], false),
            (vec![], false),
        ];
        for (scopes, want) in table {
            let got = authorize(&key(scopes.clone()));
            assert_eq!(got.is_ok(), want, "{scopes:?}");
            if let Err(e) = got {
                assert_eq!((e.status, e.rule), (403, "insufficient_scope"));
            }
        }
    }

    #[test]
    fn a_name_finds_its_upstream() {
        let ups = upstreams();
        let table: &[(&str, Option<usize>)] = &[
            ("smtp.sendgrid.net:465", Some(0)),
            ("smtp.sendgrid.net%3A465", Some(0)),
            ("relay.example.net:587", Some(1)),
            ("RELAY.example.net%3a587", Some(1)),
            ("127.0.0.1:2525", Some(2)),
            ("127.0.0.1", None),
            ("smtp.sendgrid.net:587", None),
            ("", None),
            ("%zz", None),
            ("%ff%fe", None),
            ("apikey:SG.secret@smtp.sendgrid.net:465", None),
        ];
        for (segment, want) in table {
            let got = find(&ups, segment);
            match want {
                Some(i) => assert_eq!(got.ok(), Some(*i), "{segment}"),
                None => {
                    let e = got.unwrap_err();
                    assert_eq!(e.status, 404, "{segment}");
                }
            }
        }
    }

    #[test]
    fn the_view_shows_no_credential() {
        let ups = upstreams();
        let stored = vec![Stored::default(); 3];
        let view = list_view(&ups, &stored, 1_000).to_string();
        for secret in ["apikey", "SG.secret", "user", "pa55"] {
            assert!(!view.contains(secret), "{secret} in {view}");
        }
        let v = list_view(&ups, &stored, 1_000);
        let summary: Vec<(String, String, u64, bool)> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["name"].as_str().unwrap().to_string(),
                    u["transport"].as_str().unwrap().to_string(),
                    u["priority"].as_u64().unwrap(),
                    u["auth"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("smtp.sendgrid.net:465".into(), "smtps".into(), 0, true),
                ("Relay.Example.net:587".into(), "starttls".into(), 1, true),
                ("127.0.0.1:2525".into(), "smtp".into(), 2, false),
            ]
        );
    }

    #[test]
    fn states_sessions_and_totals() {
        let ups = upstreams();
        let now = 1_700_000_000_000;
        let paused = Stored {
            health: UpstreamHealth {
                consecutive_failures: 1,
                skip_until_ms: now + 60_000,
                paused_reason: Some("Configuration: 535 5.7.8 bad credentials".into()),
                paused_since_ms: Some(now - 1_000),
            },
            totals: SessionTotals {
                sessions: 1,
                failed: 1,
                messages_sent: 0,
                duration_ms: 30,
            },
            recent: vec![SessionRecord {
                at_ms: now - 1_030,
                outcome: SessionOutcome::Configuration,
                code: Some(535),
                messages_sent: 0,
                duration_ms: 30,
            }],
            ..Stored::default()
        };
        let cooling = Stored {
            health: UpstreamHealth {
                consecutive_failures: 3,
                skip_until_ms: now + 5_000,
                ..UpstreamHealth::default()
            },
            ..Stored::default()
        };
        let v = list_view(&ups, &[paused, cooling], now);
        let d = &v["data"];
        assert_eq!(
            d[0]["health"],
            json!({
                "state": "paused",
                "consecutive_failures": 1,
                "reason": "Configuration: 535 5.7.8 bad credentials",
                "since": "2023-11-14T22:13:19.000Z",
                "until": "2023-11-14T22:14:20.000Z",
            })
        );
        assert_eq!(
            d[0]["recent_sessions"],
            json!([{
                "at": "2023-11-14T22:13:18.970Z",
                "outcome": "configuration",
                "code": 535,
                "messages_sent": 0,
                "duration_ms": 30,
            }])
        );
        assert_eq!(
            d[0]["totals"],
            json!({"sessions": 1, "failed": 1, "messages_sent": 0, "mean_duration_ms": 30})
        );
        assert_eq!(
            d[1]["health"],
            json!({"state": "cooling_down", "consecutive_failures": 3,
                   "until": "2023-11-14T22:13:25.000Z"})
        );
        // Shaping: null without limits; the state when its shaper answered.
        assert_eq!(d[0]["shaping"], Value::Null);
        let limits = Limits {
            rate: Some(20.0),
            sessions: Some(2),
            ..Limits::default()
        };
        let shaped = Stored {
            limits: Some(limits),
            shaping: Some(ShaperView {
                limits,
                current_rate: Some(10.0),
                throttled_since_ms: Some(now),
                sessions_in_use: 1,
                today: 42,
                change: None,
            }),
            ..Stored::default()
        };
        assert_eq!(
            upstream_view(&ups[0], 0, &shaped, now)["shaping"],
            json!({"limits": {"rate": 20.0, "sessions": 2, "per_day": null,
                              "recipients_per_message": null, "recipients_per_session": null},
                   "current_rate": 10.0, "throttled_since": "2023-11-14T22:13:20.000Z",
                   "sessions_in_use": 1, "today": 42})
        );
        let unknown = Stored {
            shaping: None,
            ..shaped
        };
        assert_eq!(
            upstream_view(&ups[0], 0, &unknown, now)["shaping"]["today"],
            Value::Null
        );
        // No stored records: healthy, no sessions, no mean yet.
        assert_eq!(
            d[2]["health"],
            json!({"state": "healthy", "consecutive_failures": 0})
        );
        assert_eq!(d[2]["recent_sessions"], json!([]));
        assert_eq!(d[2]["totals"]["mean_duration_ms"], Value::Null);
    }
}
