//! SNS messages signed in the test with the key of
//! `tests/fixtures/sns/signing-cert.pem` (an openssl self-signed
//! certificate over `src/message/dkim/testdata/rsa2048.pkcs8.pem`), carrying
//! SES notifications in their documented shapes.

use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::json;

use super::*;

const CERT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sns/signing-cert.pem"
));
const KEY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/message/dkim/testdata/rsa2048.pkcs8.pem"
));
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";

fn bounce_notification() -> String {
    json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": "jane@example.net", "action": "failed",
                                          "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                   "timestamp": "2026-11-29T21:30:00.000Z", "feedbackId": "0100"},
        "mail": {"timestamp": "2026-11-29T21:29:00.000Z", "messageId": "0000014a-f4d4-4f89",
                 "source": "news@example.com", "destination": ["jane@example.net"],
                 "tags": {"edgerelay_id": ["4f3c9a0b1d2e3f405162738495a6b7c8"]}},
    })
    .to_string()
}

/// An SNS notification as posted, signed (version 2) over its fields.
fn signed(message: &str, version: &str) -> Vec<u8> {
    let fields = [
        ("Message", message.to_string()),
        (
            "MessageId",
            "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".to_string(),
        ),
        ("Timestamp", "2026-11-29T21:30:01.000Z".to_string()),
        ("TopicArn", TOPIC.to_string()),
        ("Type", "Notification".to_string()),
    ];
    let mut to_sign = String::new();
    for (name, value) in &fields {
        to_sign.push_str(&format!("{name}\n{value}\n"));
    }
    let key = SigningKey::<Sha256>::new(RsaPrivateKey::from_pkcs8_pem(KEY).unwrap());
    let signature = STANDARD.encode(key.sign(to_sign.as_bytes()).to_bytes());
    json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2026-11-29T21:30:01.000Z",
        "SignatureVersion": version,
        "Signature": signature,
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_signed_bounce_verifies_and_reads() {
    let sns = SnsMessage::parse(&signed(&bounce_notification(), "2")).unwrap();
    assert_eq!(sns.topic_arn, TOPIC);
    assert!(cert_url_allowed(&sns.signing_cert_url));
    sns.verify(CERT).unwrap();
    let [event] = read_notification(&sns.message).unwrap().try_into().unwrap();
    assert_eq!(event.provider, Provider::Ses);
    assert_eq!(
        event.kind,
        ProviderEventKind::Bounced {
            class: BounceClass::Hard
        }
    );
    assert_eq!(event.recipient, "jane@example.net");
    assert_eq!(
        event.message_id.as_deref(),
        Some("4f3c9a0b1d2e3f405162738495a6b7c8")
    );
    assert_eq!(event.provider_id.as_deref(), Some("0000014a-f4d4-4f89"));
}

#[test]
fn tampering_and_version_1_are_refused() {
    let body = signed(&bounce_notification(), "2");
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["Message"] = json!(bounce_notification().replace("jane@", "joan@"));
    let tampered = SnsMessage::parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(tampered.verify(CERT), Err(Refused::BadSignature));
    let v1 = SnsMessage::parse(&signed(&bounce_notification(), "1")).unwrap();
    assert!(
        matches!(v1.verify(CERT), Err(Refused::Malformed(m)) if m.contains("SignatureVersion"))
    );
    let sns = SnsMessage::parse(&body).unwrap();
    assert_eq!(sns.verify("not a certificate"), Err(Refused::BadSignature));
    let mut unsigned: Value = serde_json::from_slice(&body).unwrap();
    unsigned.as_object_mut().unwrap().remove("Signature");
    assert_eq!(
        SnsMessage::parse(unsigned.to_string().as_bytes()),
        Err(Refused::Unsigned)
    );
}

#[test]
fn certificate_urls() {
    let table = [
        (
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            true,
        ),
        (
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
            true,
        ),
        ("http://sns.us-east-1.amazonaws.com/x.pem", false),
        ("https://sns.us-east-1.amazonaws.com.evil.test/x.pem", false),
        ("https://evil.test/sns.us-east-1.amazonaws.com/x.pem", false),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", false),
        ("https://user@sns.us-east-1.amazonaws.com/x.pem", false),
        ("https://sns.us-east-1.amazonaws.com/x.pem?y=.pem", false),
        ("https://sns.us-east-1.amazonaws.com/x.txt", false),
        ("https://s3.amazonaws.com/x.pem", false),
    ];
    for (url, ok) in table {
        assert_eq!(cert_url_allowed(url), ok, "{url}");
    }
}

#[test]
fn subscribe_urls() {
    let table = [
        (
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:t&Token=2336",
            true,
        ),
        (
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=1",
            false,
        ),
        (
            "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&x=1",
            false,
        ),
        (
            "https://sns.us-east-1.amazonaws.com.evil.test/?Action=ConfirmSubscription&x=1",
            false,
        ),
        (
            "https://evil.test/?Action=ConfirmSubscription&x=https://sns.us-east-1.amazonaws.com/",
            false,
        ),
        (
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&x=1 2",
            false,
        ),
    ];
    for (url, ok) in table {
        assert_eq!(subscribe_url_allowed(url), ok, "{url}");
    }
}

#[test]
fn notification_kinds() {
    let base = |kind: &str, section: &str, field: &str, entry: Value| {
        json!({"notificationType": kind, section: {field: [entry]},
               "mail": {"messageId": "m", "destination": ["x@example.net"], "tags": {}}})
        .to_string()
    };
    let table = [
        (
            base("Complaint", "complaint", "complainedRecipients", json!({"emailAddress": "x@example.net"})),
            ProviderEventKind::Complained,
        ),
        (
            base("Delivery", "delivery", "recipients", json!("x@example.net")),
            ProviderEventKind::Delivered,
        ),
        (
            json!({"notificationType": "Bounce",
                   "bounce": {"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "x@example.net"}]},
                   "mail": {}})
            .to_string(),
            ProviderEventKind::Delayed,
        ),
        (
            json!({"eventType": "Open", "mail": {"destination": ["x@example.net"]}}).to_string(),
            ProviderEventKind::Other("Open".into()),
        ),
    ];
    for (message, kind) in table {
        let [event] = read_notification(&message).unwrap().try_into().unwrap();
        assert_eq!(event.kind, kind, "{message}");
        assert_eq!(event.recipient, "x@example.net");
        assert_eq!(event.message_id, None);
    }
    assert!(read_notification("{}").is_err());
}
