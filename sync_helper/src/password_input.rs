//! Getting a new password from standard input or the terminal. Every buffer that holds it is
//! a [`Secret`], wiped when dropped.

use std::io::{self, IsTerminal, Read};

use dircache::passwords::{check_new_password, Secret, MAX_PASSWORD_LEN};
use zeroize::Zeroizing;

use crate::error::CliError;

/// Whether a person can be asked: the prompt goes to the terminal, not into a pipe.
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// The first line of standard input, without its line ending.
pub fn from_stdin() -> Result<Secret, CliError> {
    let password = read_line(io::stdin().lock()).map_err(CliError::ReadStdin)?;
    check_new_password(&password).map_err(CliError::UnusablePassword)?;
    Ok(password)
}

/// Asks twice without echo, like passwd.
pub fn prompt_new() -> Result<Secret, CliError> {
    let first = prompt("New password: ")?;
    check_new_password(&first).map_err(CliError::UnusablePassword)?;
    let second = prompt("Retype new password: ")?;
    if first != second {
        return Err(CliError::PasswordMismatch);
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<Secret, CliError> {
    rpassword::prompt_password(text)
        // into_bytes reuses the string's buffer, so no unwiped copy is left behind.
        .map(|typed| Zeroizing::new(typed.into_bytes()))
        .map_err(CliError::ReadTerminal)
}

/// Big enough that std's stdin buffer (8 KiB) is bypassed: reads at least its size go
/// straight into this wiped buffer, so no copy of the password stays behind in std's.
const READ_BUFFER: usize = 64 * 1024;

/// The first line, without its line ending. Reading stops once the line is known to be
/// longer than any allowed password, which `check_new_password` then refuses.
fn read_line(mut reader: impl Read) -> io::Result<Secret> {
    let mut buffer = Zeroizing::new(vec![0u8; READ_BUFFER]);
    let mut filled = 0;
    while filled <= MAX_PASSWORD_LEN + 2 && !buffer[..filled].contains(&b'\n') {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let end = buffer[..filled].iter().position(|&b| b == b'\n').unwrap_or(filled);
    let mut line = Zeroizing::new(buffer[..end].to_vec());
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(input: &[u8]) -> Vec<u8> {
        read_line(input).unwrap().to_vec()
    }

    #[test]
    fn one_line_without_its_ending() {
        assert_eq!(line_of(b"secret\nnext line\n"), b"secret");
        assert_eq!(line_of(b"secret\r\n"), b"secret");
        assert_eq!(line_of(b"no newline"), b"no newline");
        assert_eq!(line_of(b" spaces kept \n"), b" spaces kept ");
        assert_eq!(line_of(b"\n"), b"");
    }

    #[test]
    fn an_overlong_line_stays_overlong() {
        let long = vec![b'a'; MAX_PASSWORD_LEN + 10];
        let line = line_of(&long);
        assert!(check_new_password(&line).is_err());
        let mut longest = vec![b'a'; MAX_PASSWORD_LEN];
        longest.extend_from_slice(b"\r\n");
        assert!(check_new_password(&line_of(&longest)).is_ok());
    }
}
