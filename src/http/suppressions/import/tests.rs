use super::*;

/// The fixtures, in each provider's documented layout (where each layout
/// is documented: tests/fixtures/suppressions/README.md).
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/suppressions/",
            $name,
            ".csv"
        ))
    };
}

const NOW: u64 = 1_800_000_000_000;

/// Query pairs.
type Pairs = &'static [(&'static str, &'static str)];

fn query(pairs: &[(&str, &str)]) -> ImportQuery {
    parse_query(pairs.iter().copied()).unwrap()
}

fn read(body: &str, q: &ImportQuery) -> Parsed {
    parse(body.as_bytes(), q, "t1", NOW).unwrap()
}

/// Each format's fixture: the entries (address, scope, reason), and how
/// many rows were skipped and invalid.
#[test]
fn every_export_format_maps_to_reasons_and_scopes() {
    type Want = &'static [(&'static str, &'static str, Reason)];
    let table: &[(Pairs, &str, Want, usize, &[usize])] = &[
        (
            &[("format", "sendgrid_bounces")],
            fixture!("sendgrid_bounces"),
            &[
                ("sg-bounce1@example.net", "all", Reason::HardBounce),
                ("sg-bounce2@example.net", "all", Reason::HardBounce),
            ],
            0,
            &[],
        ),
        (
            &[("format", "sendgrid_blocks")],
            fixture!("sendgrid_blocks"),
            &[("sg-block@example.net", "all", Reason::Manual)],
            0,
            &[],
        ),
        (
            &[("format", "sendgrid_invalid_emails")],
            fixture!("sendgrid_invalid_emails"),
            &[("sg-invalid@example.net", "all", Reason::HardBounce)],
            0,
            &[3],
        ),
        (
            &[("format", "sendgrid_spam_reports")],
            fixture!("sendgrid_spam_reports"),
            &[("sg-spam@example.net", "all", Reason::Complaint)],
            0,
            &[],
        ),
        (
            &[("format", "sendgrid_global_unsubscribes")],
            fixture!("sendgrid_global_unsubscribes"),
            &[("sg-unsub@example.net", "all", Reason::Unsubscribe)],
            0,
            &[],
        ),
        (
            &[
                ("format", "sendgrid_group_unsubscribes"),
                ("group_id", "42"),
            ],
            fixture!("sendgrid_group_unsubscribes"),
            &[("sg-group@example.net", "topic:asm-42", Reason::Unsubscribe)],
            0,
            &[],
        ),
        (
            &[("format", "mailgun_bounces")],
            fixture!("mailgun_bounces"),
            &[("mg-bounce@example.net", "all", Reason::HardBounce)],
            0,
            &[],
        ),
        (
            &[("format", "mailgun_unsubscribes")],
            fixture!("mailgun_unsubscribes"),
            &[
                ("mg-unsub-all@example.net", "all", Reason::Unsubscribe),
                (
                    "mg-unsub-news@example.net",
                    "topic:newsletter",
                    Reason::Unsubscribe,
                ),
                (
                    "mg-unsub-news@example.net",
                    "topic:promo",
                    Reason::Unsubscribe,
                ),
            ],
            0,
            &[],
        ),
        (
            &[("format", "mailgun_complaints")],
            fixture!("mailgun_complaints"),
            &[("mg-complaint@example.net", "all", Reason::Complaint)],
            0,
            &[],
        ),
        (
            &[("format", "postmark")],
            fixture!("postmark"),
            &[
                ("pm-bounce@example.net", "all", Reason::HardBounce),
                ("pm-spam@example.net", "all", Reason::Complaint),
                ("pm-manual@example.net", "all", Reason::Unsubscribe),
            ],
            0,
            &[],
        ),
        (
            &[("format", "postmark"), ("stream", "marketing")],
            fixture!("postmark"),
            &[
                (
                    "pm-bounce@example.net",
                    "stream:marketing",
                    Reason::HardBounce,
                ),
                ("pm-spam@example.net", "stream:marketing", Reason::Complaint),
                (
                    "pm-manual@example.net",
                    "stream:marketing",
                    Reason::Unsubscribe,
                ),
            ],
            0,
            &[],
        ),
        (
            &[("format", "resend")],
            fixture!("resend"),
            &[(
                "rs-unsub@example.net",
                "stream:marketing",
                Reason::Unsubscribe,
            )],
            1,
            &[],
        ),
        (
            &[("format", "csv")],
            fixture!("csv"),
            &[
                ("csv-all@example.org", "all", Reason::Manual),
                ("csv-topic@example.org", "topic:digest", Reason::Unsubscribe),
                ("csv-complaint@example.org", "all", Reason::Complaint),
            ],
            0,
            &[],
        ),
    ];
    for (pairs, body, want, skipped, invalid_lines) in table {
        let q = query(pairs);
        let got = read(body, &q);
        let entries: Vec<(&str, String, Reason)> = got
            .entries
            .iter()
            .map(|e| (e.address.as_str(), e.scope.as_stored(), e.reason))
            .collect();
        let want: Vec<(&str, String, Reason)> = want
            .iter()
            .map(|(a, s, r)| (*a, s.to_string(), *r))
            .collect();
        assert_eq!(entries, want, "{pairs:?}");
        assert_eq!(got.skipped, *skipped, "{pairs:?}");
        let lines: Vec<usize> = got.invalid.iter().map(|r| r.line).collect();
        assert_eq!(&lines, invalid_lines, "{pairs:?}");
        assert_eq!(got.invalid_count, invalid_lines.len());
        assert!(got.entries.iter().all(|e| {
            e.tenant == "t1"
                && e.created_at_ms == NOW
                && e.expires_at_ms.is_none()
                && e.detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("imported ("))
        }));
    }
}

