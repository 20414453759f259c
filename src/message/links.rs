//! Finding and rewriting the links of an HTML body, for click tracking.
//!
//! Real-world email HTML is not well-formed, so this is a tolerant scanner,
//! not a parser: it walks tags and attributes (quoted or not), decodes the
//! entities of an `href`, skips comments, `<script>` and `<style>`, but reads
//! inside Outlook's conditional comments (`<!--[if mso]> ... <![endif]-->`),
//! whose links Outlook shows. It resolves relative links against a `<base
//! href>` when there is one. Links that are not web links (`mailto:`,
//! `tel:`, anchors, `javascript:`), links marked `data-notrack`, and links
//! the caller declines (the unsubscribe link) are left byte for byte.
//! Owns: where links and images are and what their targets are
//! ([`rewrite_links`], [`inventory`]). Must not: make tracking tokens or
//! decide whether a message is tracked.

/// One link that was rewritten: its position among the rewritten links and
/// the exact target it pointed to (entities decoded, resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedLink {
    pub index: usize,
    pub target: String,
}

/// The body with its links rewritten, and what each one pointed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub html: String,
    pub links: Vec<TrackedLink>,
}

/// Rewrites every trackable link of `html`: `replace(index, target)`
/// returns the URL to put in its place, or `None` to leave the link as it
/// is (it then takes no index).
pub fn rewrite_links(
    html: &str,
    mut replace: impl FnMut(usize, &str) -> Option<String>,
) -> Rewritten {
    let base = find_base(html);
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    let mut links = Vec::new();
    let mut copied = 0;
    for tag in Tags::new(html) {
        if !(tag.name.eq_ignore_ascii_case("a") || tag.name.eq_ignore_ascii_case("area")) {
            continue;
        }
        if tag
            .attributes
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case("data-notrack"))
        {
            continue;
        }
        let Some(href) = tag
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case("href"))
        else {
            continue;
        };
        let Some(raw) = href.value.map(|(start, end)| &html[start..end]) else {
            continue;
        };
        let Some(target) = web_target(&decode_entities(raw.trim()), base.as_deref()) else {
            continue;
        };
        let index = links.len();
        let Some(new_url) = replace(index, &target) else {
            continue;
        };
        let Some((start, end)) = href.value_with_quotes else {
            continue;
        };
        out.push_str(&html[copied..start]);
        out.push('"');
        out.push_str(&escape_attribute(&new_url));
        out.push('"');
        copied = end;
        links.push(TrackedLink { index, target });
    }
    out.push_str(&html[copied..]);
    Rewritten { html: out, links }
}

/// One `<img>` of a document: its source when it is a web URL (resolved
/// against `<base href>`), and whether it has an `alt` attribute (an empty
/// `alt=""` counts: it marks a decorative image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub src: Option<String>,
    pub has_alt: bool,
}

/// What a document points at: every web link (`<a>`, `<area>`, whether
/// tracked or not) and every image, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub links: Vec<String>,
    pub images: Vec<Image>,
}

/// The links and images of `html`, read with the same tolerant scanner that
/// rewrites links.
pub fn inventory(html: &str) -> Inventory {
    let base = find_base(html);
    let value = |tag: &Tag<'_>, name: &str| {
        tag.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .and_then(|a| a.value)
            .map(|(start, end)| decode_entities(html[start..end].trim()))
    };
    let mut found = Inventory::default();
    for tag in Tags::new(html) {
        if tag.name.eq_ignore_ascii_case("a") || tag.name.eq_ignore_ascii_case("area") {
            if let Some(target) = value(&tag, "href").and_then(|h| web_target(&h, base.as_deref()))
            {
                found.links.push(target);
            }
        } else if tag.name.eq_ignore_ascii_case("img") {
            found.images.push(Image {
                src: value(&tag, "src").and_then(|s| web_target(&s, base.as_deref())),
                has_alt: tag
                    .attributes
                    .iter()
                    .any(|a| a.name.eq_ignore_ascii_case("alt")),
            });
        }
    }
    found
}

