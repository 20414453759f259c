//! The webhooks queue's message: one event for one endpoint, and how many
//! attempts it has had. The body is sealed under `QUEUE_SECRET` like the
//! jobs edgerelay puts on its own queues (`queue::seal`): any Worker of the
//! account could send to the queue, and an unsealed task would make
//! edgerelay sign whatever it carried with an endpoint's secret.
//! Must not: perform I/O; the edge sends and receives the values.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::queue::{Purpose, QueueSecrets};

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTask {
    pub endpoint_id: String,
    pub tenant: String,
    /// The event's id: the `webhook-id` of every attempt.
    pub event_id: String,
    /// `email.sent`, ...: for the attempts list.
    pub event_type: String,
    /// The body exactly as it is sent and signed.
    pub payload: String,
    /// Attempts made so far: 0 before the first.
    #[serde(default)]
    pub attempt: u32,
}

impl WebhookTask {
    /// The queue message's body: the task's JSON text beside its seal.
    pub fn seal(&self, secrets: &QueueSecrets) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let seal = secrets.seal(Purpose::Webhook, &text);
        json!({ "webhook": text, "seal": seal }).to_string()
    }

    /// Reads a queue message's body; refuses anything edgerelay did not seal.
    pub fn open(body: &str, secrets: &QueueSecrets) -> Result<Self, String> {
        let body: Value =
            serde_json::from_str(body).map_err(|_| "not a webhook task".to_string())?;
        let text = body
            .get("webhook")
            .and_then(Value::as_str)
            .ok_or("not a webhook task")?;
        let seal = body.get("seal").and_then(Value::as_str);
        secrets
            .open(Purpose::Webhook, text, seal)
            .map_err(|e| format!("a webhook task was refused: {e}"))?;
        serde_json::from_str(text).map_err(|e| format!("a sealed webhook task is unreadable: {e}"))
    }

    /// The same task for its next attempt.
    pub fn next(&self) -> Self {
        WebhookTask {
            attempt: self.attempt.saturating_add(1),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueSecrets;

    fn secrets() -> QueueSecrets {
        QueueSecrets::parse("test-queue-secret-0123456789abcdef").unwrap()
    }

    fn task() -> WebhookTask {
        WebhookTask {
            endpoint_id: "wh_1".into(),
            tenant: "acme".into(),
            event_id: "evt_1".into(),
            event_type: "email.sent".into(),
            payload: r#"{"type":"email.sent"}"#.into(),
            attempt: 0,
        }
    }

    #[test]
    fn sealed_tasks_round_trip() {
        let body = task().seal(&secrets());
        assert_eq!(WebhookTask::open(&body, &secrets()), Ok(task()));
        assert_eq!(task().next().attempt, 1);
    }

    #[test]
    fn forged_or_altered_tasks_are_refused() {
        let body: Value = serde_json::from_str(&task().seal(&secrets())).unwrap();
        let other = QueueSecrets::parse("another-queue-secret-0123456789abcdef").unwrap();
        let mut altered = body.clone();
        let text = body["webhook"].as_str().unwrap().replace("acme", "evil");
        altered["webhook"] = Value::String(text);
        let mut unsealed = body.clone();
        unsealed.as_object_mut().unwrap().remove("seal");
        // A job sealed for the jobs queue is not a webhook task.
        let text = body["webhook"].as_str().unwrap();
        let as_job = json!({"webhook": text, "seal": secrets().seal(Purpose::Deliver, text)});
        for (what, forged, with) in [
            ("other secret", body.clone(), &other),
            ("altered", altered, &secrets()),
            ("unsealed", unsealed, &secrets()),
            ("other purpose", as_job, &secrets()),
            ("not a task", json!({"job": "x"}), &secrets()),
            ("not json", json!("text"), &secrets()),
        ] {
            assert!(
                WebhookTask::open(&forged.to_string(), with).is_err(),
                "{what}"
            );
        }
    }
}
