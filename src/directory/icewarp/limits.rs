//! An account's validity date, lock and expired-password mark from its properties
//! (`U_AccountValid`, `U_AccountValidTill`, `U_Blocked`, `U_PasswordExpired`; names from the
//! public IceWarp.Net client's `apiconst.pas`). Their value formats are not documented, so
//! every plausible spelling is accepted (docs/protocols/icewarp.md, "Account limits") and
//! anything else fails closed: an unreadable date of a limited account means expired, an
//! unreadable flag means set; each such value is named in a sync warning.

use super::wire::{Properties, PropertyValue};
use crate::user::{day_number, days_from_civil, AccountLimits, EXPIRED_LONG_AGO};

/// The properties asked of every user for its limits.
pub const NAMES: [&str; 4] =
    ["u_accountvalid", "u_accountvalidtill", "u_blocked", "u_passwordexpired"];

/// The astronomical Julian day number of 1970-01-01.
const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;

/// A flag or date property as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read<T> {
    /// No value (`TPropertyNoValue`, not answered, empty text).
    Absent,
    Value(T),
    /// A value none of the accepted spellings matches.
    Unreadable,
}

/// The limits of the account `email`; each unreadable value adds a warning naming it.
pub fn account_limits(
    email: &str,
    properties: &Properties,
    warnings: &mut Vec<String>,
) -> AccountLimits {
    let mut warn = |property: &str, value: Option<&str>, meaning: &str| {
        warnings.push(format!(
            "{email}: {property} {:?} is not understood; the account is treated as {meaning}",
            value.unwrap_or("")
        ));
    };
    let valid_raw = text(properties.get("u_accountvalid"));
    let till_raw = text(properties.get("u_accountvalidtill"));
    let valid = read(valid_raw, parse_flag);
    let till = read(till_raw, parse_date);
    let expires_day = match (valid, till) {
        // Validity not limited: whatever date is left over does not apply.
        (Read::Value(false), _) => None,
        (_, Read::Value(Some(day))) => {
            if valid == Read::Unreadable {
                warn("U_AccountValid", valid_raw, "limited to U_AccountValidTill");
            }
            // Any day before 1970-01-02 is "long ago": shadow reads -1 as "never" and
            // some tools 0 as "never" too.
            Some(day.max(EXPIRED_LONG_AGO))
        }
        (Read::Absent, Read::Absent | Read::Value(None)) => None,
        // Limited (or maybe limited) with no usable date: expired, never unlimited.
        (_, Read::Unreadable) => {
            warn("U_AccountValidTill", till_raw, "expired");
            Some(EXPIRED_LONG_AGO)
        }
        (_, Read::Absent | Read::Value(None)) => {
            warn("U_AccountValid", valid_raw, "expired (validity limited, no date)");
            Some(EXPIRED_LONG_AGO)
        }
    };
    let mut flag = |property: &str, raw: Option<&str>, meaning: &str| match read(raw, parse_flag) {
        Read::Absent => false,
        Read::Value(set) => set,
        Read::Unreadable => {
            warn(property, raw, meaning);
            true
        }
    };
    let blocked = flag("U_Blocked", text(properties.get("u_blocked")), "blocked");
    let password_expired = flag(
        "U_PasswordExpired",
        text(properties.get("u_passwordexpired")),
        "having an expired password",
    );
    AccountLimits { expires_day, blocked, password_expired }
}

/// The text of a one-value property; a list counts as its only item (or as unreadable
/// text when it has several).
fn text(value: Option<&PropertyValue>) -> Option<&str> {
    match value {
        Some(PropertyValue::Text(text)) => Some(text.as_str()),
        Some(PropertyValue::List(items)) if items.len() == 1 => Some(items[0].as_str()),
        Some(PropertyValue::List(items)) if items.is_empty() => None,
        Some(PropertyValue::List(_)) => Some("(several values)"),
        Some(PropertyValue::NoValue) | None => None,
    }
}

fn read<T>(raw: Option<&str>, parse: fn(&str) -> Option<T>) -> Read<T> {
    match raw.map(str::trim) {
        None | Some("") => Read::Absent,
        Some(raw) => parse(raw).map_or(Read::Unreadable, Read::Value),
    }
}

