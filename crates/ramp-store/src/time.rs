//! Wall-clock timestamps as stored in the database.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch (UTC).
///
/// Stored and serialized as a plain integer so it sorts and compares exactly; use
/// [`Timestamp::to_rfc3339`] (or `Display`) for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(ms(after)),
            Err(before) => Timestamp(-ms(before.duration())),
        }
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-21T23:48:12.123Z`.
    pub fn to_rfc3339(&self) -> String {
        let (year, month, day) = civil_from_days(self.0.div_euclid(MS_PER_DAY));
        let ms = self.0.rem_euclid(MS_PER_DAY);
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01 in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01 so the leap day is the last day of the (March-based) year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097); // 400-year eras
    let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_795_304_892_123, "2026-11-21T23:48:12.123Z"),
            // 2000 is a leap year (divisible by 400).
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (978_307_199_999, "2000-12-31T23:59:59.999Z"),
            (1_709_210_096_789, "2024-02-29T12:34:56.789Z"),
            // 1900 and 2100 are not (divisible by 100 only): Feb 28 is followed by Mar 1.
            (-2_203_891_200_000, "1900-03-01T00:00:00.000Z"),
            (-2_203_891_200_001, "1900-02-28T23:59:59.999Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (-11_670_998_400_000, "1600-02-29T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(Timestamp(ms).to_rfc3339(), want, "{ms}");
            assert_eq!(Timestamp(ms).to_string(), want);
        }
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walk 1999-12-01 .. 2100-04-30 day by day and check the calendar never skips or
        // repeats a date, and that February has 29 days exactly in leap years.
        let mut prev = civil_from_days(10_926 - 1);
        for days in 10_926..47_600 {
            let (y, m, d) = civil_from_days(days);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            if d == 1 {
                let last = match prev.1 {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(prev.2, last, "{prev:?} -> {y}-{m}-{d}");
                assert!(m == prev.1 % 12 + 1 && (m != 1 || y == prev.0 + 1));
            } else {
                assert_eq!((y, m, d), (prev.0, prev.1, prev.2 + 1));
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn now_is_recent_and_serializes_as_a_number() {
        let now = Timestamp::now();
        assert!(now.0 > 1_700_000_000_000, "{now:?}");
        assert_eq!(serde_json::to_string(&Timestamp(42)).unwrap(), "42");
    }
}