#[test]
fn rows_are_read_as_rfc_4180_and_checked_one_by_one() {
    let q = query(&[("format", "csv")]);
    let body = "\u{feff}Email,Reason,Topic,Extra\r\n\
        \"a@example.org\",manual,,\"x, \"\"quoted\"\"\nsecond line\"\r\n\
        \r\n\
        b@example.org,erased,,\n\
        c@example.org,,bad topic!,\n\
        A@EXAMPLE.ORG,,,\n\
        d@example.org,,news,\n\
        ,,,\n\
        no-at-sign,,,\n";
    let got = read(body, &q);
    let entries: Vec<(&str, String)> = got
        .entries
        .iter()
        .map(|e| (e.address.as_str(), e.scope.as_stored()))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("a@example.org", "all".to_string()),
            ("d@example.org", "topic:news".to_string())
        ]
    );
    // A@EXAMPLE.ORG is a@example.org again.
    assert_eq!(got.repeated, 1);
    let invalid: Vec<(usize, &str, &str)> = got
        .invalid
        .iter()
        .map(|r| (r.line, r.field.as_str(), r.rule))
        .collect();
    assert_eq!(
        invalid,
        vec![
            (5, "reason", "invalid_reason"),
            (6, "topic", "invalid_name"),
            (10, "email", invalid[2].2),
        ]
    );
    assert_eq!(got.rows, 6);
    // A quote never closed ends the file as an invalid row.
    let got = read("email\na@example.org\n\"b@example.org\n", &q);
    assert_eq!(got.entries.len(), 1);
    assert_eq!(got.invalid[0].line, 3);
    assert_eq!(got.invalid[0].rule, "invalid_csv");
}

#[test]
fn imports_are_bounded_and_say_where_to_resume() {
    let q = query(&[("format", "csv")]);
    let mut body = String::from("email\n");
    for i in 0..MAX_IMPORT_ROWS + 5 {
        body.push_str(&format!("u{i}@example.org\n"));
    }
    let got = read(&body, &q);
    assert_eq!(got.rows, MAX_IMPORT_ROWS);
    assert_eq!(got.entries.len(), MAX_IMPORT_ROWS);
    assert_eq!(got.next_line, Some(MAX_IMPORT_ROWS + 2));
    let answer = answer(&q, &got, 10);
    assert_eq!(answer["capped"], true);
    assert_eq!(answer["next_line"], MAX_IMPORT_ROWS + 2);
    assert_eq!(answer["imported"], 10);
    assert_eq!(answer["already_present"], MAX_IMPORT_ROWS - 10);
    // Invalid rows are all counted, the first hundred listed.
    let mut body = String::from("email\n");
    for _ in 0..MAX_LISTED_INVALID + 7 {
        body.push_str("nope\n");
    }
    let got = read(&body, &q);
    assert_eq!(got.invalid_count, MAX_LISTED_INVALID + 7);
    assert_eq!(got.invalid.len(), MAX_LISTED_INVALID);
    // Too large, a field too long.
    let big = vec![b'a'; MAX_IMPORT_BYTES + 1];
    assert_eq!(parse(&big, &q, "t", NOW).unwrap_err().status, 413);
    let long = format!("email\n{}@example.org\n", "a".repeat(5000));
    let got = read(&long, &q);
    assert_eq!(got.invalid[0].rule, "invalid_csv");
}

#[test]
fn files_and_queries_that_cannot_be_read_are_refused_naming_the_rule() {
    let bad_queries: &[(Pairs, &str, &str)] = &[
        (&[], "format", "required"),
        (&[("format", "mandrill")], "format", "invalid_format"),
        (
            &[("format", "sendgrid_group_unsubscribes")],
            "group_id",
            "required",
        ),
        (
            &[("format", "csv"), ("group_id", "1")],
            "group_id",
            "unknown_parameter",
        ),
        (
            &[("format", "sendgrid_group_unsubscribes"), ("group_id", "x")],
            "group_id",
            "invalid_value",
        ),
        (
            &[("format", "csv"), ("stream", "marketing")],
            "stream",
            "unknown_parameter",
        ),
        (&[("format", "csv"), ("x", "1")], "x", "unknown_parameter"),
    ];
    for (pairs, field, rule) in bad_queries {
        let e = parse_query(pairs.iter().copied()).unwrap_err();
        assert_eq!(e.status, 422, "{pairs:?}");
        assert_eq!(e.field.as_deref(), Some(*field), "{pairs:?}");
        assert_eq!(e.details[0].rule, *rule, "{pairs:?}");
    }
    let csv = query(&[("format", "csv")]);
    let bad_bodies: &[(&[u8], &ImportQuery, &str)] = &[
        (b"", &csv, "required"),
        (b"\n\n", &csv, "required"),
        (b"name,created\nx,1\n", &csv, "missing_column"),
        (b"\xff\xfe", &csv, "invalid_encoding"),
        (b"\"email\n", &csv, "invalid_csv"),
        (
            b"id,email\n1,a@example.org\n",
            &query(&[("format", "resend")]),
            "missing_column",
        ),
        (
            b"recipient,created\na@example.org,1\n",
            &query(&[("format", "mailgun_bounces")]),
            "missing_column",
        ),
    ];
    for (body, q, rule) in bad_bodies {
        let e = parse(body, q, "t", NOW).expect_err(&format!("{body:?}"));
        assert_eq!(e.status, 422, "{body:?}");
        assert_eq!(e.details[0].rule, *rule, "{body:?}");
    }
}
