//! Durations in files and flags: `"10s"`, `"1m30s"`, `"500ms"`, or a number of seconds.

use std::time::Duration;

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

/// Parses `10s`, `1m 30s`, `500ms`, or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return from_secs(secs, text);
    }
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write it like 10s, 1m30s or 500ms")
    })?;
    bounded(d, text)
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
pub(crate) fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<Raw>::deserialize(d)?
        .map(from_raw)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// `deserialize_with` for `Duration`.
pub(crate) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?).map_err(serde::de::Error::custom)
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
}
