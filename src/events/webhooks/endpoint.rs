//! A webhook endpoint as stored, and which endpoints an event goes to.
//!
//! An endpoint belongs to one tenant and receives only that tenant's events,
//! only the types its filter lists (an empty filter means every type,
//! including types added later), and only while it is enabled: a `410 Gone`
//! disables it for good (the receiver said it is gone), and so does deleting
//! it. After a rotation the previous secret keeps signing, beside the new
//! one, for [`ROTATION_GRACE_MS`], so receivers can switch without a gap.
//! Must not: perform I/O or read the clock.

use serde::Deserialize;

use crate::events::{EmailEvent, EventType};

use super::signing::SigningSecret;
use super::task::WebhookTask;

/// How long the secret replaced by a rotation keeps signing: 24 hours.
pub const ROTATION_GRACE_MS: u64 = 24 * 60 * 60 * 1000;

/// An endpoint's status: `enabled` or `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
        }
    }
}

/// Why an endpoint was disabled: the receiver answered `410 Gone`.
pub const DISABLED_BY_GONE: &str = "the endpoint answered 410 Gone";

/// One row of `webhook_endpoints` as D1 hands it over (numbers as floating point).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EndpointRow {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub description: Option<String>,
    /// The filter as a JSON list of event types; empty means every type.
    pub events: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<f64>,
    pub status: String,
    pub disabled_reason: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

impl EndpointRow {
    pub fn is_enabled(&self) -> bool {
        self.status == EndpointStatus::Enabled.as_str()
    }

    /// The filter's event types as stored (names this build does not know
    /// are kept, and match nothing).
    pub fn filter(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }

    /// Whether the endpoint takes events of this type.
    pub fn wants(&self, event_type: &str) -> bool {
        let filter = self.filter();
        filter.is_empty() || filter.iter().any(|t| t == event_type)
    }

    /// The secrets that sign a delivery made at `now_ms`: the current one,
    /// then the previous one while its grace period lasts. A stored secret
    /// that cannot be read signs nothing.
    pub fn signing_secrets(&self, now_ms: u64) -> Vec<SigningSecret> {
        let mut secrets: Vec<SigningSecret> =
            SigningSecret::parse(&self.secret).into_iter().collect();
        let previous_in_force = self
            .previous_secret_expires_at
            .is_some_and(|until| (now_ms as f64) < until);
        if previous_in_force
            && let Some(previous) = self.previous_secret.as_deref()
            && let Ok(previous) = SigningSecret::parse(previous)
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// Reads an event filter from a request: known event type names, each
/// once. An empty list means every type.
pub fn parse_filter(names: &[String]) -> Result<Vec<EventType>, String> {
    let mut types: Vec<EventType> = Vec::new();
    for name in names {
        let t = EventType::parse(name).ok_or_else(|| {
            format!(
                "unknown event type {name:?}; known types: {}",
                EventType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

/// The tasks that carry `events` to the endpoints that want them: for each
/// event in order, each enabled endpoint of the event's tenant whose filter
/// takes its type. Endpoints of other tenants never receive anything.
pub fn fan_out(events: &[EmailEvent], endpoints: &[EndpointRow]) -> Vec<WebhookTask> {
    let mut tasks = Vec::new();
    for event in events {
        let event_type = event.event_type.as_str();
        for endpoint in endpoints {
            if endpoint.tenant == event.tenant
                && endpoint.is_enabled()
                && endpoint.wants(event_type)
            {
                tasks.push(WebhookTask {
                    endpoint_id: endpoint.id.clone(),
                    tenant: event.tenant.clone(),
                    event_id: event.id.clone(),
                    event_type: event_type.to_string(),
                    payload: event.payload_json(),
                    attempt: 0,
                });
            }
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::DeliveryJob;

    fn endpoint(id: &str, tenant: &str, events: &str, status: &str) -> EndpointRow {
        EndpointRow {
            id: id.into(),
            tenant: tenant.into(),
            url: format!("https://{id}.example.com/"),
            description: None,
            events: events.into(),
            secret: SigningSecret::from_random([1; 32]).reveal(),
            previous_secret: None,
            previous_secret_expires_at: None,
            status: status.into(),
            disabled_reason: None,
            created_at: 0.0,
            updated_at: 0.0,
        }
    }

    fn event(tenant: &str, event_type: EventType, n: u8) -> EmailEvent {
        let mut job = DeliveryJob::sample("msg_1", "MIME");
        job.tenant = tenant.into();
        EmailEvent::for_job(&job, event_type, Some("a@example.net"), 5, &[n; 16])
    }

    #[test]
    fn events_go_only_to_their_tenants_enabled_endpoints_that_want_them() {
        let endpoints = [
            endpoint("all", "acme", "[]", "enabled"),
            endpoint("bounces", "acme", r#"["email.bounced"]"#, "enabled"),
            endpoint("off", "acme", "[]", "disabled"),
            endpoint("other", "globex", "[]", "enabled"),
            endpoint("future", "acme", r#"["email.not_yet_known"]"#, "enabled"),
        ];
        let events = [
            event("acme", EventType::Sent, 1),
            event("acme", EventType::Bounced, 2),
            event("globex", EventType::Sent, 3),
        ];
        let tasks = fan_out(&events, &endpoints);
        let routed: Vec<(&str, &str)> = tasks
            .iter()
            .map(|t| (t.endpoint_id.as_str(), t.event_type.as_str()))
            .collect();
        assert_eq!(
            routed,
            [
                ("all", "email.sent"),
                ("all", "email.bounced"),
                ("bounces", "email.bounced"),
                ("other", "email.sent"),
            ]
        );
        for (task, tenant) in tasks.iter().zip(["acme", "acme", "acme", "globex"]) {
            assert_eq!(task.tenant, tenant);
            assert_eq!(task.attempt, 0);
        }
        // The task carries the event's id and its payload exactly.
        assert_eq!(tasks[0].event_id, events[0].id);
        assert_eq!(tasks[0].payload, events[0].payload_json());
    }

    #[test]
    fn the_previous_secret_signs_until_its_grace_ends() {
        let mut e = endpoint("e", "acme", "[]", "enabled");
        let previous = SigningSecret::from_random([2; 32]);
        e.previous_secret = Some(previous.reveal());
        e.previous_secret_expires_at = Some(1_000.0);
        let current = SigningSecret::parse(&e.secret).unwrap();
        assert_eq!(e.signing_secrets(999), [current.clone(), previous]);
        assert_eq!(e.signing_secrets(1_000), std::slice::from_ref(&current));
        // A stored secret that cannot be read signs nothing.
        e.previous_secret = Some("whsec_broken!".into());
        assert_eq!(e.signing_secrets(0), [current]);
    }

    #[test]
    fn filters_name_known_types_once() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_filter(&[]), Ok(vec![]));
        assert_eq!(
            parse_filter(&names(&["email.sent", "email.failed", "email.sent"])),
            Ok(vec![EventType::Sent, EventType::Failed])
        );
        let e = parse_filter(&names(&["email.sent", "sent"])).unwrap_err();
        assert!(
            e.contains("\"sent\"") && e.contains("email.delivery_delayed"),
            "{e}"
        );
    }
}
