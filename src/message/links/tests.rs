//! Link rewriting over the HTML that real senders and tools produce.

use super::*;

fn track(html: &str) -> Rewritten {
    rewrite_links(html, |i, target| {
        (!target.contains("/unsubscribe/")).then(|| format!("https://t.example/c/{i}?x=1&y=2"))
    })
}

#[test]
fn rewriting_table() {
    // (input, output, targets)
    let table: &[(&str, &str, &[&str])] = &[
        (
            r#"<a href="https://example.com/a">A</a>"#,
            r#"<a href="https://t.example/c/0?x=1&amp;y=2">A</a>"#,
            &["https://example.com/a"],
        ),
        (
            "<a href='https://example.com/a?p=1&amp;q=2'>A</a>",
            r#"<a href="https://t.example/c/0?x=1&amp;y=2">A</a>"#,
            &["https://example.com/a?p=1&q=2"],
        ),
        (
            "<A HREF=https://example.com/x>X</A> <a class=b href = https://example.com/y >Y</a>",
            r#"<A HREF="https://t.example/c/0?x=1&amp;y=2">X</A> <a class=b href = "https://t.example/c/1?x=1&amp;y=2" >Y</a>"#,
            &["https://example.com/x", "https://example.com/y"],
        ),
        (
            r##"<a href="mailto:a@example.com">m</a><a href="tel:+123">t</a><a href="#top">#</a><a href="javascript:void(0)">j</a>"##,
            r##"<a href="mailto:a@example.com">m</a><a href="tel:+123">t</a><a href="#top">#</a><a href="javascript:void(0)">j</a>"##,
            &[],
        ),
        (
            r#"<a data-notrack href="https://example.com/keep">k</a><a href="https://mail.example.com/unsubscribe/tok">u</a>"#,
            r#"<a data-notrack href="https://example.com/keep">k</a><a href="https://mail.example.com/unsubscribe/tok">u</a>"#,
            &[],
        ),
        (
            r#"<a href="{{unsubscribe_url}}">u</a>"#,
            r#"<a href="{{unsubscribe_url}}">u</a>"#,
            &[],
        ),
        (
            r#"<base href="https://example.com/news/2026/"><a href="issue.html">i</a><a href="/top">t</a><a href="//cdn.example.com/x">c</a>"#,
            r#"<base href="https://example.com/news/2026/"><a href="https://t.example/c/0?x=1&amp;y=2">i</a><a href="https://t.example/c/1?x=1&amp;y=2">t</a><a href="https://t.example/c/2?x=1&amp;y=2">c</a>"#,
            &[
                "https://example.com/news/2026/issue.html",
                "https://example.com/top",
                "https://cdn.example.com/x",
            ],
        ),
        (
            r#"<a href="relative.html">no base, not a web link</a>"#,
            r#"<a href="relative.html">no base, not a web link</a>"#,
            &[],
        ),
        (
            r#"<!-- <a href="https://example.com/commented">c</a> --><a href="https://example.com/real">r</a>"#,
            r#"<!-- <a href="https://example.com/commented">c</a> --><a href="https://t.example/c/0?x=1&amp;y=2">r</a>"#,
            &["https://example.com/real"],
        ),
        (
            r#"<!--[if mso]><v:roundrect><a href="https://example.com/outlook">o</a></v:roundrect><![endif]-->"#,
            r#"<!--[if mso]><v:roundrect><a href="https://t.example/c/0?x=1&amp;y=2">o</a></v:roundrect><![endif]-->"#,
            &["https://example.com/outlook"],
        ),
        (
            r#"<script>var s = '<a href="https://example.com/s">';</script><style>a[href="https://x"]{}</style><a href="https://example.com/after">a</a>"#,
            r#"<script>var s = '<a href="https://example.com/s">';</script><style>a[href="https://x"]{}</style><a href="https://t.example/c/0?x=1&amp;y=2">a</a>"#,
            &["https://example.com/after"],
        ),
        (
            r#"<a href="https://例え.jp/パス?q=ü">日本</a>"#,
            r#"<a href="https://t.example/c/0?x=1&amp;y=2">日本</a>"#,
            &["https://例え.jp/パス?q=ü"],
        ),
        (
            r#"<a href="https://example.com/&#x41;&#66;&quot;">e</a><area shape=rect href="https://example.com/map">"#,
            r#"<a href="https://t.example/c/0?x=1&amp;y=2">e</a><area shape=rect href="https://t.example/c/1?x=1&amp;y=2">"#,
            &["https://example.com/AB\"", "https://example.com/map"],
        ),
        (
            "<a href=\"  https://example.com/spaced  \">s</a>",
            r#"<a href="https://t.example/c/0?x=1&amp;y=2">s</a>"#,
            &["https://example.com/spaced"],
        ),
        (
            "<p>no links at all & stray < signs",
            "<p>no links at all & stray < signs",
            &[],
        ),
        (
            r#"<a href="https://example.com/unclosed>x"#,
            r#"<a href="https://t.example/c/0?x=1&amp;y=2""#,
            &["https://example.com/unclosed>x"],
        ),
    ];
    for (input, output, targets) in table {
        let got = track(input);
        assert_eq!(got.html, *output, "{input}");
        let got_targets: Vec<&str> = got.links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(got_targets, *targets, "{input}");
        assert!(got.links.iter().enumerate().all(|(i, l)| l.index == i));
    }
}

