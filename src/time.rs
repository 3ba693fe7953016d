//! UTC timestamps as `xsd:dateTime` text, without a date crate.
//!
//! Only UTC is produced; parsing accepts the `Z` and `+00:00` forms written by us and by the demo.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub micros: i64,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
        Timestamp { micros: d.as_micros() as i64 }
    }

    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp { micros: secs * 1_000_000 }
    }

    pub fn secs(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    /// The canonical `xsd:dateTime` form: `2025-01-02T03:04:05Z`, with a fraction (trailing zeros
    /// dropped) when the time has one.
    pub fn to_xsd(self) -> String {
        let (date, frac) = (self.civil(), self.micros.rem_euclid(1_000_000));
        if frac == 0 { format!("{date}Z") } else { format!("{date}.{}Z", format!("{frac:06}").trim_end_matches('0')) }
    }

    /// `2025-01-02T03-04-05-123456-00-00`: Python's `isoformat()` with `:`, `+` and `.` replaced by
    /// `-`, the shape of the demo's assertion IRIs.
    pub fn to_iri_fragment(self) -> String {
        let frac = self.micros.rem_euclid(1_000_000);
        format!("{}.{frac:06}+00:00", self.civil()).replace([':', '+', '.'], "-")
    }

    fn civil(self) -> String {
        let secs = self.secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
    }

    /// Parses `YYYY-MM-DDThh:mm:ss[.f+](Z|+00:00|±hh:mm)`.
    pub fn parse_xsd(text: &str) -> Option<Timestamp> {
        let t = text.trim();
        let num = |s: &str| -> Option<i64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (date, rest) = t.split_once('T')?;
        let mut dp = date.splitn(3, '-');
        let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
        if rest.len() < 8 {
            return None;
        }
        let (clock, mut tail) = rest.split_at(8);
        let mut cp = clock.splitn(3, ':');
        let (h, mi, s) = (num(cp.next()?)?, num(cp.next()?)?, num(cp.next()?)?);
        let mut micros = 0;
        if let Some(f) = tail.strip_prefix('.') {
            let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
            let digits = &f[..end];
            let mut padded: String = digits.chars().take(6).collect();
            while padded.len() < 6 {
                padded.push('0');
            }
            micros = num(&padded)?;
            tail = &f[end..];
        }
        let offset = match tail {
            "" | "Z" => 0,
            _ => {
                let sign = match &tail[..1] {
                    "+" => 1,
                    "-" => -1,
                    _ => return None,
                };
                let (oh, om) = tail[1..].split_once(':')?;
                sign * (num(oh)? * 3600 + num(om)? * 60)
            }
        };
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
        Some(Timestamp { micros: secs * 1_000_000 + micros })
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = Timestamp::from_secs(1_735_787_045);
        assert_eq!(t.to_xsd(), "2025-01-02T03:04:05Z");
        assert_eq!(Timestamp::parse_xsd("2025-01-02T03:04:05Z"), Some(t));
        assert_eq!(Timestamp::parse_xsd("2025-01-02T05:04:05+02:00"), Some(t));
        let f = Timestamp { micros: 1_735_787_045_123_456 };
        assert_eq!(f.to_xsd(), "2025-01-02T03:04:05.123456Z");
        assert_eq!(Timestamp::parse_xsd("2025-01-02T03:04:05.123456+00:00"), Some(f));
        assert_eq!(f.to_iri_fragment(), "2025-01-02T03-04-05-123456-00-00");
        let tenth = Timestamp { micros: 1_735_787_045_100_000 };
        assert_eq!(tenth.to_xsd(), "2025-01-02T03:04:05.1Z");
        assert_eq!(Timestamp::parse_xsd(&tenth.to_xsd()), Some(tenth));
        assert_eq!(Timestamp::from_secs(0).to_xsd(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_secs(951_782_400).to_xsd(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp::parse_xsd("2025-13-02T03:04:05Z"), None);
        assert_eq!(Timestamp::parse_xsd("yesterday"), None);
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        for days in (-800_000..800_000).step_by(7) {
            assert_eq!(days_from_civil_tuple(civil_from_days(days)), days);
        }
    }

    fn days_from_civil_tuple((y, m, d): (i64, i64, i64)) -> i64 {
        days_from_civil(y, m, d)
    }
}
