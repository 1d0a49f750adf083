//! Dates and times as they appear in catalogs and manifests.
//!
//! Release dates are calendar dates (`2024-01-09`); creation and expiry times are RFC 3339
//! instants in UTC written with a `Z` and whole seconds, so they compare as strings and as
//! times alike. Parsing accepts exactly that form: a signed value is never altered, so a
//! time with an offset, a fraction of a second or a leap second (`23:59:60Z`, which would have
//! to be stored as another second) is refused rather than normalised.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use std::time::Duration;

use jiff::tz::TimeZone;

use crate::base::error::{Error, Result};

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date(jiff::civil::Date);

impl FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let refuse = |reason: &str| Error::InvalidName {
            kind: "date",
            value: s.to_string(),
            reason: format!("expected YYYY-MM-DD ({reason})"),
        };
        // Exactly four, two and two digits: the parser of a date library also takes other
        // ISO 8601 forms (a time after the date, a signed six-digit year), which a signed
        // value must not be rewritten from.
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
            return Err(refuse("not of that form"));
        }
        let n = |r: std::ops::Range<usize>| s[r].parse::<i16>().unwrap_or(0);
        let (year, month, day) = (n(0..4), n(5..7) as i8, n(8..10) as i8);
        jiff::civil::Date::new(year, month, day).map(Date).map_err(|e| refuse(&e.to_string()))
    }
}

crate::base::names::string_conversions!(Date);

impl Date {
    /// Whole days from `earlier` to `self` (negative if `earlier` is later).
    pub fn days_since(self, earlier: Date) -> i64 {
        self.0.duration_since(earlier.0).as_secs() / 86_400
    }

    /// The date `days` later (the latest date there is if that is past it).
    pub fn plus_days(self, days: u32) -> Date {
        self.0.checked_add(jiff::Span::new().days(i64::from(days))).map(Date).unwrap_or(Date(jiff::civil::Date::MAX))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }
}

/// An instant in UTC with whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(jiff::Timestamp);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::whole_seconds(jiff::Timestamp::now())
    }

    fn whole_seconds(t: jiff::Timestamp) -> Timestamp {
        Timestamp(jiff::Timestamp::from_second(t.as_second()).unwrap_or(t))
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.as_second()
    }

    pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
        jiff::Timestamp::from_second(secs).ok().map(Timestamp)
    }

    /// `self` later by `d` (whole seconds), or the latest time there is.
    pub fn plus(&self, d: std::time::Duration) -> Timestamp {
        let later = i64::try_from(d.as_secs()).ok().and_then(|s| self.unix_seconds().checked_add(s));
        later.and_then(Timestamp::from_unix_seconds).unwrap_or_else(|| Timestamp::whole_seconds(jiff::Timestamp::MAX))
    }

    /// The date part, for comparisons with release dates.
    pub fn date(&self) -> Date {
        Date(self.0.to_zoned(TimeZone::UTC).date())
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let refuse = |reason: String| Error::InvalidName { kind: "time", value: s.to_string(), reason };
        let parsed: jiff::Timestamp =
            s.parse().map_err(|e| refuse(format!("expected RFC 3339 in UTC, such as 2024-01-09T18:00:00Z ({e})")))?;
        if !s.ends_with('Z') {
            return Err(refuse("not in UTC: times are written with Z, such as 2024-01-09T18:00:00Z".into()));
        }
        let t = Timestamp::whole_seconds(parsed);
        if t.to_string() != s {
            return Err(refuse(
                "not whole seconds of a regular minute (a fraction, or a leap second such as 23:59:60): \
                 times are written as 2024-01-09T18:00:00Z"
                    .into(),
            ));
        }
        Ok(t)
    }
}

crate::base::names::string_conversions!(Timestamp);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.to_zoned(TimeZone::UTC).datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// The time of day of the daily refresh, in the server's local time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyTime(jiff::civil::Time);

