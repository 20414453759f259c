//! `POST /v1/suppressions/import?format=...`: a suppression list exported
//! from another provider (or a plain CSV) read into entries of the
//! tenant's list, so that moving keeps the addresses that must not be
//! mailed.
//!
//! | `format`                      | rows                                   | reason        | scope                  |
//! |-------------------------------|----------------------------------------|---------------|------------------------|
//! | `csv`                         | `email`, optional `reason`, `topic`, `stream` | `reason` or `manual` | `topic:`/`stream:` or `all` |
//! | `sendgrid_bounces`            | email, created, reason, status         | `hard_bounce` | `all`                  |
//! | `sendgrid_blocks`             | email, created, reason, status         | `manual`      | `all`                  |
//! | `sendgrid_invalid_emails`     | email, created, reason                 | `hard_bounce` | `all`                  |
//! | `sendgrid_spam_reports`       | email, created, ip                     | `complaint`   | `all`                  |
//! | `sendgrid_global_unsubscribes`| email, created                         | `unsubscribe` | `all`                  |
//! | `sendgrid_group_unsubscribes` | email, created (`group_id=` in the query) | `unsubscribe` | `topic:asm-<group_id>` |
//! | `mailgun_bounces`             | address, code, error, created_at       | `hard_bounce` | `all`                  |
//! | `mailgun_unsubscribes`        | address, tags, created_at              | `unsubscribe` | `all` for `*`, else `topic:<tag>` each |
//! | `mailgun_complaints`          | address, created_at                    | `complaint`   | `all`                  |
//! | `postmark`                    | Email Address, Reason, Origin, Created At | HardBounce `hard_bounce`, SpamComplaint `complaint`, ManualSuppression `unsubscribe` | `all`, or `stream:<stream>` with `stream=` |
//! | `resend`                      | id, email, first_name, last_name, created_at, unsubscribed | `unsubscribe` (rows with `unsubscribed` true; others are skipped) | `stream:marketing` |
//!
//! SendGrid's group unsubscribes become the topic its mail send door gives
//! `asm.group_id` (`asm-<id>`), so mail of that group stays held back and
//! mail of other groups does not. Columns are found by their header, in any
//! order and case; extra columns are ignored.
//!
//! Bounded: at most [`MAX_IMPORT_BYTES`] of body and [`MAX_IMPORT_ROWS`]
//! rows per request (the answer says where to resume); invalid rows are
//! counted and the first [`MAX_LISTED_INVALID`] listed with their line, the
//! others imported. Idempotent: the edge inserts only entries not already
//! on the list, so importing a file twice changes nothing.
//!
//! Owns the CSV reading, the formats and their mapping to reasons and
//! scopes. Must not: perform I/O or read the clock.

use serde_json::{Value, json};

use crate::accept::body::BodyLimit;
use crate::accept::error::ApiError;
use crate::events::suppression::{Entry, Reason, Scope, address_key, checked_name};
use crate::message::EmailAddress;

/// The largest import body.
pub const MAX_IMPORT_BYTES: usize = 2 * 1024 * 1024;
/// The most rows one import reads; the rest wait for another request.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// The most invalid rows an answer lists (all are counted).
pub const MAX_LISTED_INVALID: usize = 100;
/// The longest field of a row.
const MAX_FIELD_BYTES: usize = 4096;

/// The request body's limit.
pub fn body_limit() -> BodyLimit {
    BodyLimit {
        max_bytes: MAX_IMPORT_BYTES,
        source: "the import limit (2 MiB); split the file",
    }
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    SendGridBounces,
    SendGridBlocks,
    SendGridInvalidEmails,
    SendGridSpamReports,
    SendGridGlobalUnsubscribes,
    SendGridGroupUnsubscribes,
    MailgunBounces,
    MailgunUnsubscribes,
    MailgunComplaints,
    Postmark,
    Resend,
}

