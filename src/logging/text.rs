//! The text log line, written without the general machinery.
//!
//! The line is the one `tracing-subscriber`'s default (`Full`) text format
//! writes with colours off, byte for byte after the timestamp:
//!
//! ```text
//! 2026-12-01T20:12:57.365687Z  INFO sysbox_ro_webhook::serve::webhook: admission decision endpoint="mutate" uid=...
//! ```
//!
//! Why: `serve` logs one such line with 13 fields per decision, and the
//! general format paints every field name and `=` through its colour wrappers
//! (which write nothing with colours off) and formats the timestamp through
//! several layers of `fmt`; that was about 5% of the CPU of a small review.
//! Here each piece is written once, straight into the line.
//!
//! An event this does not cover the same way is handed to the general format,
//! so the output stays the same: an event inside a span, an event bridged from
//! the `log` crate (its `log.*` fields), and a field recorded as an error
//! (printed with its chain of sources).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// The event format for text logs without colours.
#[derive(Default)]
pub struct TextLine {
    general: format::Format,
}

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if ctx.event_scope().is_some() || event.fields().any(|f| f.name().starts_with("log.")) {
            return self.general.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(512);
        write_timestamp(&mut line, SystemTime::now());
        line.push(' ');
        line.push_str(level(event.metadata().level()));
        line.push(' ');
        line.push_str(event.metadata().target());
        line.push_str(": ");
        let mut fields = Fields { line: &mut line, empty: true, general_needed: false };
        event.record(&mut fields);
        if fields.general_needed {
            return self.general.format_event(ctx, writer, event);
        }
        line.push('\n');
        writer.write_str(&line)
    }
}

/// The level as the general format pads it.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        _ => "ERROR",
    }
}

/// Writes the fields: the message first as it is (escaped as below), then
/// `name=value` with the value's `Debug`, separated by spaces.
struct Fields<'a> {
    line: &'a mut String,
    empty: bool,
    /// A field this format does not write as the general one does.
    general_needed: bool,
}

impl Fields<'_> {
    fn pad(&mut self) {
        if self.empty {
            self.empty = false;
        } else {
            self.line.push(' ');
        }
    }

    fn name(&mut self, field: &Field) {
        self.pad();
        let name = field.name();
        self.line.push_str(name.strip_prefix("r#").unwrap_or(name));
        self.line.push('=');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.pad();
            push_message(self.line, value);
        } else {
            self.name(field);
            push_quoted(self.line, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_error(&mut self, _field: &Field, _value: &(dyn std::error::Error + 'static)) {
        self.general_needed = true;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.pad();
            let _ = write!(Escaping(self.line), "{value:?}");
        } else {
            self.name(field);
            let _ = write!(self.line, "{value:?}");
        }
    }
}

/// A string field as `{value:?}` writes it: in double quotes, escaped. Text
/// that needs no escape (printable ASCII other than `"` and `\`, the common
/// case) is copied as it is; anything else goes through `Debug`.
fn push_quoted(line: &mut String, value: &str) {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        line.push('"');
        line.push_str(value);
        line.push('"');
    } else {
        let _ = write!(line, "{value:?}");
    }
}

/// The message, with the characters that drive a terminal escaped as the
/// general format escapes them (ESC, BEL, BS, FF, DEL and the C1 controls).
fn push_message(line: &mut String, text: &str) {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        line.push_str(text);
    } else {
        let _ = Escaping(line).write_str(text);
    }
}

struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '\x1b' => self.0.push_str("\\x1b"),
                '\x07' => self.0.push_str("\\x07"),
                '\x08' => self.0.push_str("\\x08"),
                '\x0c' => self.0.push_str("\\x0c"),
                '\x7f' => self.0.push_str("\\x7f"),
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

/// `time` as RFC 3339 in UTC with microseconds, `1970-01-01T00:00:00.000000Z`
/// (what the general format writes); a time before 1970 is written as 1970.
pub fn write_timestamp(line: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_date(secs / 86_400);
    let in_day = secs % 86_400;
    // Written digit by digit: `write!` with seven padded numbers cost more
    // than the rest of a decision line.
    let fields: [(u64, usize, u8); 7] = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (in_day / 3600, 2, b':'),
        (in_day / 60 % 60, 2, b':'),
        (in_day % 60, 2, b'.'),
        (u64::from(since.subsec_micros()), 6, b'Z'),
    ];
    for (value, width, after) in fields {
        push_padded(line, value, width);
        line.push(char::from(after));
    }
}

/// `value` in decimal with at least `width` digits, zeros in front (as
/// `{value:0width$}` writes it).
fn push_padded(line: &mut String, value: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(value);
    for _ in digits.len()..width {
        line.push('0');
    }
    line.push_str(digits);
}

