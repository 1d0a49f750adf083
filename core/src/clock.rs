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
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::error::Error;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date(time::Date);

impl FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        time::Date::parse(s, format_description!("[year]-[month]-[day]")).map(Date).map_err(|e| Error::InvalidName {
            kind: "date",
            value: s.to_string(),
            reason: format!("expected YYYY-MM-DD ({e})"),
        })
    }
}

crate::names::string_conversions!(Date);

impl Date {
    /// Whole days from `earlier` to `self` (negative if `earlier` is later).
    pub fn days_since(self, earlier: Date) -> i64 {
        (self.0 - earlier.0).whole_days()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

/// An instant in UTC with whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(OffsetDateTime::now_utc())
    }

    fn from_datetime(t: OffsetDateTime) -> Timestamp {
        let utc = t.to_offset(UtcOffset::UTC);
        Timestamp(utc.replace_nanosecond(0).unwrap_or(utc))
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp(secs).ok().map(Timestamp)
    }

    /// `self` later by `d` (whole seconds).
    pub fn plus(&self, d: std::time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(time::Duration::seconds(d.as_secs() as i64)))
    }

    /// The date part, for comparisons with release dates.
    pub fn date(&self) -> Date {
        Date(self.0.date())
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let refuse = |reason: String| Error::InvalidName { kind: "time", value: s.to_string(), reason };
        let parsed = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| refuse(format!("expected RFC 3339 in UTC, such as 2024-01-09T18:00:00Z ({e})")))?;
        if parsed.offset() != UtcOffset::UTC || !s.ends_with('Z') {
            return Err(refuse("not in UTC: times are written with Z, such as 2024-01-09T18:00:00Z".into()));
        }
        let t = Timestamp::from_datetime(parsed);
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

crate::names::string_conversions!(Timestamp);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
