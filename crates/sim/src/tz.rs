//! The time zones the sim understands in `dateTimeTimeZone` values and `Prefer:
//! outlook.timezone`: UTC plus common Windows names and their IANA equivalents
//! (https://learn.microsoft.com/graph/api/resources/datetimetimezone), with the EU, US and
//! south-eastern Australia daylight-saving rules.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// Daylight-saving rule family.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    None,
    Eu,
    Us,
    AuSouth,
}

/// A supported zone: standard offset (minutes east of UTC) and DST rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    std_minutes: i64,
    rule: Rule,
}

const ZONES: &[(&[&str], i64, Rule)] = &[
    (
        &[
            "UTC",
            "Etc/UTC",
            "Coordinated Universal Time",
            "tzone://Microsoft/Utc",
            "Etc/GMT",
            "GMT",
        ],
        0,
        Rule::None,
    ),
    (
        &["Pacific Standard Time", "America/Los_Angeles"],
        -480,
        Rule::Us,
    ),
    (
        &["Mountain Standard Time", "America/Denver"],
        -420,
        Rule::Us,
    ),
    (
        &["Central Standard Time", "America/Chicago"],
        -360,
        Rule::Us,
    ),
    (
        &["Eastern Standard Time", "America/New_York"],
        -300,
        Rule::Us,
    ),
    (&["GMT Standard Time", "Europe/London"], 0, Rule::Eu),
    (
        &[
            "W. Europe Standard Time",
            "Europe/Berlin",
            "Europe/Amsterdam",
            "Europe/Vienna",
            "Europe/Zurich",
        ],
        60,
        Rule::Eu,
    ),
    (
        &[
            "Romance Standard Time",
            "Europe/Paris",
            "Europe/Madrid",
            "Europe/Brussels",
        ],
        60,
        Rule::Eu,
    ),
    (
        &[
            "Central Europe Standard Time",
            "Europe/Budapest",
            "Europe/Prague",
        ],
        60,
        Rule::Eu,
    ),
    (
        &[
            "FLE Standard Time",
            "Europe/Kyiv",
            "Europe/Kiev",
            "Europe/Helsinki",
        ],
        120,
        Rule::Eu,
    ),
    (&["Tokyo Standard Time", "Asia/Tokyo"], 540, Rule::None),
    (&["Korea Standard Time", "Asia/Seoul"], 540, Rule::None),
    (&["China Standard Time", "Asia/Shanghai"], 480, Rule::None),
    (
        &["India Standard Time", "Asia/Kolkata", "Asia/Calcutta"],
        330,
        Rule::None,
    ),
    (&["Arabian Standard Time", "Asia/Dubai"], 240, Rule::None),
    (
        &[
            "AUS Eastern Standard Time",
            "Australia/Sydney",
            "Australia/Melbourne",
        ],
        600,
        Rule::AuSouth,
    ),
];

/// Looks a zone up by Windows or IANA name (case-insensitive).
pub fn zone(name: &str) -> Option<Zone> {
    let name = name.trim();
    ZONES
        .iter()
        .find(|(names, _, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|(_, m, r)| Zone {
            std_minutes: *m,
            rule: *r,
        })
}

fn nth_weekday(year: i32, month: u32, wd: Weekday, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, wd, n as u8).expect("valid nth weekday")
}

fn last_weekday(year: i32, month: u32, wd: Weekday) -> NaiveDate {
    let next_first = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid date");
    let mut d = next_first - Duration::days(1);
    while d.weekday() != wd {
        d -= Duration::days(1);
    }
    d
}

fn at(d: NaiveDate, h: u32) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(h, 0, 0).expect("valid"))
}

