//! TOML syntax and type errors, reported on one line with the line, the column and the key.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One line: where (line, column, and the dotted key when it can be located) and what.
/// toml's own `Display` spans several lines with a source excerpt, which suits a terminal but
/// not syslog or the one-line error contract of `dircache-sync`; it also omits the key for
/// type errors, where the span points at the value.
pub(super) fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = match err.message().strip_prefix("unknown field ") {
        Some(rest) => format!("unknown key {rest}"),
        None => in_plain_words(err.message()),
    };
    let Some(span) = err.span() else {
        return message;
    };
    let (line, column) = line_and_column(text, span.start);
    let key = DeTable::parse(text).ok().and_then(|table| key_at(table.get_ref(), &span));
    match key {
        // serde's type errors quote the value, and a password typed unquoted
        // (`password = 12345`) must not end up in a log.
        Some(key) if key == "directory.password" => format!(
            "line {line}, column {column}, at `{key}`: invalid value (not shown); write the \
             password as a quoted string"
        ),
        Some(key) => format!("line {line}, column {column}, at `{key}`: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// serde names Rust's integer types ("expected u8"); an administrator reads a range.
fn in_plain_words(message: &str) -> String {
    const TYPES: [(&str, &str); 4] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u64", "expected a whole number from 0 up"),
    ];
    TYPES.iter().fold(message.to_string(), |text, (rust, plain)| match text.strip_suffix(rust) {
        Some(start) => format!("{start}{plain}"),
        None => text,
    })
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_and_column(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The 1-based line where the key at `path` (`["unix", "local_groups", "sudo"]`) is
/// written, however it is written (a `[header]` table, dotted keys, an inline table).
pub(super) fn line_of_key(text: &str, path: &[&str]) -> Option<usize> {
    let table = DeTable::parse(text).ok()?;
    let (last, parents) = path.split_last()?;
    let mut current = table.get_ref();
    for name in parents {
        let (_, value) = current.iter().find(|(key, _)| key.get_ref().as_ref() == *name)?;
        match value.get_ref() {
            DeValue::Table(inner) => current = inner,
            _ => return None,
        }
    }
    let (key, _) = current.iter().find(|(key, _)| key.get_ref().as_ref() == *last)?;
    Some(line_and_column(text, key.span().start).0)
}

/// The dotted path of the key whose name or value covers `span`.
fn key_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    let covers = |outer: Range<usize>| {
        outer.start <= span.start && (span.start < outer.end || outer.start == outer.end)
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        if covers(key.span()) {
            return Some(name.to_string());
        }
        // Tables opened by a `[header]` do not cover their keys, so descend into every table
        // rather than trusting the table's own span.
        let inner = match value.get_ref() {
            DeValue::Table(inner) => key_at(inner, span),
            DeValue::Array(items) => items.iter().find_map(|item| match item.get_ref() {
                DeValue::Table(inner) => key_at(inner, span),
                _ => None,
            }),
            _ => None,
        };
        if let Some(inner) = inner {
            return Some(format!("{name}.{inner}"));
        }
        if covers(value.span()) {
            return Some(name.to_string());
        }
    }
    None
}