impl Format {
    pub const ALL: [Format; 12] = [
        Format::Csv,
        Format::SendGridBounces,
        Format::SendGridBlocks,
        Format::SendGridInvalidEmails,
        Format::SendGridSpamReports,
        Format::SendGridGlobalUnsubscribes,
        Format::SendGridGroupUnsubscribes,
        Format::MailgunBounces,
        Format::MailgunUnsubscribes,
        Format::MailgunComplaints,
        Format::Postmark,
        Format::Resend,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::SendGridBounces => "sendgrid_bounces",
            Format::SendGridBlocks => "sendgrid_blocks",
            Format::SendGridInvalidEmails => "sendgrid_invalid_emails",
            Format::SendGridSpamReports => "sendgrid_spam_reports",
            Format::SendGridGlobalUnsubscribes => "sendgrid_global_unsubscribes",
            Format::SendGridGroupUnsubscribes => "sendgrid_group_unsubscribes",
            Format::MailgunBounces => "mailgun_bounces",
            Format::MailgunUnsubscribes => "mailgun_unsubscribes",
            Format::MailgunComplaints => "mailgun_complaints",
            Format::Postmark => "postmark",
            Format::Resend => "resend",
        }
    }

    fn parse(text: &str) -> Option<Format> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The headers the address may be under (normalized: lower case,
    /// letters and digits only).
    fn address_headers(self) -> &'static [&'static str] {
        match self {
            Format::MailgunBounces | Format::MailgunUnsubscribes | Format::MailgunComplaints => {
                &["address", "email"]
            }
            Format::Postmark => &["emailaddress", "email"],
            _ => &["email", "emailaddress", "address"],
        }
    }

    /// The reason a row of this format is kept under, when the format
    /// gives one reason for all its rows.
    fn fixed_reason(self) -> Option<Reason> {
        Some(match self {
            Format::SendGridBounces | Format::SendGridInvalidEmails | Format::MailgunBounces => {
                Reason::HardBounce
            }
            // SendGrid blocks are refusals of a message, not of the
            // address: imported as a manual entry, the caller's choice.
            Format::SendGridBlocks => Reason::Manual,
            Format::SendGridSpamReports | Format::MailgunComplaints => Reason::Complaint,
            Format::SendGridGlobalUnsubscribes
            | Format::SendGridGroupUnsubscribes
            | Format::MailgunUnsubscribes
            | Format::Resend => Reason::Unsubscribe,
            Format::Csv | Format::Postmark => return None,
        })
    }
}

/// `POST /v1/suppressions/import`'s query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportQuery {
    pub format: Format,
    /// `sendgrid_group_unsubscribes`: the group the file is of.
    pub group_id: Option<u64>,
    /// `postmark`: the stream the export's message stream is here.
    pub stream: Option<String>,
}

fn formats_rule() -> String {
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
    format!("must be one of: {}", names.join(", "))
}