impl DailyTime {
    /// `HH:MM` or `HH:MM:SS`; empty for no daily refresh.
    pub fn parse(text: &str) -> Result<Option<DailyTime>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || Error::InvalidName {
            kind: "time of day",
            value: text.to_string(),
            reason: "expected HH:MM (24-hour, the server's local time), as 03:00".into(),
        };
        let parts: Vec<&str> = text.split(':').collect();
        if !(2..=3).contains(&parts.len())
            || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let n = |i: usize| parts.get(i).map_or(Ok(0), |p| p.parse::<i8>()).map_err(|_| bad());
        jiff::civil::Time::new(n(0)?, n(1)?, n(2)?, 0).map(|t| Some(DailyTime(t))).map_err(|_| bad())
    }

    /// The latest moment at or before `now` at which the refresh was due (today's time, or
    /// yesterday's if today's is still to come).
    pub fn latest_due(self, now: &jiff::Zoned) -> Option<jiff::Timestamp> {
        let today = self.on(now.date(), now)?;
        if today <= now.timestamp() { Some(today) } else { self.on(now.date().yesterday().ok()?, now) }
    }

    /// The next moment after `now` at which the refresh is due.
    pub fn next_due(self, now: &jiff::Zoned) -> Option<jiff::Timestamp> {
        let today = self.on(now.date(), now)?;
        if today > now.timestamp() { Some(today) } else { self.on(now.date().tomorrow().ok()?, now) }
    }

    /// Whether a refresh is due at `now`, the last one having run at `last`.
    pub fn is_due(self, now: &jiff::Zoned, last: Option<Timestamp>) -> bool {
        match (self.latest_due(now), last) {
            (Some(due), Some(last)) => last.unix_seconds() < due.as_second(),
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }

    /// Whether a refresh is due now, in the server's time zone.
    pub fn is_due_now(self, last: Option<Timestamp>) -> bool {
        self.is_due(&jiff::Zoned::now(), last)
    }

    /// How long from now until the refresh is next due.
    pub fn until_next(self) -> Option<Duration> {
        let now = jiff::Zoned::now();
        let due = self.next_due(&now)?;
        Duration::try_from(due.duration_since(now.timestamp())).ok()
    }

    /// This time of day on `date` in `now`'s time zone (the later moment where a clock
    /// change skips or repeats it).
    fn on(self, date: jiff::civil::Date, now: &jiff::Zoned) -> Option<jiff::Timestamp> {
        date.to_datetime(self.0).to_zoned(now.time_zone().clone()).ok().map(|z| z.timestamp())
    }
}

impl std::fmt::Display for DailyTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.0;
        if t.second() == 0 {
            write!(f, "{:02}:{:02}", t.hour(), t.minute())
        } else {
            write!(f, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(text: &str) -> jiff::Zoned {
        text.parse().unwrap()
    }

    #[test]
    fn daily_time_parses_hours_and_minutes_only() {
        assert_eq!(DailyTime::parse("03:00").unwrap().unwrap().to_string(), "03:00");
        assert_eq!(DailyTime::parse(" 23:59:30 ").unwrap().unwrap().to_string(), "23:59:30");
        assert_eq!(DailyTime::parse("").unwrap(), None);
        for bad in ["3:00", "24:00", "03:60", "03", "03:00:00:00", "noon", "03:00Z", "+3:00"] {
            assert!(DailyTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_refresh_is_due_once_per_day_after_its_time() {
        let at = DailyTime::parse("03:00").unwrap().unwrap();
        let ts = |t: &str| Some(t.parse::<Timestamp>().unwrap());
        let before = zoned("2026-11-22T02:59:00+01:00[Europe/Berlin]");
        let after = zoned("2026-11-22T03:00:00+01:00[Europe/Berlin]");
        // Due since yesterday 03:00 (02:00Z); a refresh yesterday at 05:00 covers it.
        assert!(!at.is_due(&before, ts("2026-11-21T04:00:00Z")));
        assert!(at.is_due(&before, ts("2026-11-21T01:59:59Z")));
        // Today's time has come: a refresh before it does not count.
        assert!(at.is_due(&after, ts("2026-11-21T04:00:00Z")));
        assert!(!at.is_due(&after, ts("2026-11-22T02:00:00Z")));
        assert!(at.is_due(&after, None));
        assert_eq!(at.next_due(&before).unwrap().to_string(), "2026-11-22T02:00:00Z");
        assert_eq!(at.next_due(&after).unwrap().to_string(), "2026-11-23T02:00:00Z");
    }

    #[test]
    fn a_time_skipped_by_the_clock_change_falls_after_it() {
        // 02:30 does not exist in Berlin on 2026-03-29 (02:00 → 03:00).
        let at = DailyTime::parse("02:30").unwrap().unwrap();
        let now = zoned("2026-03-29T04:00:00+02:00[Europe/Berlin]");
        assert_eq!(at.latest_due(&now).unwrap().to_string(), "2026-03-29T01:30:00Z");
    }

    #[test]
    fn timestamps_are_utc_whole_seconds_and_never_altered() {
        let t: Timestamp = "2024-01-09T18:00:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2024-01-09T18:00:00Z");
        for (bad, why) in [
            ("2024-01-09", "expected RFC 3339"),
            ("2024-01-09T19:30:00+01:30", "not in UTC"),
            ("2024-01-09T18:00:00+00:00", "not in UTC"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2024-01-09T18:00:00.75Z", "a fraction"),
        ] {
            let err = bad.parse::<Timestamp>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!("2024-11-30".parse::<Date>().unwrap().to_string(), "2024-11-30");
        assert!("2024-13-01".parse::<Date>().is_err());
        assert!("30.11.2024".parse::<Date>().is_err());
        // Other ISO 8601 forms a date library reads are not a release date's form.
        for other in ["2024-1-09", "+002024-01-09", "2024-01-09T00:00", "20240109", " 2024-01-09", "2024-02-30"] {
            assert!(other.parse::<Date>().is_err(), "{other}");
        }
        let (a, b): (Date, Date) = ("2024-03-01".parse().unwrap(), "2024-02-28".parse().unwrap());
        assert_eq!((a.days_since(b), b.days_since(a)), (2, -2), "2024 is a leap year");
    }
}
