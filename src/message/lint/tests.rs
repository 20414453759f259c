use super::*;

const RSA: &str = "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from; bh=x; b=y";
const ED: &str = "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=s2; h=from; bh=x; b=y";
const UNSUB: &str = "List-Unsubscribe: <https://mail.example.com/unsubscribe/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click";

/// A message with `headers` (CRLF-separated, before From) and a text part
/// and/or an HTML part.
fn mime(headers: &str, from: &str, text: Option<&str>, html: Option<&str>) -> Vec<u8> {
    let mut out = String::new();
    if !headers.is_empty() {
        out.push_str(headers);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "From: Shop <{from}>\r\nTo: a@b.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    ));
    match (text, html) {
        (Some(t), Some(h)) => out.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{t}\r\n--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{h}\r\n--B--\r\n"
        )),
        (None, Some(h)) => out.push_str(&format!("Content-Type: text/html; charset=utf-8\r\n\r\n{h}\r\n")),
        (Some(t), None) => out.push_str(&format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{t}\r\n")),
        (None, None) => out.push_str("\r\n\r\n"),
    }
    out.into_bytes()
}

const PLAIN: LintContext = LintContext {
    marketing: false,
    needs_smtputf8: false,
};
const MARKETING: LintContext = LintContext {
    marketing: true,
    needs_smtputf8: false,
};

fn rules(findings: &[Finding]) -> Vec<(&'static str, &'static str)> {
    findings
        .iter()
        .map(|f| (f.rule.as_str(), f.severity.as_str()))
        .collect()
}

