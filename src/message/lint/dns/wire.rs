//! DNS-over-HTTPS in the wire format of RFC 8484: the TXT question as DNS
//! message bytes (RFC 1035 4.1), and the TXT records of an answer.
//!
//! The answer is network input: every length is checked, names are skipped
//! (never followed through their compression pointers) within a bounded
//! number of labels, and anything that does not read as a DNS message is
//! [`TxtAnswer::Unavailable`], never a panic.
//! Must not: send anything (the edge does) or judge the records.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::TxtAnswer;

/// The `type` of TXT records.
const TXT: u16 = 16;
/// The class IN.
const IN: u16 = 1;
/// The most labels a name has (255 bytes of at least 2 each).
const MAX_LABELS: usize = 128;
/// The most answer records read.
const MAX_ANSWERS: usize = 64;

/// The query message asking for `name`'s TXT records, recursion desired.
/// The id is 0, as RFC 8484 4.1 recommends for caching. `None` when `name`
/// is not a DNS name (an empty label, or one over 63 bytes).
pub fn txt_query(name: &str) -> Option<Vec<u8>> {
    let name = name.trim_end_matches('.');
    let mut out = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    if !name.is_empty() {
        for label in name.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l))?;
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - 12 > 255 {
        return None;
    }
    out.extend_from_slice(&TXT.to_be_bytes());
    out.extend_from_slice(&IN.to_be_bytes());
    Some(out)
}

/// The query as RFC 8484's GET carries it: `?dns=` and base64url without
/// padding.
pub fn txt_query_param(name: &str) -> Option<String> {
    txt_query(name).map(|q| URL_SAFE_NO_PAD.encode(q))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([pair[0], pair[1]]))
}

/// The offset just past the name that starts at `at` (labels, ending in a
/// zero byte or a compression pointer).
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..=MAX_LABELS {
        let len = *bytes.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => {
                bytes.get(at + 1)?;
                return Some(at + 2);
            }
            l if l & 0xC0 == 0 => at = at.checked_add(1 + usize::from(l))?,
            _ => return None,
        }
    }
    None
}

/// The TXT records of a DNS response: each record's character-strings
/// joined. NXDOMAIN, or no TXT answer, is [`TxtAnswer::None`].
pub fn read_txt_response(bytes: &[u8]) -> TxtAnswer {
    read(bytes).unwrap_or(TxtAnswer::Unavailable)
}

fn read(bytes: &[u8]) -> Option<TxtAnswer> {
    let flags = u16_at(bytes, 2)?;
    if flags & 0x8000 == 0 {
        return None; // not a response
    }
    match flags & 0x000F {
        0 => {}
        3 => return Some(TxtAnswer::None),
        _ => return None,
    }
    let questions = u16_at(bytes, 4)?;
    let answers = usize::from(u16_at(bytes, 6)?).min(MAX_ANSWERS);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(bytes, at)?.checked_add(4)?;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        at = skip_name(bytes, at)?;
        let record_type = u16_at(bytes, at)?;
        let length = usize::from(u16_at(bytes, at + 8)?);
        let start = at.checked_add(10)?;
        let data = bytes.get(start..start.checked_add(length)?)?;
        at = start + length;
        if record_type != TXT {
            continue;
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let len = usize::from(data[i]);
            text.extend_from_slice(data.get(i + 1..i + 1 + len)?);
            i += 1 + len;
        }
        records.push(String::from_utf8_lossy(&text).into_owned());
    }
    Some(if records.is_empty() {
        TxtAnswer::None
    } else {
        TxtAnswer::Records(records)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `query` with these TXT records (each split into
    /// strings of at most 255 bytes), the answer names compressed.
    fn response(query: &[u8], rcode: u8, records: &[&str]) -> Vec<u8> {
        let mut out = query.to_vec();
        out[2] = 0x81;
        out[3] = 0x80 | rcode;
        out[7] = records.len() as u8;
        for record in records {
            out.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
            let mut data = Vec::new();
            for chunk in record.as_bytes().chunks(255) {
                data.push(chunk.len() as u8);
                data.extend_from_slice(chunk);
            }
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
        out
    }

    #[test]
    fn the_question_is_rfc_1035_bytes() {
        let q = txt_query("_dmarc.example.com.").unwrap();
        let mut want = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x06_dmarc\x07example\x03com\x00\x00\x10\x00\x01");
        assert_eq!(q, want);
        assert_eq!(
            txt_query_param("a.b").unwrap(),
            URL_SAFE_NO_PAD.encode(txt_query("a.b").unwrap())
        );
        for bad in ["a..b", &"x".repeat(64), &["abcdefghij"; 30].join(".")] {
            assert_eq!(txt_query(bad), None, "{bad}");
        }
    }

    #[test]
    fn answers_are_read_joined_and_bounded() {
        let q = txt_query("s._domainkey.example.com").unwrap();
        let long = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
        let table: Vec<(Vec<u8>, TxtAnswer)> = vec![
            (
                response(&q, 0, &[&long, "v=spf1 -all"]),
                TxtAnswer::Records(vec![long.clone(), "v=spf1 -all".into()]),
            ),
            (response(&q, 0, &[]), TxtAnswer::None),
            (response(&q, 3, &[]), TxtAnswer::None),
            (response(&q, 2, &[]), TxtAnswer::Unavailable),
            // The query itself: not a response.
            (q.clone(), TxtAnswer::Unavailable),
            (vec![], TxtAnswer::Unavailable),
        ];
        for (bytes, want) in table {
            assert_eq!(read_txt_response(&bytes), want);
        }
        // Every truncation of a good answer reads without a panic.
        let good = response(&q, 0, &[&long]);
        for end in 0..good.len() {
            let _ = read_txt_response(&good[..end]);
        }
        // A name that points at itself is skipped, not followed.
        let mut looped = response(&q, 0, &["x"]);
        looped[12] = 0xC0;
        looped[13] = 12;
        let _ = read_txt_response(&looped);
    }
}