#[test]
fn long_urls_and_many_links() {
    let long = format!("https://example.com/{}", "a".repeat(8_000));
    let html = format!(r#"<a href="{long}">l</a>"#).repeat(200);
    let got = track(&html);
    assert_eq!(got.links.len(), 200);
    assert!(got.links.iter().all(|l| l.target == long));
    assert!(!got.html.contains(&long));
}

#[test]
fn any_input_is_scanned_without_panicking() {
    let samples = [
        "<",
        "<a",
        "<a href",
        "<a href=",
        "<a href='",
        "<a href=\"x",
        "<!--",
        "<!--[if",
        "<script>",
        "<a href=\"https://é\u{0}\">",
        "&#xFFFFFFFF;",
        "<base href=https://x",
        "</",
        "<a/ href=/x>",
    ];
    for s in samples {
        let _ = track(s);
        let _ = decode_entities(s);
    }
    assert_eq!(
        decode_entities("&#xFFFFFFFF;&bogus;&amp"),
        "&#xFFFFFFFF;&bogus;&amp"
    );
}

#[test]
fn inventory_table() {
    type Row<'a> = (&'a str, &'a [&'a str], &'a [(Option<&'a str>, bool)]);
    let table: [Row; 5] = [
        (
            r#"<a href="https://a.example/x">x</a><img src="https://img.example/1.png" alt="logo">"#,
            &["https://a.example/x"],
            &[(Some("https://img.example/1.png"), true)],
        ),
        (
            r#"<base href="https://b.example/dir/"><a href=page>p</a><IMG SRC="/i.png">"#,
            &["https://b.example/dir/page"],
            &[(Some("https://b.example/i.png"), false)],
        ),
        (
            r#"<a href="mailto:x@y.example">m</a><img src="cid:logo" alt="">"#,
            &[],
            &[(None, true)],
        ),
        (
            r#"<a data-notrack href="https://kept.example/?a=1&amp;b=2">k</a>"#,
            &["https://kept.example/?a=1&b=2"],
            &[],
        ),
        (
            r#"<!-- <a href="https://hidden.example/"> --><p>no links</p>"#,
            &[],
            &[],
        ),
    ];
    for (html, links, images) in table {
        let found = inventory(html);
        assert_eq!(found.links, links.to_vec(), "{html}");
        let got: Vec<(Option<&str>, bool)> = found
            .images
            .iter()
            .map(|i| (i.src.as_deref(), i.has_alt))
            .collect();
        assert_eq!(got, images.to_vec(), "{html}");
    }
}
