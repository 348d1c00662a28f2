use super::*;
use crate::user::days_from_civil;
use crate::user::EXPIRED_LONG_AGO;

fn day(year: i64, month: u32, date: u32) -> i64 {
    days_from_civil(year, month, date).unwrap()
}

#[test]
fn flags_accept_each_spelling_and_nothing_else() {
    let cases = [
        ("1", Some(true)),
        ("0", Some(false)),
        (" TRUE ", Some(true)),
        ("false", Some(false)),
        ("Yes", Some(true)),
        ("no", Some(false)),
        ("2", None),
        ("-1", None),
        ("on", None),
        ("y", None),
        ("01", None),
        ("tru", None),
        ("1;0", None),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_flag(raw), expected, "{raw:?}");
    }
}

#[test]
fn dates_accept_each_plausible_spelling() {
    let d = day(2026, 12, 31);
    let cases = [
        // Julian day number (JDN 2440588 is 1970-01-01).
        ("2440588", Some(0)),
        ("2461406", Some(d)),
        ("2461406.5", Some(d)),
        ("2461406.0", Some(d)),
        ("20261231", Some(d)),
        ("2026-12-31", Some(d)),
        ("2026/12/31", Some(d)),
        ("2026-1-5", Some(day(2026, 1, 5))),
        ("2026-12-31T00:00:00", Some(d)),
        ("2026-12-31 23:59:59", Some(d)),
        ("2026-12-31T23:59:59Z", Some(d)),
        ("2026-12-31T10:00:00.250Z", Some(d)),
        ("2026-12-31T10:00", Some(d)),
        // The offset moves the instant to the UTC day it falls on.
        ("2026-12-31T01:00:00+02:00", Some(d - 1)),
        ("2026-12-31T23:00:00-0200", Some(d + 1)),
        // Unix seconds: the UTC day of that instant.
        ("1798675200", Some(d)),
        ("1798761599", Some(d)),
        ("999999999", Some(11_574)),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_date(raw), Some(expected), "{raw:?}");
    }
    assert_eq!(parse_date("0"), Some(None), "0 is no date");
}

#[test]
fn garbage_dates_are_unreadable() {
    for raw in [
        "tomorrow",
        "31.12.2026",
        "12/31/2026",
        "2026-02-30",
        "2026-13-01",
        "2026-12",
        "0000-01-01",
        "1899-12-31",
        "20261331",
        "46022",
        "46022.5",
        "1798675200000",
        "2399999",
        "2600001",
        "-2461406",
        "2026-12-31T25:00:00",
        "2026-12-31Tnoon",
        "2026-12-31T10:00:00+99:00",
        "2026-12-31T10:00:00.5x",
        "２０２６-12-31",
        "2026‐12‐31",
        "1e9",
    ] {
        assert_eq!(parse_date(raw), None, "{raw:?} must be unreadable");
    }
}

fn properties(values: &[(&str, &str)]) -> Properties {
    let mut properties = Properties::new();
    properties.values = values
        .iter()
        .map(|(name, value)| {
            let value = if value.is_empty() {
                PropertyValue::NoValue
            } else {
                PropertyValue::Text(value.to_string())
            };
            (name.to_string(), value)
        })
        .collect();
    properties
}

fn limits_of(values: &[(&str, &str)]) -> (AccountLimits, Vec<String>) {
    let mut warnings = Vec::new();
    let limits = account_limits("al@x.test", &properties(values), &mut warnings);
    (limits, warnings)
}

#[test]
fn limits_follow_the_properties_and_fail_closed() {
    let d = day(2026, 12, 31);
    let none = AccountLimits::default();
    let expires = |day| AccountLimits { expires_day: Some(day), ..none };
    let expired = expires(EXPIRED_LONG_AGO);
    let blocked = AccountLimits { blocked: true, ..none };
    let password_expired = AccountLimits { password_expired: true, ..none };
    // (properties, limits, warns)
    type Case<'a> = (Vec<(&'a str, &'a str)>, AccountLimits, bool);
    let cases: Vec<Case> = vec![
        (vec![], none, false),
        (vec![("u_accountvalid", "0"), ("u_accountvalidtill", "2026-12-31")], none, false),
        (vec![("u_accountvalid", "false"), ("u_accountvalidtill", "garbage")], none, false),
        (vec![("u_accountvalid", "1"), ("u_accountvalidtill", "2461406")], expires(d), false),
        (vec![("u_accountvalid", "yes"), ("u_accountvalidtill", "20261231")], expires(d), false),
        // No flag, but a date: the date applies.
        (vec![("u_accountvalidtill", "2026-12-31")], expires(d), false),
        (vec![("u_accountvalidtill", "0")], none, false),
        // Before 1970-01-02: expired long ago, never -1 ("no expiry" in shadow).
        (vec![("u_accountvalidtill", "1969-12-31")], expired, false),
        (vec![("u_accountvalidtill", "2440588")], expired, false),
        (vec![("u_accountvalid", ""), ("u_accountvalidtill", "")], none, false),
        // Limited without a usable date: expired, with the raw value in a warning.
        (vec![("u_accountvalid", "1"), ("u_accountvalidtill", "31.12.2026")], expired, true),
        (vec![("u_accountvalid", "1"), ("u_accountvalidtill", "")], expired, true),
        (vec![("u_accountvalid", "1"), ("u_accountvalidtill", "0")], expired, true),
        (vec![("u_accountvalidtill", "soon")], expired, true),
        // An unreadable flag: limited.
        (vec![("u_accountvalid", "maybe")], expired, true),
        (vec![("u_accountvalid", "maybe"), ("u_accountvalidtill", "2026-12-31")], expires(d), true),
        (vec![("u_blocked", "1")], blocked, false),
        (vec![("u_blocked", "0")], none, false),
        (vec![("u_blocked", "locked")], blocked, true),
        (vec![("U_PasswordExpired", "TRUE")], password_expired, false),
        (vec![("u_passwordexpired", "2")], password_expired, true),
    ];
    for (values, expected, warns) in cases {
        let (limits, warnings) = limits_of(&values);
        assert_eq!(limits, expected, "{values:?}");
        assert_eq!(!warnings.is_empty(), warns, "{values:?}: {warnings:?}");
    }
}

#[test]
fn a_warning_names_the_account_the_property_and_the_raw_value() {
    let (_, warnings) = limits_of(&[("u_accountvalid", "1"), ("u_accountvalidtill", "31.12.2026")]);
    assert_eq!(
        warnings,
        ["al@x.test: U_AccountValidTill \"31.12.2026\" is not understood; the account is \
          treated as expired"]
    );
}

#[test]
fn a_list_value_counts_as_its_only_item() {
    let mut props = Properties::new();
    props.values = vec![
        ("u_blocked".to_string(), PropertyValue::List(vec!["1".to_string()])),
        (
            "u_passwordexpired".to_string(),
            PropertyValue::List(vec!["0".to_string(), "1".to_string()]),
        ),
    ];
    let mut warnings = Vec::new();
    let limits = account_limits("al@x.test", &props, &mut warnings);
    assert!(limits.blocked);
    assert!(limits.password_expired, "several values are unreadable: set");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}
