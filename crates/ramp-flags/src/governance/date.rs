//! Calendar dates (proleptic Gregorian, UTC). Removal dates and flag ages are judged in whole
//! days, so a date without a clock or a time zone is all the lint needs.

use std::fmt;
use std::str::FromStr;

const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar day, stored as days since 1970-01-01 so that comparing and subtracting are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days_since_epoch: i64,
}

/// Text that is not a date in the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {expected}")]
pub struct DateError {
    text: String,
    expected: &'static str,
}

impl Date {
    /// The day `year-month-day`, if it exists (`2024-02-30` does not).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        valid.then(|| Date {
            days_since_epoch: days_from_civil(i64::from(year), month, day),
        })
    }

    /// The UTC day containing the instant `seconds` after the Unix epoch.
    pub fn from_unix_seconds(seconds: i64) -> Date {
        Date {
            days_since_epoch: seconds.div_euclid(SECONDS_PER_DAY),
        }
    }

    /// Parses `YYYY-MM-DD` (ISO 8601 calendar date, four-digit year).
    pub fn parse(text: &str) -> Result<Date, DateError> {
        parse_calendar_date(text).ok_or_else(|| DateError {
            text: text.to_owned(),
            expected: "a date (YYYY-MM-DD)",
        })
    }

    /// Parses `YYYY-MM-DD` or an RFC 3339 date-time (`2025-06-30T17:00:00+02:00`); a
    /// date-time gives its UTC day.
    pub fn parse_date_or_datetime(text: &str) -> Result<Date, DateError> {
        parse_calendar_date(text)
            .or_else(|| parse_rfc3339(text))
            .ok_or_else(|| DateError {
                text: text.to_owned(),
                expected: "a date (YYYY-MM-DD) or an RFC 3339 date-time",
            })
    }

    /// `(year, month, day)`.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days_since_epoch)
    }

    /// Whole days from `earlier` to `self` (negative when `earlier` is later).
    pub fn days_since(self, earlier: Date) -> i64 {
        self.days_since_epoch - earlier.days_since_epoch
    }

    /// The day `days` after this one (before it when negative).
    pub fn plus_days(self, days: i64) -> Date {
        Date {
            days_since_epoch: self.days_since_epoch + days,
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.ymd();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(text: &str) -> Result<Date, DateError> {
        Date::parse(text)
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Day counts come from `Date`, whose years fit in i32 by construction.
    (year as i32, month as u32, day as u32)
}

/// Exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<u32> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn parse_calendar_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = number(text.get(0..4)?, 4)?;
    let month = number(text.get(5..7)?, 2)?;
    let day = number(text.get(8..10)?, 2)?;
    Date::from_ymd(i32::try_from(year).ok()?, month, day)
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS(.fraction)?(Z|z|+HH:MM|-HH:MM)`, as its UTC day.
fn parse_rfc3339(text: &str) -> Option<Date> {
    let date = parse_calendar_date(text.get(0..10)?)?;
    if !matches!(text.as_bytes().get(10)?, b'T' | b't' | b' ') {
        return None;
    }
    let rest = text.get(11..)?;
    let time = rest.get(0..8)?;
    let bytes = time.as_bytes();
    if bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let hour = number(time.get(0..2)?, 2)?;
    let minute = number(time.get(3..5)?, 2)?;
    // 60 is a leap second; it still belongs to the day it is written in.
    let second = number(time.get(6..8)?, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut zone = rest.get(8..)?;
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        zone = &fraction[digits..];
    }
    let offset_seconds = zone_offset_seconds(zone)?;
    let local_seconds = date.days_since_epoch * SECONDS_PER_DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second.min(59));
    Some(Date::from_unix_seconds(local_seconds - offset_seconds))
}

fn zone_offset_seconds(zone: &str) -> Option<i64> {
    if zone == "Z" || zone == "z" {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if zone.len() != 6 || zone.as_bytes()[3] != b':' {
        return None;
    }
    let hours = number(zone.get(1..3)?, 2)?;
    let minutes = number(zone.get(4..6)?, 2)?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    #[test]
    fn the_epoch_and_known_days_have_the_right_counts() {
        assert_eq!(date("1970-01-01").days_since_epoch, 0);
        assert_eq!(date("2000-03-01").days_since_epoch, 11_017);
        assert_eq!(date("1969-12-31").days_since_epoch, -1);
        assert_eq!(date("2024-03-01").days_since(date("2024-02-01")), 29);
        assert_eq!(date("2023-03-01").days_since(date("2023-02-01")), 28);
    }

    #[test]
    fn calendar_dates_must_exist_and_be_written_in_full() {
        for bad in [
            "2024-02-30",
            "2023-02-29",
            "2025-13-01",
            "2025-00-10",
            "2025-1-01",
            "25-01-01",
            "2025/01/01",
            "2025-01-01 ",
            "+025-01-01",
            "",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(date("2024-02-29").ymd(), (2024, 2, 29));
    }

    #[test]
    fn datetimes_give_their_utc_day() {
        let parse = |text| Date::parse_date_or_datetime(text).unwrap().to_string();
        assert_eq!(parse("2025-06-30"), "2025-06-30");
        assert_eq!(parse("2025-06-30T17:00:00Z"), "2025-06-30");
        assert_eq!(parse("2025-06-30t23:30:00.125-02:00"), "2025-07-01");
        assert_eq!(parse("2025-07-01 01:00:00+02:00"), "2025-06-30");
        assert_eq!(parse("2016-12-31T23:59:60Z"), "2016-12-31");
        for bad in [
            "2025-06-30T17:00:00",
            "2025-06-30T24:00:00Z",
            "2025-06-30T17:00Z",
            "2025-06-30T17:00:00.Z",
            "2025-06-30T17:00:00+0200",
            "2025-06-30X17:00:00Z",
            "next week",
        ] {
            let error = Date::parse_date_or_datetime(bad).unwrap_err();
            assert!(error.to_string().contains("RFC 3339"), "{bad}: {error}");
        }
        assert!(Date::parse("2025-06-30T17:00:00Z").is_err());
    }

    #[test]
    fn unix_seconds_round_down_to_the_day() {
        assert_eq!(Date::from_unix_seconds(86_399).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix_seconds(86_400).to_string(), "1970-01-02");
        assert_eq!(Date::from_unix_seconds(-1).to_string(), "1969-12-31");
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(year in 0i32..=9999, month in 1u32..=12, day in 1u32..=31) {
            prop_assume!(day <= days_in_month(year, month));
            let date = Date::from_ymd(year, month, day).unwrap();
            prop_assert_eq!(date.ymd(), (year, month, day));
            prop_assert_eq!(Date::parse(&date.to_string()), Ok(date));
        }

        #[test]
        fn consecutive_day_counts_are_consecutive_days(days in -800_000i64..2_900_000) {
            let today = Date { days_since_epoch: days };
            let tomorrow = today.plus_days(1);
            let (year, month, day) = today.ymd();
            let expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            prop_assert_eq!(tomorrow.ymd(), expected);
            prop_assert_eq!(tomorrow.days_since(today), 1);
        }
    }
}
