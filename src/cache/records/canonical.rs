//! A [`PublicUser`] record read from the form the writer produces, without serde: every
//! process's first lookup decodes one (issue 12 §2), and serde_json's generic decoding was
//! a fifth of that lookup's instructions and most of its code.
//!
//! The canonical form is exactly what `PublicUser`'s `Serialize` writes with
//! `serde_json::to_vec`: `["name",uid,gid,"gecos","home","shell",[gid,…]]`, optionally
//! followed by `,day` before the `]`; no whitespace, strings without escapes or control
//! characters, integers without sign (except the day's `-`), leading zero or exponent.
//! Anything else (a version 1 object, an escaped string, a record written by another
//! encoder) is not an error here: [`decode`] answers `None` and the caller decodes with
//! serde_json, which decides. So this reader accepts a subset of what serde_json accepts
//! and gives the same value for it, never more — which the tests check on mutated records.

use super::PublicUser;

/// The record, if `json` is in the canonical form; `None` means "ask serde_json".
pub fn decode(json: &[u8]) -> Option<PublicUser> {
    let mut input = Input { bytes: json, at: 0 };
    input.expect(b'[')?;
    let name = input.string()?;
    input.expect(b',')?;
    let uid = input.unsigned()?;
    input.expect(b',')?;
    let gid = input.unsigned()?;
    input.expect(b',')?;
    let gecos = input.string()?;
    input.expect(b',')?;
    let home = input.string()?;
    input.expect(b',')?;
    let shell = input.string()?;
    input.expect(b',')?;
    let gids = input.gid_list()?;
    let expires_day = match input.next()? {
        b']' => None,
        b',' => {
            let day = input.day()?;
            input.expect(b']')?;
            Some(day)
        }
        _ => return None,
    };
    input.at_end().then_some(PublicUser {
        name: name.to_owned(),
        uid,
        gid,
        gecos: gecos.to_owned(),
        home: home.to_owned(),
        shell: shell.to_owned(),
        gids,
        expires_day,
    })
}

struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// A string without escapes or control characters, as valid UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let len = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let text = std::str::from_utf8(&rest[..len]).ok()?;
        self.at += len + 1;
        Some(text)
    }

    /// Digits as JSON writes an unsigned integer: `0`, or no leading zero.
    fn digits(&mut self) -> Option<u64> {
        let first = self.next()?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut value = u64::from(first - b'0');
        while let Some(digit) = self.peek().filter(u8::is_ascii_digit) {
            if first == b'0' {
                return None;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        Some(value)
    }

    fn unsigned(&mut self) -> Option<u32> {
        u32::try_from(self.digits()?).ok()
    }

    /// The expiry day: a non-negative integer, or `-` and a positive one.
    fn day(&mut self) -> Option<i64> {
        if self.peek() == Some(b'-') {
            self.at += 1;
            if self.peek() == Some(b'0') {
                return None;
            }
            return i64::try_from(self.digits()?).ok().map(|day| -day);
        }
        i64::try_from(self.digits()?).ok()
    }

    /// `[]` or `[gid,gid,…]`.
    fn gid_list(&mut self) -> Option<Vec<u32>> {
        self.expect(b'[')?;
        let mut gids = Vec::new();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Some(gids);
        }
        loop {
            gids.push(self.unsigned()?);
            match self.next()? {
                b',' => continue,
                b']' => return Some(gids),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
