use super::*;
use crate::delivery::shaping::is_throttling;
use crate::smtp::OutcomeKind;

fn answer(status: u16, error_type: Option<&str>, body: &str) -> HttpAnswer {
    HttpAnswer {
        status,
        error_type: error_type.map(str::to_string),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn ses_answers_are_classified_like_smtp_replies() {
    use Class::*;
    let table: &[(u16, Option<&str>, &str, Class)] = &[
        (
            200,
            None,
            r#"{"MessageId":"0100018f-abc"}"#,
            Delivered(Some("0100018f-abc".into())),
        ),
        (
            429,
            Some("TooManyRequestsException"),
            r#"{"message":"Too many requests"}"#,
            Throttled,
        ),
        (
            400,
            Some("LimitExceededException:http://internal.amazon.com/"),
            "{}",
            Throttled,
        ),
        (
            400,
            None,
            r#"{"__type":"com.amazonaws#Throttling","message":"Maximum sending rate exceeded."}"#,
            Throttled,
        ),
        (
            400,
            Some("MessageRejected"),
            r#"{"message":"Email address is not verified. The following identities failed the check in region EU-WEST-1: a@b"}"#,
            Configuration,
        ),
        (
            400,
            Some("MessageRejected"),
            r#"{"message":"Illegal address"}"#,
            Permanent,
        ),
        (
            400,
            Some("BadRequestException"),
            r#"{"message":"Invalid raw content"}"#,
            Permanent,
        ),
        (
            400,
            Some("AccountSendingPausedException"),
            "{}",
            Configuration,
        ),
        (400, Some("SendingPausedException"), "{}", Configuration),
        (
            400,
            Some("MailFromDomainNotVerifiedException"),
            "{}",
            Configuration,
        ),
        (
            403,
            Some("SignatureDoesNotMatch"),
            r#"{"message":"The request signature we calculated does not match"}"#,
            Configuration,
        ),
        (403, None, "not json", Configuration),
        (500, Some("InternalFailure"), "{}", Transient),
        (503, None, "", Transient),
        (404, Some("NotFoundException"), "{}", Configuration),
        (400, None, "{}", Permanent),
    ];
    for (status, et, body, want) in table {
        let got = ses::classify(&answer(*status, *et, body));
        assert_eq!(&got.class, want, "{status} {et:?} {body}");
    }
}

#[test]
fn mailgun_answers_are_classified_like_smtp_replies() {
    use Class::*;
    let table: &[(u16, &str, Class)] = &[
        (
            200,
            r#"{"id":"<20261130.1@mg.example.com>","message":"Queued. Thank you."}"#,
            Delivered(Some("<20261130.1@mg.example.com>".into())),
        ),
        (200, r#"{"message":"Queued"}"#, Transient),
        (
            400,
            r#"{"message":"'to' parameter is not a valid address. please check documentation"}"#,
            Permanent,
        ),
        (
            400,
            r#"{"message":"Domain mg.example.com is not allowed to send: Free accounts are for test purposes only"}"#,
            Configuration,
        ),
        (401, "Forbidden", Configuration),
        (402, r#"{"message":"Account disabled"}"#, Configuration),
        (
            403,
            r#"{"message":"Domain mg.example.com is disabled"}"#,
            Configuration,
        ),
        (
            404,
            r#"{"message":"Domain not found: mg.example.com"}"#,
            Configuration,
        ),
        (413, r#"{"message":"Request entity too large"}"#, Permanent),
        (429, r#"{"message":"Too many requests"}"#, Throttled),
        (500, "Internal Server Error", Transient),
        (502, "", Transient),
    ];
    for (status, body, want) in table {
        let got = mailgun::classify(&answer(*status, None, body));
        assert_eq!(&got.class, want, "{status} {body}");
    }
}

#[test]
fn binding_exceptions_are_classified_by_their_message() {
    use Class::*;
    let table: &[(&str, Class)] = &[
        ("email to bob@example.net not allowed", Permanent),
        ("destination address not verified", Permanent),
        ("email from alice@example.com not allowed", Configuration),
        ("could not parse email: bad header", Permanent),
        ("invalid message-id", Permanent),
        ("From: header does not match mail from", Permanent),
        ("rate limit exceeded", Throttled),
        ("internal error; reference = abc", Transient),
        ("the send_email binding EMAIL is missing", Configuration),
    ];
    for (message, want) in table {
        assert_eq!(
            &send_email::classify_error(message).class,
            want,
            "{message}"
        );
    }
}

#[test]
fn each_class_reads_as_the_smtp_reply_it_stands_for() {
    let rows = [
        (
            Class::Delivered(Some("id-1".into())),
            250,
            OutcomeKind::Delivered,
            false,
        ),
        (Class::Throttled, 454, OutcomeKind::Transient, true),
        (Class::Transient, 451, OutcomeKind::Transient, false),
        (Class::Permanent, 554, OutcomeKind::Permanent, false),
        (Class::Configuration, 535, OutcomeKind::Configuration, false),
    ];
    for (class, code, kind, throttling) in rows {
        let c = Classified::new(class.clone(), "x");
        let reply = c.reply("ses");
        assert_eq!(reply.code, code, "{class:?}");
        assert_eq!(c.outcome_kind(), kind, "{class:?}");
        let enhanced = reply.enhanced.map(|e| e.to_string());
        assert_eq!(
            is_throttling(reply.code, enhanced.as_deref(), &reply.text()),
            throttling,
            "{class:?}: shaping must read only throttling as backpressure"
        );
        let t = c.transaction(7, &["a@example.net".into(), "b@example.net".into()], "ses");
        assert_eq!(t.id, 7);
        assert_eq!(t.recipients.len(), 2);
        assert!(t.recipients.iter().all(|r| r.outcome.kind == kind));
    }
    // The provider's id is in the record of a delivery.
    let reply = Classified::new(Class::Delivered(Some("0100-abc".into())), "").reply("ses");
    assert!(reply.text().contains("0100-abc"), "{}", reply.text());
}

#[test]
fn entries_parse_and_errors_never_quote_credentials() {
    let ses = ApiUpstream::parse("ses", "AKIDEXAMPLE:s3cr%2Ft@eu-west-1")
        .unwrap()
        .unwrap();
    assert_eq!(ses.label(), "ses:eu-west-1");
    let ApiUpstream::Ses(s) = &ses else {
        panic!("{ses:?}")
    };
    assert_eq!(s.credentials.secret_access_key, "s3cr/t");
    assert_eq!(s.base_url, "https://email.eu-west-1.amazonaws.com");
    assert!(!format!("{ses:?}").contains("s3cr"));

    let local = ApiUpstream::parse("ses", "k:s@us-east-1?endpoint=http://127.0.0.1:4566")
        .unwrap()
        .unwrap();
    let ApiUpstream::Ses(s) = &local else {
        panic!()
    };
    assert_eq!(s.base_url, "http://127.0.0.1:4566");

    let mg = ApiUpstream::parse("mailgun", "api:key-123@MG.example.com?region=eu")
        .unwrap()
        .unwrap();
    assert_eq!(mg.label(), "mailgun:mg.example.com");
    let ApiUpstream::Mailgun(m) = &mg else {
        panic!()
    };
    assert_eq!(m.base_url, "https://api.eu.mailgun.net");
    assert_eq!(m.api_key, "key-123");
    let us = ApiUpstream::parse("mailgun", "api:k@mg.example.com")
        .unwrap()
        .unwrap();
    let ApiUpstream::Mailgun(m) = &us else {
        panic!()
    };
    assert_eq!(m.base_url, "https://api.mailgun.net");

    let binding = ApiUpstream::parse("send-email", "EMAIL").unwrap().unwrap();
    assert_eq!(binding.label(), "send-email:EMAIL");
    assert_eq!(binding.provider(), None);

    assert!(ApiUpstream::parse("smtps", "h").is_none());
    for (scheme, rest) in [
        ("ses", "eu-west-1"),
        ("ses", "k:secretvalue@eu west"),
        ("ses", "k:secretvalue@eu-west-1?endpoint=http://10.0.0.1:80"),
        ("ses", "k:secretvalue@eu-west-1?endpoint=ftp://127.0.0.1"),
        ("ses", "k:secretvalue@eu-west-1?other=1"),
        ("mailgun", "mg.example.com"),
        ("mailgun", "api:secretvalue@mg.example.com?region=ap"),
        (
            "mailgun",
            "api:secretvalue@mg.example.com?endpoint=http://example.net",
        ),
        ("send-email", "E-MAIL"),
        ("send-email", ""),
    ] {
        let e = ApiUpstream::parse(scheme, rest).unwrap().unwrap_err();
        assert!(!e.contains("secretvalue"), "{scheme}://{rest}: {e}");
    }
}

#[test]
fn the_ses_request_has_the_documented_shape_and_a_signature() {
    let Some(Ok(ApiUpstream::Ses(s))) = ApiUpstream::parse(
        "ses",
        "AKID:secret@us-east-1?endpoint=http://127.0.0.1:9000",
    ) else {
        panic!()
    };
    let msg = b"From: a@example.com\r\n\r\nhi\r\n";
    let req = s.request(
        "bounce@example.com",
        &["b@example.net".into()],
        "msg_1",
        msg,
        1_440_938_160_000,
    );
    assert_eq!(req.url, "http://127.0.0.1:9000/v2/email/outbound-emails");
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["FromEmailAddress"], "bounce@example.com");
    assert_eq!(body["Destination"]["ToAddresses"][0], "b@example.net");
    assert_eq!(body["EmailTags"][0]["Value"], "msg_1");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body["Content"]["Raw"]["Data"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, msg);
    let auth = &req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1;
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ses/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="),
        "{auth}"
    );
    assert!(!auth.contains("secret"));
}

#[test]
fn the_mailgun_request_is_a_form_with_each_recipient_and_the_message() {
    let Some(Ok(ApiUpstream::Mailgun(m))) =
        ApiUpstream::parse("mailgun", "api:key-1@mg.example.com")
    else {
        panic!()
    };
    let msg = b"From: a@example.com\r\n\r\nhi\r\n";
    let req = m.request(
        &["b@example.net".into(), "c@example.net".into()],
        "msg_1",
        msg,
    );
    assert_eq!(
        req.url,
        "https://api.mailgun.net/v3/mg.example.com/messages.mime"
    );
    let ct = &req.headers[0].1;
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let body = String::from_utf8(req.body.clone()).unwrap();
    assert_eq!(
        body.matches(&format!("--{boundary}\r\n")).count(),
        4,
        "{body}"
    );
    assert!(body.contains("name=\"to\"\r\n\r\nb@example.net\r\n"));
    assert!(body.contains("name=\"to\"\r\n\r\nc@example.net\r\n"));
    assert!(body.contains("name=\"v:edgerelay_id\"\r\n\r\nmsg_1\r\n"));
    assert!(body.contains("filename=\"message.mime\"\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@example.com\r\n\r\nhi\r\n\r\n--"));
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    assert_eq!(req.headers[1].1, "Basic YXBpOmtleS0x");
}

#[test]
fn routing_rules_name_api_upstreams_by_their_label() {
    use crate::delivery::routing::Routes;
    use crate::delivery::upstream::Upstream;
    let upstreams: Vec<Upstream> = [
        "smtps://u:p@smtp.example.net",
        "ses://AKID:secret@eu-west-1",
        "mailgun://api:key@mg.example.com?region=eu",
        "send-email://EMAIL",
    ]
    .iter()
    .map(|u| Upstream::parse(u).unwrap())
    .collect();
    let labels: Vec<String> = upstreams.iter().map(Upstream::label).collect();
    assert_eq!(
        labels,
        [
            "smtp.example.net:465",
            "ses:eu-west-1",
            "mailgun:mg.example.com",
            "send-email:EMAIL"
        ]
    );
    assert_eq!(
        upstreams[1].provider,
        Some(crate::inbound::providers::Provider::Ses)
    );
    assert!(upstreams[0].api.is_none() && upstreams[3].api.is_some());
    let rules = r#"[{"stream": "marketing", "upstreams": ["mailgun:mg.example.com", "ses:eu-west-1"]},
                    {"tenant": "t1", "upstreams": ["send-email:EMAIL"]}]"#;
    let routes = Routes::parse(rules, &upstreams).unwrap();
    assert!(!routes.is_empty());
    assert!(Routes::parse(r#"[{"upstreams": ["ses:us-east-1"]}]"#, &upstreams).is_err());
}