/// `0`/`1`, `true`/`false`, `yes`/`no` (any case); `None` for anything else.
pub fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// A validity date as the first day (since 1970-01-01, UTC) the account no longer works;
/// `Some(None)` for `0` (no date); `None` when unreadable. A date with a time of day
/// counts from the start of its UTC day: the account may lose up to a day, never gain one.
///
/// Accepted: a Julian day number (`2461406`, 7 digits, 1858–2405; a fraction is
/// dropped), `YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD`, those followed by `T` or a space and
/// `HH:MM[:SS[.fff]]` with an optional `Z` or `±HH[:MM]` offset, and Unix seconds (9 or 10
/// digits).
pub fn parse_date(raw: &str) -> Option<Option<i64>> {
    let raw = raw.trim();
    if raw == "0" {
        return Some(None);
    }
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        return digits_date(raw).map(Some);
    }
    if let Some((whole, fraction)) = raw.split_once('.') {
        if whole.len() == 7 && !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit())
        {
            // The fraction (a time of day, counted from noon or from midnight: unknown) is
            // dropped: the day of the whole number is the earlier reading.
            return julian(whole).map(Some);
        }
        if !raw.contains('-') && !raw.contains('/') {
            return None;
        }
    }
    calendar_date(raw).map(Some)
}

fn julian(digits: &str) -> Option<i64> {
    let number: i64 = digits.parse().ok()?;
    (2_400_000..=2_600_000).contains(&number).then(|| number - JULIAN_DAY_OF_EPOCH)
}

fn digits_date(digits: &str) -> Option<i64> {
    match digits.len() {
        7 => julian(digits),
        8 => civil(&digits[0..4], &digits[4..6], &digits[6..8]),
        9 | 10 => digits.parse::<u64>().ok().map(day_number),
        _ => None,
    }
}

fn civil(year: &str, month: &str, day: &str) -> Option<i64> {
    let year: i64 = year.parse().ok()?;
    if !(1900..=9999).contains(&year) {
        return None;
    }
    days_from_civil(year, month.parse().ok()?, day.parse().ok()?)
}

/// `YYYY-MM-DD` or `YYYY/MM/DD`, optionally with a time of day and offset.
fn calendar_date(raw: &str) -> Option<i64> {
    let (date, time) = match raw.find(['T', 't', ' ']) {
        Some(at) => (&raw[..at], Some(raw[at + 1..].trim())),
        None => (raw, None),
    };
    let separator = if date.contains('-') { '-' } else { '/' };
    let parts: Vec<&str> = date.split(separator).collect();
    let [year, month, day] = parts.as_slice() else {
        return None;
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if year.len() != 4 || !(1..=2).contains(&month.len()) || !(1..=2).contains(&day.len()) {
        return None;
    }
    if ![year, month, day].into_iter().all(|part| all_digits(part)) {
        return None;
    }
    let day = civil(year, month, day)?;
    match time {
        None => Some(day),
        Some(time) => {
            let seconds = time_of_day(time)?;
            Some(day + (seconds.div_euclid(86_400)))
        }
    }
}

/// `HH:MM[:SS[.fff]][Z|±HH[:MM]]` as seconds after the day's start in UTC (negative or
/// past a day when the offset moves it to another day).
fn time_of_day(time: &str) -> Option<i64> {
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let sign = if time.as_bytes()[at] == b'+' { 1 } else { -1 };
        let zone = time[at + 1..].replace(':', "");
        if zone.len() != 2 && zone.len() != 4 || !zone.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i64 = zone[..2].parse().ok()?;
        let minutes: i64 =
            zone.get(2..).filter(|m| !m.is_empty()).map_or(Some(0), |m| m.parse().ok())?;
        if hours > 14 || minutes > 59 {
            return None;
        }
        (&time[..at], sign * (hours * 3600 + minutes * 60))
    } else {
        (time, 0)
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, fraction)| {
        if fraction.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            ""
        }
    });
    let fields: Vec<i64> = clock
        .split(':')
        .map(|f| if f.len() == 2 { f.parse().ok() } else { None })
        .collect::<Option<_>>()?;
    let (hours, minutes, seconds) = match fields.as_slice() {
        [h, m] => (*h, *m, 0),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    if hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    Some(hours * 3600 + minutes * 60 + seconds - offset)
}

#[cfg(test)]
mod tests;
