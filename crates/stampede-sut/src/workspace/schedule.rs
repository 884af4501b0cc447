//! Autostart schedules: coder's daily `CRON_TZ=UTC m h * * *`, or one RFC 3339 instant.
//!
//! The instant form is what fast tests use: it is honoured to the sub-second, where the
//! cron form only has minutes. Pure functions of a given "now", so no clock in tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: u64 = 24 * 3600;

/// When a workspace starts by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Schedule {
    /// Every day at this UTC hour and minute (second 0).
    Daily {
        /// 0..=23.
        hour: u8,
        /// 0..=59.
        minute: u8,
    },
    /// Once, at this instant.
    Once(SystemTime),
}

impl Schedule {
    /// Reads `text` as a cron string or an instant; an instant must not be before `now`.
    pub(crate) fn parse(text: &str, now: SystemTime) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(cron) = text.strip_prefix("CRON_TZ=") {
            return parse_cron(cron);
        }
        if text.contains(' ') {
            return Err(format!(
                "schedule {text:?} is neither \"CRON_TZ=UTC <minute> <hour> * * *\" nor an RFC 3339 instant such as 2026-01-02T15:04:05Z"
            ));
        }
        // humantime reads only `Z`; the same instant written `+00:00` is common.
        let utc = text
            .strip_suffix("+00:00")
            .map_or_else(|| text.to_owned(), |t| format!("{t}Z"));
        let at = humantime::parse_rfc3339(&utc).map_err(|e| {
            format!(
                "schedule {text:?} is not an RFC 3339 instant in UTC ({e}); write it as 2026-01-02T15:04:05Z, or use \"CRON_TZ=UTC <minute> <hour> * * *\""
            )
        })?;
        if at < now {
            return Err(format!(
                "instant {text} is in the past (now is {}); an autostart instant must be in the future",
                humantime::format_rfc3339_millis(now)
            ));
        }
        Ok(Schedule::Once(at))
    }

    /// The first firing strictly after `after`; `None` when a one-off is behind it.
    pub(crate) fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        match *self {
            Schedule::Once(at) => (at > after).then_some(at),
            Schedule::Daily { hour, minute } => {
                let secs = after.duration_since(UNIX_EPOCH).ok()?.as_secs();
                let offset = u64::from(hour) * 3600 + u64::from(minute) * 60;
                let mut fire = secs - secs % DAY + offset;
                if UNIX_EPOCH + Duration::from_secs(fire) <= after {
                    fire += DAY;
                }
                Some(UNIX_EPOCH + Duration::from_secs(fire))
            }
        }
    }

    /// Whether the schedule is spent after it fired once.
    pub(crate) fn is_once(&self) -> bool {
        matches!(self, Schedule::Once(_))
    }
}

/// Parses what follows `CRON_TZ=`: `UTC m h * * *`.
fn parse_cron(cron: &str) -> Result<Schedule, String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let usage = "expected \"CRON_TZ=UTC <minute> <hour> * * *\", as in \"CRON_TZ=UTC 30 9 * * *\"";
    let [tz, minute, hour, "*", "*", "*"] = fields[..] else {
        return Err(format!("schedule \"CRON_TZ={cron}\": {usage}"));
    };
    if tz != "UTC" {
        return Err(format!(
            "schedule \"CRON_TZ={cron}\": time zone {tz:?} is not supported, only UTC; {usage}"
        ));
    }
    let number = |what: &str, text: &str, max: u8| match text.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "schedule \"CRON_TZ={cron}\": {what} {text:?} is not a number from 0 to {max}; {usage}"
        )),
    };
    Ok(Schedule::Daily {
        minute: number("minute", minute, 59)?,
        hour: number("hour", hour, 23)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn check_bad(text: &str, mentions: &str) {
        let now = at("2026-11-22T09:00:00Z");
        match Schedule::parse(text, now) {
            Err(why) => assert!(why.contains(mentions), "{text:?}: {why}"),
            Ok(s) => panic!("{text:?} parsed as {s:?}"),
        }
    }

    #[test]
    fn parses_cron_and_instants() {
        let now = at("2026-11-22T09:00:00Z");
        let check = |text: &str, want: Schedule| {
            assert_eq!(Schedule::parse(text, now), Ok(want), "{text:?}");
        };
        check(
            "CRON_TZ=UTC 30 9 * * *",
            Schedule::Daily {
                hour: 9,
                minute: 30,
            },
        );
        check(
            "CRON_TZ=UTC  0 23 * * * ",
            Schedule::Daily {
                hour: 23,
                minute: 0,
            },
        );
        check(
            "2026-11-22T09:00:05Z",
            Schedule::Once(at("2026-11-22T09:00:05Z")),
        );
        check(
            "2026-11-22T09:00:05.250Z",
            Schedule::Once(at("2026-11-22T09:00:05.25Z")),
        );
        check(
            "2026-11-22T09:00:05+00:00",
            Schedule::Once(at("2026-11-22T09:00:05Z")),
        );
    }

    #[test]
    fn refuses_bad_schedules_saying_why() {
        check_bad("CRON_TZ=UTC 60 9 * * *", "minute \"60\"");
        check_bad("CRON_TZ=UTC 0 24 * * *", "hour \"24\"");
        check_bad("CRON_TZ=Europe/Paris 0 9 * * *", "only UTC");
        check_bad("CRON_TZ=UTC 0 9 * * 1", "expected");
        check_bad("0 9 * * *", "neither");
        check_bad("tomorrow", "RFC 3339");
        check_bad("2026-11-22T10:00:00+01:00", "RFC 3339");
        check_bad("2026-11-22T08:59:59Z", "in the past");
    }

    #[test]
    fn next_firings() {
        let daily = Schedule::Daily {
            hour: 9,
            minute: 30,
        };
        let next = |s: &Schedule, after| s.next_after(at(after));
        assert_eq!(
            next(&daily, "2026-11-22T09:00:00Z"),
            Some(at("2026-11-22T09:30:00Z"))
        );
        assert_eq!(
            next(&daily, "2026-11-22T09:30:00Z"),
            Some(at("2026-11-23T09:30:00Z"))
        );
        assert_eq!(
            next(&daily, "2026-11-22T23:59:59Z"),
            Some(at("2026-11-23T09:30:00Z"))
        );
        let once = Schedule::Once(at("2026-11-22T09:00:05Z"));
        assert_eq!(
            next(&once, "2026-11-22T09:00:00Z"),
            Some(at("2026-11-22T09:00:05Z"))
        );
        assert_eq!(next(&once, "2026-11-22T09:00:05Z"), None);
        assert!(once.is_once() && !daily.is_once());
    }
}