/// The absolute http(s) URL a link goes to, or `None` for anything else.
fn web_target(href: &str, base: Option<&str>) -> Option<String> {
    if href.is_empty() || href.starts_with('#') || href.starts_with("{{") {
        return None;
    }
    let lower = href.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(href.to_string());
    }
    if lower.contains(':') && !lower.starts_with("//") {
        let scheme_end = lower.find(':').unwrap_or(0);
        let before_path = lower.find('/').is_none_or(|slash| scheme_end < slash);
        if before_path {
            // mailto:, tel:, javascript:, data:, sms:, ...
            return None;
        }
    }
    let base = base?;
    let (scheme, rest) = base.split_once("://")?;
    let origin_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..origin_end]);
    Some(if let Some(net_path) = href.strip_prefix("//") {
        format!("{scheme}://{net_path}")
    } else if href.starts_with('/') {
        format!("{origin}{href}")
    } else {
        let path = &rest[origin_end..];
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{origin}{dir}{href}")
    })
}

fn find_base(html: &str) -> Option<String> {
    Tags::new(html)
        .find(|t| t.name.eq_ignore_ascii_case("base"))
        .and_then(|t| {
            let href = t
                .attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case("href"))?;
            let (start, end) = href.value?;
            let value = decode_entities(html[start..end].trim());
            let lower = value.to_ascii_lowercase();
            (lower.starts_with("http://") || lower.starts_with("https://")).then_some(value)
        })
}

/// Decodes the character references an attribute value may carry.
pub fn decode_entities(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &rest[1..e];
            let c = match entity {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let n = if let Some(hex) = entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    n.and_then(char::from_u32)
                }
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Attribute<'a> {
    name: &'a str,
    /// The value's span, without quotes.
    value: Option<(usize, usize)>,
    /// The value's span, with its quotes if it had them.
    value_with_quotes: Option<(usize, usize)>,
}

struct Tag<'a> {
    name: &'a str,
    attributes: Vec<Attribute<'a>>,
}

/// The start tags of a document, in order.
struct Tags<'a> {
    html: &'a str,
    at: usize,
}

impl<'a> Tags<'a> {
    fn new(html: &'a str) -> Self {
        Tags { html, at: 0 }
    }

    fn skip_past(&mut self, needle: &str) {
        let lower = self
            .html
            .get(self.at..)
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.at = match lower.find(needle) {
            Some(i) => self.at + i + needle.len(),
            None => self.html.len(),
        };
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        let html = self.html;
        let bytes = html.as_bytes();
        loop {
            let lt = html.get(self.at..)?.find('<')? + self.at;
            self.at = lt + 1;
            let rest = &html[lt..];
            if rest.starts_with("<!--") {
                // Outlook's conditional comments hold markup it shows.
                if rest.get(4..).is_some_and(|r| r.starts_with("[if")) {
                    self.at = lt + 4;
                } else {
                    self.skip_past("-->");
                }
                continue;
            }
            if rest.starts_with("<!") || rest.starts_with("</") || rest.starts_with("<?") {
                continue;
            }
            let name_end = rest[1..]
                .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                .map_or(rest.len(), |i| i + 1);
            let name = &rest[1..name_end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                continue;
            }
            let mut i = lt + name_end;
            let mut attributes = Vec::new();
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'>' {
                    break;
                }
                let name_start = i;
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !matches!(bytes[i], b'=' | b'>' | b'/')
                {
                    i += 1;
                }
                let attr_name = &html[name_start..i];
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let (value, value_with_quotes) = if j < bytes.len() && bytes[j] == b'=' {
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    match bytes.get(j) {
                        Some(&q @ (b'"' | b'\'')) => {
                            let close = html[j + 1..].find(char::from(q)).map(|k| j + 1 + k);
                            let end = close.unwrap_or(bytes.len());
                            i = (end + 1).min(bytes.len());
                            (Some((j + 1, end)), Some((j, i)))
                        }
                        Some(_) => {
                            let mut end = j;
                            while end < bytes.len()
                                && !bytes[end].is_ascii_whitespace()
                                && bytes[end] != b'>'
                            {
                                end += 1;
                            }
                            i = end;
                            (Some((j, end)), Some((j, end)))
                        }
                        None => {
                            i = j;
                            (None, None)
                        }
                    }
                } else {
                    (None, None)
                };
                if attr_name.is_empty() {
                    i += 1;
                    continue;
                }
                attributes.push(Attribute {
                    name: attr_name,
                    value,
                    value_with_quotes,
                });
            }
            self.at = (i + 1).min(bytes.len());
            if name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style") {
                let close = format!("</{}", name.to_ascii_lowercase());
                self.skip_past(&close);
            }
            return Some(Tag { name, attributes });
        }
    }
}

#[cfg(test)]
mod tests;
