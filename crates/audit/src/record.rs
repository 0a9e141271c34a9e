//! One request as one JSON line, and the time stamp it carries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One HTTP request answered by the proxy. Serialized as one JSON object on one line, its
/// fields in the order declared here; absent optional fields are written as `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the answer was complete: RFC 3339 in UTC with milliseconds
    /// (`2026-11-30T17:20:01.123Z`, see [`now_rfc3339`]).
    pub time: String,
    /// The node that answered.
    pub node: u64,
    /// The client's IP address.
    pub client: String,
    /// The name of the token the client presented; `null` when anonymous.
    pub token: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The request path (as received, without the query).
    pub path: String,
    /// The module path, when the request was about a module.
    pub module: Option<String>,
    /// The module version, when the request named one.
    pub version: Option<String>,
    /// What was asked for: `info`, `mod`, `zip`, `list`, `latest`, `sumdb`.
    pub artifact: Option<String>,
    /// How the request was answered.
    pub outcome: Outcome,
    /// The HTTP status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Time from the request to the end of the answer, in milliseconds with microsecond
    /// precision (see [`duration_ms`]).
    pub duration_ms: f64,
    /// The sha256 (hex) of the artifact served, when known.
    pub sha256: Option<String>,
}

/// How a request was answered; serialized in lowercase (`"hit"`, `"fill"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Served from the cache.
    Hit,
    /// Fetched from an upstream, cached and served.
    Fill,
    /// Handed to another node (the leader, or the owner of the artifact) and relayed.
    Forwarded,
    /// Refused by access control (401 or 403).
    Denied,
    /// Refused by an operator's block rule (403 with its reason).
    Blocked,
    /// Failed (upstream or internal error).
    Error,
    /// Answered without touching the cache, e.g. a health check or a not found.
    Other,
}

const SECONDS_PER_DAY: u64 = 86_400;
const SECONDS_PER_HOUR: u64 = 3_600;
const SECONDS_PER_MINUTE: u64 = 60;
const NANOS_PER_MILLI: u32 = 1_000_000;
const MICROS_PER_MILLI: f64 = 1_000.0;
/// Days from 0000-03-01 (the start of the shifted calendar) to 1970-01-01.
const DAYS_BEFORE_EPOCH: u64 = 719_468;
/// Days in 400 Gregorian years.
const DAYS_PER_ERA: u64 = 146_097;
/// Years in one era of the Gregorian calendar.
const YEARS_PER_ERA: u64 = 400;

/// The current time as RFC 3339 in UTC with milliseconds: `2026-11-30T17:20:01.123Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

/// `time` as RFC 3339 in UTC with milliseconds (times before 1970 are written as the epoch).
pub fn format_rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let seconds = since.as_secs();
    let (year, month, day) = civil_from_days(seconds / SECONDS_PER_DAY);
    let of_day = seconds % SECONDS_PER_DAY;
    // Digits by hand: this runs once per request, and `format!` costs several times more.
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, month, 2);
    out.push('-');
    push_digits(&mut out, day, 2);
    out.push('T');
    push_digits(&mut out, of_day / SECONDS_PER_HOUR, 2);
    out.push(':');
    push_digits(
        &mut out,
        of_day / SECONDS_PER_MINUTE % SECONDS_PER_MINUTE,
        2,
    );
    out.push(':');
    push_digits(&mut out, of_day % SECONDS_PER_MINUTE, 2);
    out.push('.');
    push_digits(
        &mut out,
        u64::from(since.subsec_nanos() / NANOS_PER_MILLI),
        3,
    );
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u64.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// A duration in milliseconds, rounded down to the microsecond, for [`Record::duration_ms`].
pub fn duration_ms(duration: Duration) -> f64 {
    duration.as_micros() as f64 / MICROS_PER_MILLI
}

/// Year, month (1-12) and day (1-31) of a day counted from 1970-01-01: Howard Hinnant's
/// `civil_from_days`, on a calendar whose years start on March 1st (so the leap day is last).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + DAYS_BEFORE_EPOCH;
    let era = shifted / DAYS_PER_ERA;
    let day_of_era = shifted % DAYS_PER_ERA;
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
    let year = era * YEARS_PER_ERA + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, millis: u64) -> String {
        format_rfc3339(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
    }

    #[test]
    fn formats_known_dates() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_796_059_201, 123), "2026-11-30T17:20:01.123Z");
        assert_eq!(at(1_735_689_599, 999), "2024-12-31T23:59:59.999Z");
        assert_eq!(at(253_402_300_799, 7), "9999-12-31T23:59:59.007Z");
        assert_eq!(
            format_rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn formats_leap_days() {
        // 2000 is a leap year (divisible by 400), 2024 too, 2100 is not (divisible by 100).
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(951_782_400 - 1, 0), "2000-02-28T23:59:59.000Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59.000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn now_has_the_shape() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-30T17:20:01.123Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert!(now.as_str() > "2025", "{now}");
    }

    fn sample() -> Record {
        Record {
            time: "2026-11-30T17:20:01.123Z".into(),
            node: 2,
            client: "192.0.2.7".into(),
            token: None,
            method: "GET".into(),
            path: "/example.com/m/@v/v1.0.0.zip".into(),
            module: Some("example.com/m".into()),
            version: Some("v1.0.0".into()),
            artifact: Some("zip".into()),
            outcome: Outcome::Fill,
            status: 200,
            bytes: 1234,
            duration_ms: duration_ms(Duration::from_micros(12_345)),
            sha256: None,
        }
    }

    #[test]
    fn serializes_fields_in_order() {
        let line = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-11-30T17:20:01.123Z","node":2,"client":"192.0.2.7","token":null,"method":"GET","path":"/example.com/m/@v/v1.0.0.zip","module":"example.com/m","version":"v1.0.0","artifact":"zip","outcome":"fill","status":200,"bytes":1234,"duration_ms":12.345,"sha256":null}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), sample());
    }

    #[test]
    fn never_contains_a_raw_newline() {
        let record = Record {
            path: "/evil\n{\"forged\":true}\r\n".into(),
            token: Some("ci\nbot".into()),
            ..sample()
        };
        let line = serde_json::to_string(&record).unwrap();
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(
            line.contains(r#""path":"/evil\n{\"forged\":true}\r\n""#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
    }

    #[test]
    fn outcomes_are_lowercase() {
        let all = [
            (Outcome::Hit, "hit"),
            (Outcome::Fill, "fill"),
            (Outcome::Forwarded, "forwarded"),
            (Outcome::Denied, "denied"),
            (Outcome::Blocked, "blocked"),
            (Outcome::Error, "error"),
            (Outcome::Other, "other"),
        ];
        for (outcome, name) in all {
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{name}\"")
            );
        }
    }
}
