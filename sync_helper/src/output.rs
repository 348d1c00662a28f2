//! What the `user` commands print: JSON for scripts, a table or "key: value" lines for people.
//! Everything printed comes from [`UserView`], which has no password hash to leak.

use std::borrow::Cow;
use std::io::{self, Write};

use dircache::names::is_invisible;
use dircache::user::{civil_date, day_number, UserView};
use serde::Serialize;

/// Longest directory text printed whole; longer ones are cut.
const MAX_SHOWN: usize = 1024;

/// Text that came from outside (the directory, a server's error), safe for a terminal and
/// for one line per entry: control characters (a newline forging a line, an escape
/// sequence) and invisible ones (a right-to-left override reordering what follows) are
/// shown escaped.
pub fn printable(text: &str) -> Cow<'_, str> {
    let hidden = |c: char| c.is_control() || is_invisible(c);
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if hidden(c) { c.escape_default().to_string() } else { c.to_string() })
            .collect(),
    )
}

/// One line of outside text: line breaks become spaces, other control characters are
/// escaped ([`printable`]).
pub fn one_printable_line(text: &str) -> String {
    printable(&text.replace(['\n', '\r'], " ")).into_owned()
}

/// [`printable`], and megabytes of a name cut to their start and their length.
pub fn shown(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_SHOWN {
        return printable(text);
    }
    let mut end = MAX_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", printable(&text[..end]), text.len()))
}

pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

const TABLE_HEADER: [&str; 6] = ["NAME", "UID", "AUTH", "ENABLED", "ORIGIN", "FULL NAME"];