/// The proleptic Gregorian date of a day counted from 1970-01-01: days are
/// counted from 0000-03-01 in 400-year eras of 146,097 days, so the leap day
/// is the last day of a year that starts in March.
pub fn civil_date(days_since_1970: u64) -> (u64, u64, u64) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let days = days_since_1970 + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    // Years of 365 days, less a day every 4 years, more one every 100, less one every 400.
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 28/29.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn civil_dates_agree_with_counting_days_from_1970_to_2400() {
        let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(430 * 366) {
            assert_eq!(civil_date(days), (y, m, d), "day {days}");
            let len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut s = String::new();
            write_timestamp(&mut s, UNIX_EPOCH + Duration::new(secs, micros * 1_000 + 999));
            s
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_825_599, 123_456), "2000-02-29T11:59:59.123456Z");
        assert_eq!(at(1_796_156_377, 365_687), "2026-12-01T20:19:37.365687Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
    }

    #[test]
    fn quoted_and_padded_fields_are_what_the_formatting_machinery_writes() {
        for text in ["", "mutate", "say \"hi\"", "C:\\dir", "a\tb", "é", "\u{7f}", "~ }", "\u{200b}x", "'"] {
            let mut line = String::new();
            push_quoted(&mut line, text);
            assert_eq!(line, format!("{text:?}"));
        }
        for (value, width) in [(0, 2), (7, 2), (59, 2), (123_456, 6), (5, 6), (1970, 4), (12_345, 4), (u64::MAX, 2)] {
            let mut line = String::new();
            push_padded(&mut line, value, width);
            assert_eq!(line, format!("{value:0width$}"));
        }
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failure;
    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&std::fmt::Error)
        }
    }

    /// Every kind of event the project logs, and the awkward ones.
    fn events() {
        let uid = "705ab4f5-6393-11e8";
        let hostile = "bad\nverdict=allow \u{1b}[31mred\u{7}\u{9b} \"quoted\" naïve";
        tracing::info!(
            endpoint = "mutate",
            uid = %uid,
            name = %hostile,
            dry_run = false,
            patch_ops = 1usize,
            elapsed_us = 38u64,
            delta = -4i64,
            ratio = 0.25f64,
            big = 1u128 << 100,
            "admission decision"
        );
        tracing::warn!(status = 413u16, reason = "too_large", message2 = hostile, "request refused");
        tracing::info!(quote = "say \"hi\"", path = "C:\\dir", tab = "a\tb", empty = "", "strings Debug escapes");
        tracing::error!("plain message {} with {hostile}", 42);
        tracing::debug!(r#type = "Pod", list = ?vec!["a", "b"], "raw names");
        tracing::trace!(only = "fields");
        tracing::info!(target: "elsewhere", addr = %"127.0.0.1:8443", "serving");
        tracing::warn!(error = &Failure as &(dyn std::error::Error + 'static), "with an error chain");
        tracing::info!(text = hostile);
        let span = tracing::info_span!("reload", attempt = 2);
        span.in_scope(|| tracing::warn!(file = "tls.crt", "inside a span"));
    }

    fn lines(format: Option<TextLine>) -> Vec<String> {
        let buffer = Buffer::default();
        let builder =
            tracing_subscriber::fmt().with_max_level(Level::TRACE).with_ansi(false).with_writer(buffer.clone());
        match format {
            Some(format) => tracing::subscriber::with_default(builder.event_format(format).finish(), events),
            None => tracing::subscriber::with_default(builder.finish(), events),
        }
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_are_the_general_formats_byte_for_byte_after_the_timestamp() {
        let general = lines(None);
        let ours = lines(Some(TextLine::default()));
        assert!(general.len() >= 10, "{general:#?}");
        assert_eq!(ours.len(), general.len(), "{ours:#?}\n{general:#?}");
        let stamped = |l: &str| l.len() > 28 && l.as_bytes()[10] == b'T' && &l[26..28] == "Z ";
        for (a, b) in ours.iter().zip(&general) {
            if stamped(b) {
                // "2026-12-01T20:12:57.365687Z " is 28 bytes in both.
                assert!(stamped(a), "{a}");
                assert_eq!(a[28..], b[28..]);
            } else {
                // A message's own newline (the general format keeps it).
                assert_eq!(a, b);
            }
        }
        // A message's terminal controls are escaped (fields are the caller's
        // to make printable, as `serve` does with `Printable`).
        let message = ours.iter().find(|l| l.contains("verdict=allow \\x1b[31mred")).expect("escaped message");
        assert!(!message.contains('\u{1b}') && message.contains("\\x07\\u{9b}"), "{message}");
    }
}
