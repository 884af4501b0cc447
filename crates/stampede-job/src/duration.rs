//! Durations in files and flags: `"10s"`, `"1m30s"`, `"500ms"`, or a number of seconds.
//!
//! ConTest descriptors write durations the way Go's `time.ParseDuration` reads them
//! (`"1.5h"`, `"1m30.5s"`, `"10µs"`), so `parse_go` reads exactly that syntax, and
//! [`parse`] falls back to it for the Go forms humantime does not know.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// The longest duration accepted anywhere: longer values are surely typos, and instants
/// that far ahead would overflow.
const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

fn bounded(d: Duration, text: &str) -> Result<Duration, String> {
    if d > LONGEST {
        return Err(format!(
            "duration {text:?} is longer than a year; give at most 366d"
        ));
    }
    Ok(d)
}

fn from_secs(secs: f64, text: &str) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => bounded(d, text),
        Err(_) => Err(format!(
            "invalid duration {text:?}: it must be zero or positive"
        )),
    }
}

/// Parses `10s`, `1m 30s`, `500ms`, or a bare number of seconds; Go's forms such as
/// `1.5h` and `1m30.5s` too.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return from_secs(secs, text);
    }
    match humantime::parse_duration(text) {
        Ok(d) => bounded(d, text),
        Err(human) => parse_go(text).map_err(|go| {
            // Go's refusal when the text is Go syntax (negative, or too long), else
            // humantime's, whose forms the hint shows.
            if text.starts_with('-') || go_nanos(text).is_ok() {
                go
            } else {
                format!("invalid duration {text:?} ({human}); write it like 10s, 1m30s or 500ms")
            }
        }),
    }
}

/// Parses Go's `time.ParseDuration` syntax: a sequence of decimal numbers, each with
/// an optional fraction and a unit (`300ms`, `1.5h`, `2h45m`, `1m30.5s`, `10µs`); a
/// bare `0` needs no unit. Negative durations are refused.
///
/// `pub(crate)` until the crate root re-exports it, as an unreachable `pub` fails the lints.
pub(crate) fn parse_go(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    from_nanos(go_nanos(text)?, text)
}

/// The units Go's `time.ParseDuration` knows, in nanoseconds.
const GO_UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // micro sign
    ("\u{3bc}s", 1_000), // Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
];

/// Go's duration syntax to nanoseconds, saturating rather than overflowing: the year
/// bound is checked afterwards.
fn go_nanos(text: &str) -> Result<u128, String> {
    let hint = "write it like 300ms, 1.5h or 2h45m (units ns, us, µs, ms, s, m, h)";
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration {text:?}: it is empty; {hint}"));
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        let (fraction, after_fraction) = match after_whole.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {rest:?}; {hint}"
            ));
        }
        let unit_len = after_fraction
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after_fraction.len());
        let (unit, after_unit) = after_fraction.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("invalid duration {text:?}: missing unit; {hint}"));
        }
        let Some(&(_, scale)) = GO_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {unit:?}; {hint}"
            ));
        };
        nanos = nanos.saturating_add(component_nanos(whole, fraction, scale));
        rest = after_unit;
    }
    if negative && nanos > 0 {
        return Err(format!(
            "invalid duration {text:?}: it is negative; durations must be zero or positive"
        ));
    }
    Ok(nanos)
}

fn from_nanos(nanos: u128, text: &str) -> Result<Duration, String> {
    if nanos > LONGEST.as_nanos() {
        return bounded(Duration::MAX, text);
    }
    const PER_SEC: u128 = 1_000_000_000;
    // Both fit: the seconds are at most a year's, the remainder is below 10^9.
    let d = Duration::new((nanos / PER_SEC) as u64, (nanos % PER_SEC) as u32);
    bounded(d, text)
}

/// Splits `text` after its leading ASCII digits.
fn split_digits(text: &str) -> (&str, &str) {
    text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    )
}

/// `whole.fraction` units of `scale` nanoseconds, the fraction truncated to whole
/// nanoseconds as Go does; saturating.
fn component_nanos(whole: &str, fraction: &str, scale: u128) -> u128 {
    // A whole part this long is far beyond any accepted duration.
    let whole = match whole.trim_start_matches('0') {
        w if w.len() > 30 => return u128::MAX,
        "" => 0,
        w => w.parse::<u128>().unwrap_or(u128::MAX),
    };
    // Digits past the 18th cannot add a nanosecond to any unit up to an hour.
    let fraction = &fraction[..fraction.len().min(18)];
    let fraction_nanos = match fraction.parse::<u128>() {
        Ok(digits) => digits * scale / 10u128.pow(fraction.len() as u32),
        Err(_) => 0, // no fraction
    };
    whole.saturating_mul(scale).saturating_add(fraction_nanos)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Seconds(f64),
    Text(String),
}

fn from_raw(raw: Raw) -> Result<Duration, String> {
    match raw {
        Raw::Seconds(s) => from_secs(s, &s.to_string()),
        Raw::Text(t) => parse(&t),
    }
}

/// `deserialize_with` for `Option<Duration>`.
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<Raw>::deserialize(d)?
        .map(from_raw)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// `deserialize_with` for `Duration`.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// How durations are written: `10s`, `1m30s`, `500ms`, `1.5h`, or a number of seconds.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used; durations are parsed by `crate::duration`.
pub enum DurationText {
    /// `10s`, `1m30s`, `500ms`, `1.5h`.
    Text(String),
    /// Seconds.
    Seconds(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2.5"), Ok(Duration::from_millis(2500)));
        assert!(
            parse("ten seconds")
                .unwrap_err()
                .contains("write it like 10s")
        );
    }

    #[test]
    fn parse_accepts_go_forms_humantime_rejects() {
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1m30.5s"), Ok(Duration::from_millis(90_500)));
        assert_eq!(parse("10µs"), Ok(Duration::from_micros(10)));
        // What humantime reads keeps its meaning.
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert!(parse("-5s").unwrap_err().contains("negative"));
        assert!(parse("400d").unwrap_err().contains("366d"));
        assert!(parse("9000.5h").unwrap_err().contains("366d"));
        assert!(parse("1.5x").unwrap_err().contains("write it like 10s"));
    }

    fn go(text: &str) -> Duration {
        parse_go(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn go_forms() {
        let cases = [
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("300ms", Duration::from_millis(300)),
            ("1.5h", Duration::from_secs(5400)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            ("1m30.5s", Duration::from_millis(90_500)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("10μs", Duration::from_micros(10)),
            ("10ns", Duration::from_nanos(10)),
            (".5s", Duration::from_millis(500)),
            ("5.s", Duration::from_secs(5)),
            ("+5s", Duration::from_secs(5)),
            ("1h1h", Duration::from_secs(7200)),
            ("1.0000000000000000000001s", Duration::from_secs(1)),
            ("0.3333333333s", Duration::from_nanos(333_333_333)),
            ("8784h", Duration::from_secs(366 * 86_400)),
        ];
        for (text, want) in cases {
            assert_eq!(go(text), want, "{text:?}");
        }
    }

    #[test]
    fn go_refusals() {
        let cases = [
            ("", "empty"),
            ("1", "missing unit"),
            ("1h30", "missing unit"),
            ("10x", "unknown unit \"x\""),
            ("1d", "unknown unit \"d\""),
            (".s", "expected a number"),
            ("s", "expected a number"),
            ("-5s", "negative"),
            ("-1.5h", "negative"),
            ("8785h", "366d"),
            ("99999999999999999999999999999999999h", "366d"),
        ];
        for (text, want) in cases {
            let err = parse_go(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
    }
}
