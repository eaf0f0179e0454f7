//! Times as the Compute API writes them and as a person reads them: RFC 3339, ages, durations.

use anyhow::bail;

/// Seconds since the Unix epoch of an RFC 3339 timestamp such as
/// `2024-05-30T05:39:28.123-07:00` (the form of `creationTimestamp`); `None` when it is not one.
/// Fractions of a second are dropped: ages are shown in minutes.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let punctuation = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(at, c)| bytes[at] != c) || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            let (h, m) = zone.split_once(':')?;
            if h.len() != 2
                || m.len() != 2
                || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()))
            {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`), exact for any year without a table.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC date of a time in seconds since the Unix epoch, as `YYYY-MM-DD`.
pub fn utc_date(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// A time in seconds since the Unix epoch as RFC 3339 in UTC, `2024-05-30T12:39:28Z`: how the
/// tool records a moment on an image (the deprecation's date).
pub fn rfc3339_utc(seconds: i64) -> String {
    let secs = seconds.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_date(seconds),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A time in seconds since the Unix epoch as a log line starts with it, in UTC to the second:
/// `2026-11-30T09:00:01Z`, the form packer's `-timestamp-ui` and CI runners use.
pub fn utc_timestamp(seconds: i64) -> String {
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_date(seconds),
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// How long a phase took, as its last line says it: `52m 10s`, `3m 4s`, `1h 2m 3s`, `12s`.
pub fn format_duration(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m {seconds}s"),
        _ => format!("{hours}h {minutes}m {seconds}s"),
    }
}

/// The inverse of `days_from_civil` (also Howard Hinnant's).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An age as a person reads it: `3d 4h`, `5h 12m`, `45m`. A time in the future (a clock
/// skew between this machine and Google's) shows as `0m` rather than a negative age.
pub fn format_age(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m")
    }
}

/// Parses a duration written as a whole number of minutes, hours or days (`90m`, `4h`, `2d`)
/// into seconds. The errors do not repeat the text: clap's message around them already does.
pub fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let accepted = "write a whole number of minutes, hours or days, such as `90m`, `4h` or `2d`";
    let trimmed = text.trim();
    let Some(unit) = trimmed.chars().last() else {
        bail!("the duration is empty: {accepted}");
    };
    let scale = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ if trimmed.bytes().all(|b| b.is_ascii_digit()) => bail!("no unit: {accepted}"),
        _ => bail!("not a duration: {accepted}"),
    };
    let number = &trimmed[..trimmed.len() - 1];
    if number.starts_with('-') {
        bail!("a duration is never negative: {accepted}");
    }
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        bail!("not a duration: {accepted}");
    }
    let Some(seconds) = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
    else {
        bail!("too long a duration: {accepted}");
    };
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_are_utc_to_the_second() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_796_029_201), "2026-11-30T09:00:01Z");
        assert_eq!(utc_timestamp(1_796_083_199), "2026-11-30T23:59:59Z");
    }

    #[test]
    fn durations_read_as_a_phase_ends() {
        assert_eq!(format_duration(12), "12s");
        assert_eq!(format_duration(184), "3m 4s");
        assert_eq!(format_duration(52 * 60 + 10), "52m 10s");
        assert_eq!(format_duration(3723), "1h 2m 3s");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.999Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-05-30T05:39:28Z"), Some(1_717_047_568));
        // The same instant, as the Compute API writes it in Pacific time.
        assert_eq!(
            parse_rfc3339("2024-05-29T22:39:28.123-07:00"),
            Some(1_717_047_568)
        );
        assert_eq!(
            parse_rfc3339("2024-05-30T11:09:28+05:30"),
            Some(1_717_047_568)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
    }

    #[test]
    fn rfc3339_rejects_what_it_is_not() {
        for bad in [
            "",
            "2024-05-30",
            "2024-05-30T05:39:28",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-30T24:00:00Z",
            "2024-05-30T05:39:28.Z",
            "2024-05-30T05:39:28+0700",
            "2024-05-30T05:39:28+07:00 ",
            "2024/05/30T05:39:28Z",
            "2024-05-30T05:39:28X",
            "２０24-05-30T05:39:28Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn utc_dates_round_trip() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_717_047_568), "2024-05-30");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_782_400 - 1), "2000-02-28");
        assert_eq!(utc_date(-1), "1969-12-31");
        for days in [-719_162, -1, 0, 59, 365, 10_957, 19_873, 2_932_896] {
            let date = utc_date(days * 86_400 + 43_200);
            let back = parse_rfc3339(&format!("{date}T12:00:00Z")).unwrap();
            assert_eq!(back, days * 86_400 + 43_200, "{date}");
        }
    }

    #[test]
    fn utc_timestamps_read_back() {
        assert_eq!(rfc3339_utc(1_717_047_568), "2024-05-30T05:39:28Z");
        for t in [0, 1_717_047_568, 951_782_399] {
            assert_eq!(parse_rfc3339(&rfc3339_utc(t)), Some(t));
        }
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(0), "0m");
        assert_eq!(format_age(59), "0m");
        assert_eq!(format_age(45 * 60), "45m");
        assert_eq!(format_age(3600), "1h 0m");
        assert_eq!(format_age(5 * 3600 + 12 * 60), "5h 12m");
        assert_eq!(format_age(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
        assert_eq!(format_age(-300), "0m");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), 5400);
        assert_eq!(parse_duration("4h").unwrap(), 14_400);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        assert_eq!(parse_duration("0m").unwrap(), 0);
        for bad in [
            "", "4", "h", "4 h", "-4h", "4.5h", "4H", "1w", "4hours", "+4h",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("`90m`, `4h` or `2d`"), "{bad:?}: {err}");
        }
        assert!(parse_duration("4")
            .unwrap_err()
            .to_string()
            .starts_with("no unit: "));
        assert!(parse_duration("")
            .unwrap_err()
            .to_string()
            .starts_with("the duration is empty"));
        assert!(parse_duration("-1h")
            .unwrap_err()
            .to_string()
            .starts_with("a duration is never negative: "));
        let err = parse_duration("99999999999999999999d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("too long"), "{err}");
    }
}