impl Zone {
    /// UTC offset in minutes at the UTC instant `utc`.
    pub fn offset_at_utc(&self, utc: NaiveDateTime) -> i64 {
        let y = utc.year();
        let std = self.std_minutes;
        let dst = match self.rule {
            Rule::None => false,
            // EU: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
            Rule::Eu => {
                let start = at(last_weekday(y, 3, Weekday::Sun), 1);
                let end = at(last_weekday(y, 10, Weekday::Sun), 1);
                utc >= start && utc < end
            }
            // US: second Sunday of March 02:00 local standard to first Sunday of November 02:00 local daylight.
            Rule::Us => {
                let start = at(nth_weekday(y, 3, Weekday::Sun, 2), 2) - Duration::minutes(std);
                let end = at(nth_weekday(y, 11, Weekday::Sun, 1), 2) - Duration::minutes(std + 60);
                utc >= start && utc < end
            }
            // South-east Australia: first Sunday of October 02:00 std to first Sunday of April 03:00 daylight.
            Rule::AuSouth => {
                let end = at(nth_weekday(y, 4, Weekday::Sun, 1), 3) - Duration::minutes(std + 60);
                let start = at(nth_weekday(y, 10, Weekday::Sun, 1), 2) - Duration::minutes(std);
                utc < end || utc >= start
            }
        };
        if dst {
            std + 60
        } else {
            std
        }
    }

    /// Local wall time -> UTC (the standard-time reading wins in the repeated hour).
    pub fn to_utc(&self, local: NaiveDateTime) -> NaiveDateTime {
        let guess = local - Duration::minutes(self.std_minutes);
        let off = self.offset_at_utc(guess);
        let utc = local - Duration::minutes(off);
        // Re-check once around transitions.
        let off2 = self.offset_at_utc(utc);
        local - Duration::minutes(off2)
    }

    /// UTC -> local wall time.
    pub fn from_utc(&self, utc: NaiveDateTime) -> NaiveDateTime {
        utc + Duration::minutes(self.offset_at_utc(utc))
    }
}

/// Parses Graph's `dateTime` (`2019-03-15T12:00:00.0000000`, fractional part optional).
pub fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| at(d, 0))
        })
}

/// Parses an ISO 8601 query value: an offset is honoured, no offset means UTC (graph-facts §7).
pub fn parse_query_instant(s: &str) -> Option<NaiveDateTime> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Some(dt.naive_utc());
    }
    parse_local(s)
}

/// Formats Graph's `dateTime`.
pub fn fmt_local(dt: NaiveDateTime) -> String {
    // Graph writes seven fractional digits; chrono has no `%.7f`.
    use chrono::Timelike;
    format!(
        "{}.{:07}",
        dt.format("%Y-%m-%dT%H:%M:%S"),
        dt.nanosecond() / 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_summer_and_winter_offsets() {
        let z = zone("W. Europe Standard Time").unwrap();
        assert_eq!(
            z.offset_at_utc(parse_local("2025-07-01T12:00:00").unwrap()),
            120
        );
        assert_eq!(
            z.offset_at_utc(parse_local("2025-01-01T12:00:00").unwrap()),
            60
        );
        assert_eq!(zone("europe/berlin"), Some(z));
    }

    #[test]
    fn los_angeles_local_to_utc() {
        let z = zone("America/Los_Angeles").unwrap();
        let utc = z.to_utc(parse_local("2025-07-01T09:00:00").unwrap());
        assert_eq!(fmt_local(utc), "2025-07-01T16:00:00.0000000");
        let utc = z.to_utc(parse_local("2025-12-01T09:00:00").unwrap());
        assert_eq!(fmt_local(utc), "2025-12-01T17:00:00.0000000");
    }

    #[test]
    fn sydney_is_in_daylight_time_in_january() {
        let z = zone("AUS Eastern Standard Time").unwrap();
        assert_eq!(
            z.offset_at_utc(parse_local("2025-01-10T00:00:00").unwrap()),
            660
        );
        assert_eq!(
            z.offset_at_utc(parse_local("2025-07-10T00:00:00").unwrap()),
            600
        );
    }
}
