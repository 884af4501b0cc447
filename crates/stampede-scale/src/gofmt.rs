//! Go's text forms of durations and times, because coder's text and JSON layouts print
//! them: `time.Duration.String` (`"1.5s"`, `"2m0s"`, `"300ms"`), `Duration.Round`, and
//! `time.RFC3339Nano` (trailing zeros of the fraction dropped).

use std::time::{Duration, SystemTime};

/// `d` as Go's `time.Duration.String` prints it.
pub fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 6));
    }
    let secs = nanos / 1_000_000_000;
    let (hours, minutes) = (secs / 3600, (secs / 60) % 60);
    let seconds = decimal(nanos % 60_000_000_000, 9);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds);
    out.push('s');
    out
}

/// `value / 10^digits` with the fraction's trailing zeros (and a bare point) dropped.
fn decimal(value: u128, digits: u32) -> String {
    let unit = 10u128.pow(digits);
    let (whole, frac) = (value / unit, value % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Go's `Duration.Round(m)` for non-negative durations: halves round up.
pub(crate) fn round(d: Duration, m: Duration) -> Duration {
    let (n, m) = (d.as_nanos(), m.as_nanos());
    if m == 0 {
        return d;
    }
    let r = n % m;
    let rounded = if r + r < m { n - r } else { n + (m - r) };
    Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
}

/// `t` in Go's `time.RFC3339Nano` form, in UTC: `2023-10-05T12:03:56.395813665Z`.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let full = humantime::format_rfc3339_nanos(t).to_string();
    // `2023-10-05T12:03:56.395813665Z`: trim the fraction like Go's `.999999999`.
    match full.strip_suffix('Z').and_then(|s| s.split_once('.')) {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(nanos: u64, expected: &str) {
        assert_eq!(duration(Duration::from_nanos(nanos)), expected, "{nanos}ns");
    }

    #[test]
    fn durations_print_like_go() {
        check(0, "0s");
        check(1, "1ns");
        check(1_100, "1.1µs");
        check(2_200_000, "2.2ms");
        check(300_000_000, "300ms");
        check(1_000_000_000, "1s");
        check(1_500_000_000, "1.5s");
        check(60_000_000_000, "1m0s");
        check(80_000_000_000, "1m20s");
        check(3_600_000_000_000, "1h0m0s");
        check(3_723_000_000_001, "1h2m3.000000001s");
    }

    #[test]
    fn round_halves_up() {
        let ms = Duration::from_millis(1);
        let r = |n| round(Duration::from_nanos(n), ms).as_nanos();
        assert_eq!(r(1_499_999), 1_000_000);
        assert_eq!(r(1_500_000), 2_000_000);
        assert_eq!(r(2_000_000), 2_000_000);
        assert_eq!(round(Duration::from_nanos(7), Duration::ZERO).as_nanos(), 7);
    }

    #[test]
    fn times_print_like_rfc3339_nano() {
        let at = |ns: u64| SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
        assert_eq!(
            rfc3339_nano(at(1_696_507_436_395_813_665)),
            "2023-10-05T12:03:56.395813665Z"
        );
        assert_eq!(
            rfc3339_nano(at(1_696_507_436_500_000_000)),
            "2023-10-05T12:03:56.5Z"
        );
        assert_eq!(
            rfc3339_nano(at(1_696_507_436_000_000_000)),
            "2023-10-05T12:03:56Z"
        );
    }
}