#[test]
fn rule_table() {
    let big_html = format!(
        "<p>{}</p>",
        "x ".repeat(GMAIL_CLIP_BYTES / 2 + 10)
            .replace("x x ", "x x\r\n")
    );
    let long_line = "y".repeat(MAX_LINE_OCTETS + 1);
    let at_limit = "y".repeat(MAX_LINE_OCTETS);
    let signed = format!("{RSA}\r\n{ED}");
    let signed_marketing = format!("{RSA}\r\n{ED}\r\n{UNSUB}");
    type Row<'a> = (
        &'a str,
        Vec<u8>,
        LintContext,
        Vec<(&'static str, &'static str)>,
    );
    let table: Vec<Row> = vec![
        (
            "clean transactional",
            mime(&signed, "shop@example.com", Some("hi"), None),
            PLAIN,
            vec![],
        ),
        (
            "clean marketing with hosts",
            mime(
                &signed_marketing,
                "shop@example.com",
                Some("hi"),
                Some(
                    r#"<a href="https://www.example.com/x">x</a><img src="https://cdn.example.net/l.png" alt="logo">"#,
                ),
            ),
            MARKETING,
            vec![("link_hosts", "info"), ("image_hosts", "info")],
        ),
        (
            "unsigned",
            mime("", "shop@example.com", Some("hi"), None),
            PLAIN,
            vec![("dmarc_alignment", "error")],
        ),
        (
            "relaxed only",
            mime(&signed, "shop@news.example.com", Some("hi"), None),
            PLAIN,
            vec![("dmarc_alignment", "info")],
        ),
        (
            "not aligned",
            mime(&signed, "shop@other.example", Some("hi"), None),
            PLAIN,
            vec![("dmarc_alignment", "error")],
        ),
        (
            "ed25519 only",
            mime(ED, "shop@example.com", Some("hi"), None),
            PLAIN,
            vec![("no_rsa_signature", "warning")],
        ),
        (
            "rsa only is fine",
            mime(RSA, "shop@example.com", Some("hi"), None),
            PLAIN,
            vec![],
        ),
        (
            "marketing without unsubscribe",
            mime(&signed, "shop@example.com", Some("hi"), None),
            MARKETING,
            vec![("marketing_without_unsubscribe", "error")],
        ),
        (
            "marketing without one-click post",
            mime(
                &format!("{signed}\r\nList-Unsubscribe: <https://www.example.com/u>"),
                "shop@example.com",
                Some("hi"),
                None,
            ),
            MARKETING,
            vec![("bulk_sender_headers", "error")],
        ),
        (
            "marketing with mailto only",
            mime(
                &format!(
                    "{signed}\r\nList-Unsubscribe: <mailto:u@example.com>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
                ),
                "shop@example.com",
                Some("hi"),
                None,
            ),
            MARKETING,
            vec![("bulk_sender_headers", "error")],
        ),
        (
            "transactional needs no unsubscribe",
            mime(&signed, "shop@example.com", Some("hi"), None),
            PLAIN,
            vec![],
        ),
        (
            "unsubscribe on workers.dev",
            mime(
                &format!(
                    "{signed}\r\nList-Unsubscribe: <https://er.acme.workers.dev/unsubscribe/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
                ),
                "shop@example.com",
                Some("hi"),
                None,
            ),
            MARKETING,
            vec![("shared_host_link", "warning")],
        ),
        (
            "tracking link on workers.dev",
            mime(
                &signed,
                "shop@example.com",
                Some("hi"),
                Some(r#"<a href="https://er.acme.workers.dev/c/abc">x</a>"#),
            ),
            PLAIN,
            vec![("link_hosts", "info"), ("shared_host_link", "warning")],
        ),
        (
            "html without text",
            mime(&signed, "shop@example.com", None, Some("<p>hi</p>")),
            PLAIN,
            vec![("missing_text_part", "warning")],
        ),
        (
            "image without alt",
            mime(
                &signed,
                "shop@example.com",
                Some("hi"),
                Some(r#"<img src="https://cdn.example.net/a.png"><img src="cid:x" alt="">"#),
            ),
            PLAIN,
            vec![("image_without_alt", "warning"), ("image_hosts", "info")],
        ),
        (
            "html clipped by gmail",
            mime(&signed, "shop@example.com", Some("hi"), Some(&big_html)),
            PLAIN,
            vec![("html_clipped", "warning")],
        ),
        (
            "a line over 998",
            mime(&signed, "shop@example.com", Some(&long_line), None),
            PLAIN,
            vec![("line_too_long", "error")],
        ),
        (
            "a line of exactly 998",
            mime(&signed, "shop@example.com", Some(&at_limit), None),
            PLAIN,
            vec![],
        ),
        (
            "needs smtputf8",
            mime(&signed, "shop@example.com", Some("hi"), None),
            LintContext {
                marketing: false,
                needs_smtputf8: true,
            },
            vec![("smtputf8_unknown", "info")],
        ),
    ];
    for (name, bytes, context, expected) in table {
        let got = lint(&bytes, context);
        assert_eq!(rules(&got), expected, "{name}: {got:#?}");
    }
}

#[test]
fn size_limits() {
    let table = [
        (COMMON_SIZE_LIMIT, vec![]),
        (COMMON_SIZE_LIMIT + 1, vec![("message_size", "warning")]),
        (GMAIL_SIZE_LIMIT + 1, vec![("message_size", "error")]),
    ];
    for (len, expected) in table {
        let mut findings = Vec::new();
        size(&vec![b'a'; len], &mut findings);
        assert_eq!(rules(&findings), expected, "{len}");
    }
}

#[test]
fn alignment_table() {
    use Alignment::*;
    let table = [
        ("example.com", "example.com", Strict),
        ("Example.COM", "example.com.", Strict),
        ("news.example.com", "example.com", Relaxed),
        ("example.com", "mail.example.com", Relaxed),
        ("a.example.co.uk", "example.co.uk", Relaxed),
        ("example.co.uk", "other.co.uk", None),
        ("example.com", "example.net", None),
        ("example.com", "notexample.com", None),
    ];
    for (from, d, expected) in table {
        assert_eq!(alignment_of(from, d), expected, "{from} vs {d}");
    }
}

#[test]
fn url_hosts() {
    let table = [
        ("https://Www.Example.com/x?y", Some("www.example.com")),
        ("http://user@host.example:8080/p", Some("host.example")),
        ("https://[::1]:443/", Some("::1")),
        ("https://example.com.", Some("example.com")),
        ("mailto:a@b.example", None),
        ("https:///nohost", None),
    ];
    for (url, expected) in table {
        assert_eq!(url_host(url).as_deref(), expected, "{url}");
    }
}

#[test]
fn any_bytes_are_linted_without_panicking() {
    for bytes in [
        &b""[..],
        b"\xff\xfe",
        b"From:\r\n\r\n",
        b"DKIM-Signature: a\r\n\r\n<html",
    ] {
        let _ = lint(bytes, MARKETING);
    }
}