/// Reads the query pairs (already percent-decoded).
pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ImportQuery, ApiError> {
    let (mut format, mut group_id, mut stream) = (None, None, None);
    for (name, value) in pairs {
        match name {
            "format" => {
                format = Some(Format::parse(value).ok_or_else(|| {
                    ApiError::invalid_field("format", "invalid_format", formats_rule())
                })?)
            }
            "group_id" => {
                group_id = Some(value.parse::<u64>().map_err(|_| {
                    ApiError::invalid_field("group_id", "invalid_value", "a SendGrid group id")
                })?)
            }
            "stream" => {
                let name = checked_name(value)
                    .map_err(|rule| ApiError::invalid_field("stream", "invalid_stream", rule))?;
                stream = Some(name.to_string());
            }
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown_parameter",
                    "the import takes format, group_id and stream",
                ));
            }
        }
    }
    let format =
        format.ok_or_else(|| ApiError::invalid_field("format", "required", formats_rule()))?;
    match (format, group_id, &stream) {
        (Format::SendGridGroupUnsubscribes, None, _) => Err(ApiError::invalid_field(
            "group_id",
            "required",
            "a group unsubscribes export is of one group: give its group_id",
        )),
        (Format::SendGridGroupUnsubscribes, _, _) | (_, None, _) => Ok(()),
        _ => Err(ApiError::invalid_field(
            "group_id",
            "unknown_parameter",
            "only sendgrid_group_unsubscribes takes group_id",
        )),
    }?;
    if stream.is_some() && format != Format::Postmark {
        return Err(ApiError::invalid_field(
            "stream",
            "unknown_parameter",
            "only postmark takes stream",
        ));
    }
    Ok(ImportQuery {
        format,
        group_id,
        stream,
    })
}

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRow {
    /// The line of the file the row starts on (1 is the header).
    pub line: usize,
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

/// A read file: the entries to insert, and what the answer counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    /// Data rows read (not the header).
    pub rows: usize,
    /// Rows that suppress nothing (a Resend contact still subscribed).
    pub skipped: usize,
    /// Entries the file gives more than once.
    pub repeated: usize,
    pub invalid_count: usize,
    /// The first [`MAX_LISTED_INVALID`] invalid rows.
    pub invalid: Vec<InvalidRow>,
    /// The line the rows not read start at, when the file has more than
    /// [`MAX_IMPORT_ROWS`].
    pub next_line: Option<usize>,
}

