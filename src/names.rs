//! User and group names: what is allowed, and how names are compared.
//!
//! Names end up in `/etc/passwd`-format lines, in file paths (`home = "/home/{name}"`) and in
//! log lines, so anything that could break one of those is refused here, at the boundary.
//! Matching is case-insensitive (a directory says `Alice@Example.com` and `alice@example.com`
//! are one person); the spelling first recorded is kept for display.

use thiserror::Error;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is {0} bytes long; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
    #[error("the name contains {0:?}, which is not allowed in a user or group name")]
    ForbiddenChar(char),
    #[error("the name starts with '-', which tools would read as an option")]
    LeadingDash,
    #[error("'.' and '..' are not names")]
    DotName,
    #[error("a name made only of digits would be read as a numeric id")]
    AllDigits,
}

/// Checks that `name` can safely be a Unix user or group name.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if let Some(bad) = name.chars().find(|c| is_forbidden(*c)) {
        return Err(NameError::ForbiddenChar(bad));
    }
    if name.starts_with('-') {
        return Err(NameError::LeadingDash);
    }
    if name == "." || name == ".." {
        return Err(NameError::DotName);
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::AllDigits);
    }
    Ok(())
}

/// `:` and newline break passwd lines, `/` and `\` break paths, `,` breaks group member
/// lists, whitespace and control characters break log lines and shells; invisible
/// characters would let `root\u{200B}` or a name with a right-to-left override look like
/// another name in `ls -l`, `ps` and log lines.
fn is_forbidden(c: char) -> bool {
    matches!(c, ':' | '/' | '\\' | ',') || c.is_whitespace() || c.is_control() || is_invisible(c)
}

/// Unicode's default-ignorable code points (zero-width characters, joiners, bidirectional
/// controls, variation selectors, tags, the soft hyphen, …) and the interlinear annotation
/// controls: characters that change nothing or something else on screen.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The form two names are compared in.
pub fn fold_name(name: &str) -> String {
    name.to_lowercase()
}

/// Whether two names denote the same account.
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || fold_name(a) == fold_name(b)
}

/// The 64-bit key a name is indexed under in the cache files: FNV-1a over the folded name.
/// Part of the on-disk format; changing it needs a new format version.
pub fn name_key(name: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    fold_name(name)
        .bytes()
        .fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["alice", "alice@example.com", "j.doe", "x_y-z", "Émile", "a1"] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_names_that_break_files_paths_or_tools() {
        let cases = [
            ("", NameError::Empty),
            ("a:b", NameError::ForbiddenChar(':')),
            ("a/b", NameError::ForbiddenChar('/')),
            ("a\nb", NameError::ForbiddenChar('\n')),
            ("a\0b", NameError::ForbiddenChar('\0')),
            ("a b", NameError::ForbiddenChar(' ')),
            ("a,b", NameError::ForbiddenChar(',')),
            ("-rf", NameError::LeadingDash),
            (".", NameError::DotName),
            ("..", NameError::DotName),
            ("1234", NameError::AllDigits),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_name(name), Err(expected), "{name:?}");
        }
    }

    #[test]
    fn refuses_invisible_characters_that_make_one_name_look_like_another() {
        for (name, c) in [
            ("root\u{200B}", '\u{200B}'),
            ("ro\u{200D}ot", '\u{200D}'),
            ("\u{FEFF}admin", '\u{FEFF}'),
            ("alice\u{202E}moc.elpmaxe", '\u{202E}'),
            ("bob\u{2066}", '\u{2066}'),
            ("ad\u{00AD}min", '\u{00AD}'),
            ("x\u{FE0F}", '\u{FE0F}'),
            ("tag\u{E0041}", '\u{E0041}'),
        ] {
            assert_eq!(validate_name(name), Err(NameError::ForbiddenChar(c)), "{name:?}");
        }
        // Visible non-ASCII letters stay allowed.
        assert_eq!(validate_name("Zoë.Ångström"), Ok(()));
    }

    #[test]
    fn length_limit_is_256_bytes() {
        assert_eq!(validate_name(&"a".repeat(256)), Ok(()));
        assert_eq!(validate_name(&"a".repeat(257)), Err(NameError::TooLong(257)));
    }

    #[test]
    fn matching_ignores_case_and_keys_agree() {
        assert!(same_name("Alice@Example.COM", "alice@example.com"));
        assert!(!same_name("alice", "alice2"));
        assert_eq!(name_key("ALICE"), name_key("alice"));
        assert_ne!(name_key("alice"), name_key("bob"));
    }

    #[test]
    fn name_key_is_fnv1a_of_the_folded_name() {
        // Fixed on-disk values: a change here breaks every existing cache.
        assert_eq!(name_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_key("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