/// One row per user, columns padded to the widest cell; the full name is last, so it needs
/// no padding and may contain anything.
pub fn write_table(out: &mut impl Write, users: &[UserView]) -> io::Result<()> {
    let rows: Vec<[String; 6]> = std::iter::once(TABLE_HEADER.map(String::from))
        .chain(users.iter().map(table_row))
        .collect();
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let padded: Vec<String> =
            row[..5].iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        let line = format!("{}  {}", padded.join("  "), row[5]);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn table_row(user: &UserView) -> [String; 6] {
    [
        shown(&user.name).into_owned(),
        user.uid.to_string(),
        user.auth.to_string(),
        yes_no(user.enabled).to_string(),
        user.origin.to_string(),
        shown(&user.full_name).into_owned(),
    ]
}

pub fn write_details(out: &mut impl Write, user: &UserView) -> io::Result<()> {
    // Every value may hold text the directory sent.
    for (key, value) in detail_lines(user) {
        writeln!(out, "{key}: {}", shown(&value))?;
    }
    Ok(())
}

fn enabled_text(user: &UserView) -> String {
    if user.disabled_by_admin {
        "no (by an administrator; a sync keeps it so until `user set --enable`)".to_string()
    } else {
        yes_no(user.enabled).to_string()
    }
}

fn detail_lines(user: &UserView) -> Vec<(&'static str, String)> {
    let privileges: Vec<&str> = user.privileges.iter().map(|p| p.as_str()).collect();
    let mut lines = vec![
        ("name", user.name.clone()),
        ("full_name", user.full_name.clone()),
        ("emails", user.emails.join(", ")),
        ("auth", user.auth.to_string()),
        ("has_password", yes_no(user.has_password).to_string()),
        ("privileges", privileges.join(", ")),
        ("enabled", enabled_text(user)),
        ("origin", user.origin.to_string()),
        ("uid", user.uid.to_string()),
        ("gid", user.gid.to_string()),
        ("home", user.home.clone()),
        ("shell", user.shell.clone()),
        ("groups", user.groups.join(", ")),
    ];
    if !user.local_groups.is_empty() {
        lines.push(("local_groups", user.local_groups.join(", ")));
    }
    if let Some(dn) = &user.distinguished_name {
        lines.push(("distinguished_name", dn.clone()));
    }
    if let Some(date) = &user.expires {
        lines.push(("expires", format!("{date} (no login from that day on)")));
    }
    if user.blocked {
        lines.push(("blocked", "yes (by the directory's login policy)".to_string()));
    }
    if user.password_expired {
        lines.push(("password_expired", "yes (change it in webmail)".to_string()));
    }
    lines.push(("created_at", utc_time(user.created_at)));
    lines.push(("updated_at", utc_time(user.updated_at)));
    lines
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// `2024-03-01 12:00:00 UTC`: a timestamp a person can read without a time-zone database.
pub fn utc_time(secs: u64) -> String {
    let rest = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        civil_date(day_number(secs)),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn outside_text_cannot_forge_lines_or_reach_the_terminal_raw() {
        assert_eq!(super::shown("alice@example.com"), "alice@example.com");
        assert_eq!(super::shown("évil\ncreated       root"), "évil\\ncreated       root");
        assert_eq!(super::shown("x\u{1b}]0;title\u{7}\r"), "x\\u{1b}]0;title\\u{7}\\r");
        let long = "é".repeat(1000);
        assert_eq!(super::shown(&long), format!("{}… (2000 bytes)", "é".repeat(512)));
        assert_eq!(super::printable(&long), long, "printable never cuts");
        assert_eq!(super::printable("Eve\u{202E}gnp.exe"), "Eve\\u{202e}gnp.exe");
    }

    use super::*;
    use dircache::privileges::Privilege;
    use dircache::user::{AuthMethod, Origin};

    fn view(name: &str, full_name: &str) -> UserView {
        UserView {
            name: name.to_string(),
            full_name: full_name.to_string(),
            emails: vec![format!("{name}@example.com"), "b@example.com".to_string()],
            auth: AuthMethod::Local,
            has_password: true,
            privileges: vec![Privilege::Login, Privilege::ReadOwnArchive],
            enabled: true,
            disabled_by_admin: false,
            origin: Origin::Manual,
            uid: 200_001,
            gid: 200_001,
            home: format!("/home/{name}"),
            shell: "/bin/bash".to_string(),
            groups: Vec::new(),
            local_groups: Vec::new(),
            distinguished_name: None,
            expires: None,
            blocked: false,
            password_expired: false,
            created_at: 0,
            updated_at: 1_709_294_400,
        }
    }

    fn text(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_columns_line_up() {
        let users = [view("alice.longname", "Alice L"), view("bo", "")];
        let table = text(|out| write_table(out, &users));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let uid_column = lines[0].find("UID").unwrap();
        assert_eq!(lines[1].find("200001"), Some(uid_column));
        assert_eq!(lines[2].find("200001"), Some(uid_column));
        assert!(lines[1].ends_with("  Alice L"), "{table}");
    }

    #[test]
    fn details_are_key_value_lines() {
        let details = text(|out| write_details(out, &view("alice", "Alice L")));
        assert!(details.contains("\nemails: alice@example.com, b@example.com\n"));
        assert!(details.contains("\nprivileges: login, read_own_archive\n"));
        assert!(details.contains("\ncreated_at: 1970-01-01 00:00:00 UTC\n"));
        assert!(details.contains("\nupdated_at: 2024-03-01 12:00:00 UTC\n"));
    }

    #[test]
    fn limits_are_shown_when_there_are_some() {
        let plain = text(|out| write_details(out, &view("alice", "Alice L")));
        assert!(!plain.contains("expires"), "{plain}");
        assert!(!plain.contains("blocked"), "{plain}");
        let limited = UserView {
            expires: Some("2026-12-31".to_string()),
            blocked: true,
            password_expired: true,
            ..view("alice", "Alice L")
        };
        let details = text(|out| write_details(out, &limited));
        assert!(
            details.contains("\nexpires: 2026-12-31 (no login from that day on)\n"),
            "{details}"
        );
        assert!(
            details.contains("\nblocked: yes (by the directory's login policy)\n"),
            "{details}"
        );
        assert!(details.contains("\npassword_expired: yes (change it in webmail)\n"), "{details}");
    }
}
