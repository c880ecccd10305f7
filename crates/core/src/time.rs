//! ATOF timestamps: RFC 3339 UTC, `Z` suffix, exactly six fractional digits.

use std::cell::Cell;
use std::fmt::Write;

thread_local! {
    /// The latest timestamp this thread gave an event.
    static LAST: Cell<i64> = const { Cell::new(i64::MIN) };
}

/// The timestamp for an event emitted now on this thread: the clock, but never earlier than
/// `at_least` (an end is at least 1 µs after its start) and never earlier than the previous
/// event of this thread. So for each thread, emission order and timestamp order agree, and
/// readers that sort by time (some ATOF tools do) keep the stream's order.
pub(crate) fn event_time(at_least: i64) -> i64 {
    let t = crate::platform::now_micros().max(at_least);
    LAST.with(|last| {
        let t = t.max(last.get());
        last.set(t);
        t
    })
}

/// Formats epoch microseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_micros(us: i64) -> String {
    let mut out = String::with_capacity(27);
    write_micros(&mut out, us);
    out
}

/// Appends the formatted timestamp to `out`.
pub fn write_micros(out: &mut String, us: i64) {
    match micros_text(us) {
        Some(b) => out.push_str(std::str::from_utf8(&b).unwrap_or_default()),
        None => {
            // Outside four-digit years (never from a real clock): the general formatter.
            let (y, m, d, sod, frac) = parts(us);
            let _ = write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z", sod / 3600, (sod / 60) % 60, sod % 60);
        }
    }
}

/// The 27 bytes of `YYYY-MM-DDTHH:MM:SS.ffffffZ` for a four-digit year (`None` outside them).
/// Every event is stamped: fixed-width digits written directly, no `core::fmt`, no allocation
/// (the event writer copies these bytes as they are). Events come in bursts within the same
/// second, so each thread keeps the text of the last second it formatted and writes only the
/// six fractional digits when the second is the same.
pub(crate) fn micros_text(us: i64) -> Option<[u8; 27]> {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000) as u32;
    let mut b = LAST_SECOND.with(|last| match last.get() {
        (s, text) if s == secs => Some(text),
        _ => {
            let text = second_text(secs)?;
            last.set((secs, text));
            Some(text)
        }
    })?;
    digits(&mut b, 20, 6, frac);
    Some(b)
}

/// Writes `v` as `width` decimal digits ending before `b[at + width]`.
fn digits(b: &mut [u8; 27], at: usize, width: usize, mut v: u32) {
    for i in (at..at + width).rev() {
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

thread_local! {
    /// The last second [`micros_text`] formatted on this thread, and its text (fraction zero).
    static LAST_SECOND: Cell<(i64, [u8; 27])> = const { Cell::new((i64::MIN, [0; 27])) };
}

/// `micros_text` of a whole second (`None` outside four-digit years).
fn second_text(secs: i64) -> Option<[u8; 27]> {
    let (y, m, d, sod, _) = parts(secs * 1_000_000);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    // Each value is within 0..=9999 (the year, checked above) or a month, day or time field.
    for (at, width, v) in [(0, 4, y), (5, 2, m), (8, 2, d), (11, 2, sod / 3600), (14, 2, (sod / 60) % 60), (17, 2, sod % 60)] {
        digits(&mut b, at, width, v as u32);
    }
    Some(b)
}

/// Year, month, day, second of the day and microseconds of epoch microseconds.
fn parts(us: i64) -> (i64, i64, i64, i64, i64) {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod, frac)
}

/// Parses the ATOF timestamp form back to epoch microseconds (also used by readers of JSONL).
pub fn parse_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 27 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' || b[26] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se, f) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + f)
}

// Howard Hinnant's civil-calendar algorithms (public domain arithmetic).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_micros(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(format_micros(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
    }

    #[test]
    fn the_cached_second_agrees_with_the_general_formatter() {
        // Within one second, across a second, back to an earlier second, before 1970: the
        // per-thread cache must never leak one second's text into another.
        let general = |us: i64| {
            let (y, m, d, sod, frac) = parts(us);
            format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z", sod / 3600, (sod / 60) % 60, sod % 60)
        };
        let base = 1_700_000_000_000_000;
        for us in [base, base + 1, base + 999_999, base + 1_000_000, base - 1, base, -1, -1_000_001, 0, 253_402_300_799_999_999, base] {
            assert_eq!(format_micros(us), general(us), "{us}");
        }
    }

    #[test]
    fn event_times_never_go_backwards_on_a_thread() {
        let a = event_time(0);
        let b = event_time(a + 1_000_000); // an end clamped far ahead
        let c = event_time(0); // the next event is not stamped before it
        assert!(a < b && b <= c);
    }

    #[test]
    fn parse_inverts_format() {
        for us in [0, 1, 1_700_000_000_123_456, 4_102_444_799_999_999, 951_782_400_000_001] {
            assert_eq!(parse_micros(&format_micros(us)), Some(us));
        }
        assert_eq!(parse_micros("2023-11-14T22:13:20.12345Z"), None);
        assert_eq!(parse_micros("2023-11-14 22:13:20.123456Z"), None);
    }
}