/// Reads the file. The body's own problems (not UTF-8, no header, no
/// address column) refuse it whole; a row's problem refuses that row.
pub fn parse(body: &[u8], q: &ImportQuery, tenant: &str, now_ms: u64) -> Result<Parsed, ApiError> {
    if body.len() > MAX_IMPORT_BYTES {
        return Err(body_limit()
            .admits(body.len())
            .err()
            .unwrap_or_else(|| ApiError::too_large("body", "the import is larger than 2 MiB")));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid_field("body", "invalid_encoding", "CSV in UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Records::new(text);
    let header = match records.next() {
        Some(Ok((_, h))) if h.iter().any(|c| !c.trim().is_empty()) => h,
        Some(Err(e)) => return Err(e.at_header()),
        _ => {
            return Err(ApiError::invalid_field(
                "body",
                "required",
                "a CSV file with a header row and one row per address",
            ));
        }
    };
    let names: Vec<String> = header.iter().map(|h| normalized(h)).collect();
    let column = |candidates: &[&str]| {
        candidates
            .iter()
            .find_map(|c| names.iter().position(|n| n == c))
    };
    let address_col = column(q.format.address_headers()).ok_or_else(|| {
        ApiError::invalid_field(
            "body",
            "missing_column",
            format!(
                "the header has no address column ({}) for format {}",
                q.format.address_headers().join(" or "),
                q.format.as_str()
            ),
        )
    })?;
    let columns = Columns {
        address: address_col,
        reason: column(&["reason", "suppressionreason"]),
        topic: column(&["topic"]),
        stream: column(&["stream"]),
        tags: column(&["tags", "tag"]),
        unsubscribed: column(&["unsubscribed"]),
        detail: column(&["reason", "error", "suppressionreason"]),
    };
    if q.format == Format::Resend && columns.unsubscribed.is_none() {
        return Err(ApiError::invalid_field(
            "body",
            "missing_column",
            "a Resend contacts export has an unsubscribed column",
        ));
    }
    let mut out = Parsed::default();
    let mut seen = std::collections::HashSet::new();
    for record in records {
        let (line, fields) = match record {
            Ok(r) => r,
            Err(e) => {
                out.rows += 1;
                out.invalid_count += 1;
                push_invalid(&mut out, e.invalid());
                // The reader cannot find the next row after a broken quote.
                break;
            }
        };
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if out.rows == MAX_IMPORT_ROWS {
            out.next_line = Some(line);
            break;
        }
        out.rows += 1;
        match row_entries(q, &columns, &fields, tenant, now_ms) {
            Ok(entries) if entries.is_empty() => out.skipped += 1,
            Ok(entries) => {
                for e in entries {
                    if seen.insert((e.address.clone(), e.scope.as_stored())) {
                        out.entries.push(e);
                    } else {
                        out.repeated += 1;
                    }
                }
            }
            Err((field, rule, message)) => {
                out.invalid_count += 1;
                push_invalid(
                    &mut out,
                    InvalidRow {
                        line,
                        field,
                        rule,
                        message,
                    },
                );
            }
        }
    }
    Ok(out)
}

fn push_invalid(out: &mut Parsed, row: InvalidRow) {
    if out.invalid.len() < MAX_LISTED_INVALID {
        out.invalid.push(row);
    }
}

/// A header as compared: lower case, letters and digits only
/// (`Email Address` and `email_address` are `emailaddress`).
fn normalized(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

struct Columns {
    address: usize,
    reason: Option<usize>,
    topic: Option<usize>,
    stream: Option<usize>,
    tags: Option<usize>,
    unsubscribed: Option<usize>,
    detail: Option<usize>,
}

type RowError = (String, &'static str, String);

fn row_entries(
    q: &ImportQuery,
    c: &Columns,
    fields: &[String],
    tenant: &str,
    now_ms: u64,
) -> Result<Vec<Entry>, RowError> {
    let get = |i: Option<usize>| {
        i.and_then(|i| fields.get(i))
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
    };
    let raw = get(Some(c.address)).ok_or_else(|| {
        (
            "email".to_string(),
            "required",
            "the row has no address".to_string(),
        )
    })?;
    let address = EmailAddress::parse(raw).map_err(|e| {
        (
            "email".to_string(),
            e.rule(),
            format!("not an address: {e}"),
        )
    })?;
    let address = address_key(&address.to_string());
    if q.format == Format::Resend {
        let unsubscribed = get(c.unsubscribed).unwrap_or("false");
        match unsubscribed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => {}
            "false" | "0" | "no" => return Ok(Vec::new()),
            _ => {
                return Err((
                    "unsubscribed".into(),
                    "invalid_value",
                    "true or false".into(),
                ));
            }
        }
    }
    let reason = match q.format.fixed_reason() {
        Some(r) => r,
        None if q.format == Format::Postmark => match get(c.reason) {
            Some("HardBounce") => Reason::HardBounce,
            Some("SpamComplaint") => Reason::Complaint,
            Some("ManualSuppression") => Reason::Unsubscribe,
            _ => {
                return Err((
                    "reason".into(),
                    "invalid_reason",
                    "Postmark's reasons are HardBounce, SpamComplaint and ManualSuppression".into(),
                ));
            }
        },
        None => match get(c.reason) {
            None => Reason::Manual,
            Some(r) => Reason::parse(r)
                .filter(|r| *r != Reason::Erased)
                .ok_or_else(|| {
                    (
                        "reason".to_string(),
                        "invalid_reason",
                        "must be one of: hard_bounce, complaint, unsubscribe, manual".to_string(),
                    )
                })?,
        },
    };
    let name = |field: &str, value: &str| {
        checked_name(value)
            .map(str::to_string)
            .map_err(|rule| (field.to_string(), "invalid_name", rule.to_string()))
    };
    let scopes: Vec<Scope> = match q.format {
        Format::Csv => match (get(c.topic), get(c.stream)) {
            (Some(_), Some(_)) => {
                return Err((
                    "topic".into(),
                    "conflicting_fields",
                    "a row has a topic or a stream, not both".into(),
                ));
            }
            (Some(t), None) => vec![Scope::Topic(name("topic", t)?)],
            (None, Some(s)) => vec![Scope::Stream(name("stream", s)?)],
            (None, None) => vec![Scope::All],
        },
        Format::SendGridGroupUnsubscribes => {
            vec![Scope::Topic(format!("asm-{}", q.group_id.unwrap_or(0)))]
        }
        Format::MailgunUnsubscribes => {
            let tags: Vec<&str> = get(c.tags)
                .unwrap_or("*")
                .split([',', ';', '[', ']', '"', '\'', ' '])
                .filter(|t| !t.is_empty())
                .collect();
            if tags.is_empty() || tags.contains(&"*") {
                vec![Scope::All]
            } else {
                tags.into_iter()
                    .map(|t| name("tags", t).map(Scope::Topic))
                    .collect::<Result<_, _>>()?
            }
        }
        Format::Postmark => match &q.stream {
            Some(s) => vec![Scope::Stream(s.clone())],
            None => vec![Scope::All],
        },
        Format::Resend => vec![Scope::Stream("marketing".to_string())],
        _ => vec![Scope::All],
    };
    let detail = format!(
        "imported ({}){}",
        q.format.as_str(),
        get(c.detail)
            .filter(|_| q.format != Format::Csv)
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    );
    let detail: String = detail.chars().take(super::MAX_DETAIL_CHARS).collect();
    Ok(scopes
        .into_iter()
        .map(|scope| Entry {
            tenant: tenant.to_string(),
            address: address.clone(),
            scope,
            reason,
            message_id: None,
            detail: Some(detail.clone()),
            created_at_ms: now_ms,
            expires_at_ms: None,
        })
        .collect())
}

/// The answer: counts, with `imported` the entries the list did not have.
pub fn answer(q: &ImportQuery, parsed: &Parsed, imported: usize) -> Value {
    let invalid: Vec<Value> = parsed
        .invalid
        .iter()
        .map(|r| json!({"line": r.line, "field": r.field, "rule": r.rule, "message": r.message}))
        .collect();
    json!({
        "object": "suppression_import",
        "format": q.format.as_str(),
        "rows": parsed.rows,
        "imported": imported,
        "already_present": parsed.entries.len().saturating_sub(imported) + parsed.repeated,
        "skipped": parsed.skipped,
        "invalid_count": parsed.invalid_count,
        "invalid": invalid,
        "capped": parsed.next_line.is_some(),
        "next_line": parsed.next_line,
    })
}

/// A broken row: an unclosed quote or a field too long.
#[derive(Debug)]
struct BrokenRow {
    line: usize,
    message: &'static str,
}

impl BrokenRow {
    fn at_header(self) -> ApiError {
        ApiError::invalid_field("body", "invalid_csv", self.message)
    }

    fn invalid(self) -> InvalidRow {
        InvalidRow {
            line: self.line,
            field: String::new(),
            rule: "invalid_csv",
            message: self.message.to_string(),
        }
    }
}

/// RFC 4180 records: fields split by `,`, records by CRLF or LF, fields
/// in `"` may hold `,`, line breaks and `""`. Each record comes with the
/// line it starts on.
struct Records<'a> {
    rest: std::str::Chars<'a>,
    line: usize,
    done: bool,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Self {
        Records {
            rest: text.chars(),
            line: 1,
            done: false,
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<(usize, Vec<String>), BrokenRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut any = false;
        let broken = |message| {
            Some(Err(BrokenRow {
                line: start,
                message,
            }))
        };
        loop {
            let Some(c) = self.rest.next() else {
                self.done = true;
                if quoted {
                    return broken("a quoted field is never closed");
                }
                if !any {
                    return None;
                }
                fields.push(field);
                return Some(Ok((start, fields)));
            };
            any = true;
            if field.len() > MAX_FIELD_BYTES {
                self.done = true;
                return broken("a field is longer than 4096 bytes");
            }
            match (quoted, c) {
                (true, '"') => {
                    if self.rest.clone().next() == Some('"') {
                        self.rest.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                (true, c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    field.push(c);
                }
                (false, '"') if field.trim().is_empty() => {
                    field.clear();
                    quoted = true;
                }
                (false, ',') => fields.push(std::mem::take(&mut field)),
                (false, '\r') if self.rest.clone().next() == Some('\n') => {}
                (false, '\n') => {
                    self.line += 1;
                    fields.push(field);
                    return Some(Ok((start, fields)));
                }
                (false, c) => field.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests;
