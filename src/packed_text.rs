//! The strings of one account in one allocation, as a sync holds a million of them: the
//! listing's `directory::CompactUser` and the cache's `cache::CachedUser` (README,
//! PERFORMANCE: peak RSS per user). `N` fixed pieces, of which the first is the identity
//! and the second the name, then a list of pieces (addresses, then groups), one after
//! another in one `str`; the name is not written again when the identity ends with it, as
//! it mostly does.

/// Text too long for the 4-byte offsets (4 GiB or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// What [`pack`] makes; the owner keeps its parts in its own fields.
pub struct Packed<const N: usize> {
    /// The pieces, then where each list piece but the last ends, then the words (see
    /// [`pack`]).
    pub text: Box<str>,
    /// Where each fixed piece ends in `text` (the name's end is the identity's when the
    /// identity ends with the name).
    pub heads: [u32; N],
    /// Where the name starts: in the identity or right after it.
    pub name_start: u32,
    /// Whether the first list piece is the name, and so not written again (an IceWarp
    /// user's primary address is its login name); the owner keeps it for [`Tail`].
    pub first_is_name: bool,
}

/// The identity's place among the fixed pieces.
const IDENTITY: usize = 0;
/// The name's place among the fixed pieces.
const NAME: usize = 1;
/// Bits of a number that one byte of `text` holds: bytes below 128 are ASCII, so the text
/// stays valid UTF-8 with numbers in it.
const DIGIT_BITS: u32 = 7;
/// Bytes of one word (a `u64`) after the list ends.
const WORD_BYTES: usize = 10;

/// How many bytes each list end takes in a text of `len` bytes: as few as hold any offset
/// up to `len` (one for the usual account, whose text is shorter than 128 bytes). Read
/// from the text's length, so that no owner keeps it.
fn end_width(len: usize) -> usize {
    let bits = usize::BITS - len.leading_zeros();
    (bits.div_ceil(DIGIT_BITS) as usize).max(1)
}

/// `value` in `width` bytes of seven bits each, lowest first.
fn push_number(text: &mut String, value: u64, width: usize) {
    for digit in 0..width {
        let byte = (value >> (DIGIT_BITS as usize * digit)) & 0x7f;
        text.push(char::from(byte as u8));
    }
}

/// The number [`push_number`] wrote at `at`; 0 for bytes that are not there.
fn read_number(text: &str, at: usize, width: usize) -> u64 {
    let bytes = text.as_bytes().get(at..at + width).unwrap_or_default();
    let digits = bytes.iter().enumerate();
    digits.fold(0, |value, (digit, byte)| value | u64::from(*byte) << (DIGIT_BITS as usize * digit))
}

/// `fixed` (identity first, name second) and `list` in one buffer, followed by where each
/// list piece but the last ends and by `words`: values its owner rarely has (a list end
/// or a word held in a vector of its own would cost every account an allocation).
pub fn pack<'a, const N: usize>(
    fixed: [&'a str; N],
    list: impl Iterator<Item = &'a str> + Clone,
    words: &[u64],
) -> Result<Packed<N>, TooLong> {
    let (identity, name) = (fixed.get(IDENTITY).copied(), fixed.get(NAME).copied());
    let in_identity = identity.zip(name).is_some_and(|(identity, name)| identity.ends_with(name));
    let written = |at: usize, piece: &'a str| -> &'a str {
        if at == NAME && in_identity {
            ""
        } else {
            piece
        }
    };
    let first_is_name = name.is_some() && list.clone().next() == name;
    // The first list piece is then written empty: the list's ends stay as they are.
    let listed = list.clone().enumerate().map(|(at, piece)| match at == 0 && first_is_name {
        true => "",
        false => piece,
    });
    let body: usize = fixed.iter().enumerate().map(|(at, piece)| written(at, piece).len()).sum();
    let body = body + listed.clone().map(str::len).sum::<usize>();
    let ends = list.clone().count().saturating_sub(1);
    let tail = words.len() * WORD_BYTES;
    // The narrowest width that holds the offsets of the text it makes (see `end_width`).
    let width = (1..).find(|width| end_width(body + ends * width + tail) <= *width).unwrap_or(5);
    let len = body + ends * width + tail;
    u32::try_from(len).map_err(|_| TooLong)?;
    let mut text = String::with_capacity(len);
    let offset = |text: &String| u32::try_from(text.len()).map_err(|_| TooLong);
    let mut heads = [0; N];
    for (at, (head, piece)) in heads.iter_mut().zip(fixed).enumerate() {
        text.push_str(written(at, piece));
        *head = offset(&text)?;
    }
    let identity_end = heads.get(IDENTITY).copied().unwrap_or(0);
    let name_len = u32::try_from(name.map_or(0, str::len)).map_err(|_| TooLong)?;
    let name_start = if in_identity { identity_end.saturating_sub(name_len) } else { identity_end };
    let mut end = text.len();
    for piece in listed.clone() {
        text.push_str(piece);
    }
    for piece in listed.take(ends) {
        end += piece.len();
        push_number(&mut text, end as u64, width);
    }
    for word in words {
        push_number(&mut text, *word, WORD_BYTES);
    }
    Ok(Packed { text: text.into_boxed_str(), heads, name_start, first_is_name })
}

/// How a packed text ends: the count of its list pieces and of its words; and where the
/// name starts when the first list piece is the name ([`Packed::first_is_name`]).
#[derive(Debug, Clone, Copy)]
pub struct Tail {
    pub pieces: usize,
    pub words: usize,
    pub name_first: Option<u32>,
}

impl Tail {
    /// Where the pieces end and the list ends start in `text`, and the width of each end.
    fn ends(self, text: &str) -> (usize, usize) {
        let width = end_width(text.len());
        let ends = self.pieces.saturating_sub(1) * width;
        (text.len().saturating_sub(ends + self.words * WORD_BYTES), width)
    }
}

/// The `at`th piece of `text`: a fixed one below `heads.len()`, then the list pieces.
pub fn piece<'t>(text: &'t str, heads: &[u32], tail: Tail, at: usize) -> &'t str {
    if let Some(name_start) = tail.name_first.filter(|_| at == heads.len() && tail.pieces > 0) {
        return name(text, heads, name_start);
    }
    let (body, width) = tail.ends(text);
    let end = |at: usize| match heads.get(at) {
        Some(head) => *head as usize,
        None => match at - heads.len() {
            nth if nth + 1 < tail.pieces => read_number(text, body + nth * width, width) as usize,
            _ => body,
        },
    };
    let start = at.checked_sub(1).map_or(0, end);
    text.get(start..end(at)).unwrap_or_default()
}

/// The `at`th of the words [`pack`] was given (0 when there is none).
pub fn word(text: &str, tail: Tail, at: usize) -> u64 {
    let words = text.len().saturating_sub(tail.words * WORD_BYTES);
    read_number(text, words + at * WORD_BYTES, WORD_BYTES)
}

/// The name: in the identity, or the second fixed piece.
pub fn name<'t>(text: &'t str, heads: &[u32], name_start: u32) -> &'t str {
    let end = heads.get(NAME).map_or(0, |end| *end as usize);
    text.get(name_start as usize..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all<const N: usize>(packed: &Packed<N>, tail: Tail) -> Vec<&str> {
        (0..N + tail.pieces).map(|at| piece(&packed.text, &packed.heads, tail, at)).collect()
    }

    fn tail(pieces: usize, words: usize) -> Tail {
        Tail { pieces, words, name_first: None }
    }

    #[test]
    fn a_first_list_piece_that_is_the_name_is_not_written_again() {
        for fixed in [["icewarp:bob@x", "bob@x", "Bob"], ["icewarp:x", "bob@x", "Bob"]] {
            let packed = pack(fixed, ["bob@x", "b@x"].into_iter(), &[7]).unwrap();
            assert!(packed.first_is_name);
            let shape = Tail { name_first: Some(packed.name_start), ..tail(2, 1) };
            assert_eq!(all(&packed, shape)[3..], ["bob@x", "b@x"]);
            assert_eq!(word(&packed.text, shape, 0), 7);
            let written = fixed.concat().len() - if fixed[0].ends_with(fixed[1]) { 5 } else { 0 };
            assert_eq!(packed.text.len(), written + "b@x".len() + 1 + 10);
        }
        // Only the first piece, only the very name (case included), and only with a name.
        for list in [&["b@x", "bob@x"][..], &["Bob@x"], &[]] {
            let packed = pack(["icewarp:bob@x", "bob@x"], list.iter().copied(), &[]).unwrap();
            assert!(!packed.first_is_name, "{list:?}");
        }
        assert!(!pack(["id"], [""].into_iter(), &[]).unwrap().first_is_name);
    }

    #[test]
    fn the_name_is_written_once_when_the_identity_ends_with_it() {
        let list = ["a@x", "b@x", "staff"];
        let packed = pack(["icewarp:bob@x", "bob@x", "Bob"], list.into_iter(), &[]).unwrap();
        // The two list ends that are not the text's (19 and 22) in one byte each.
        assert_eq!(&*packed.text, "icewarp:bob@xBoba@xb@xstaff\u{13}\u{16}");
        assert_eq!(name(&packed.text, &packed.heads, packed.name_start), "bob@x");
        assert_eq!(all(&packed, tail(3, 0)), ["icewarp:bob@x", "", "Bob", "a@x", "b@x", "staff"]);

        let packed = pack(["icewarp:bob@x", "Bob@X", ""], std::iter::empty(), &[]).unwrap();
        assert_eq!(name(&packed.text, &packed.heads, packed.name_start), "Bob@X");
        assert_eq!(all(&packed, tail(0, 0)), ["icewarp:bob@x", "Bob@X", ""]);
        assert_eq!(packed.text.len(), "icewarp:bob@xBob@X".len());
    }

    #[test]
    fn pieces_past_the_list_are_empty_and_nothing_panics() {
        let packed = pack(["", "", "ä€"], ["é"].into_iter(), &[]).unwrap();
        assert_eq!(name(&packed.text, &packed.heads, packed.name_start), "");
        assert_eq!(all(&packed, tail(1, 0)), ["", "", "ä€", "é"]);
        assert_eq!(piece(&packed.text, &packed.heads, tail(1, 0), 9), "");
        assert_eq!(piece("", &[5], tail(0, 0), 0), "");
        // Counts that do not match the text read as empty pieces and zero words.
        assert_eq!(piece("ab", &[1], tail(7, 3), 2), "");
        assert_eq!(word("", tail(0, 2), 1), 0);
    }

    #[test]
    fn every_piece_and_word_reads_back_whatever_width_the_ends_need() {
        // Lengths around 128, 2^14 and 2^21 bytes, where the ends widen from one byte to
        // two, three and four, also when the ends themselves take the text past them.
        let lengths = [0, 1, 60, 120, 124, 125, 126, 127, 128, 200, 16_370, 16_383, 16_384];
        let long = "é".repeat(1 << 20) + "xy";
        let words = [0, 1, 127, 128, u64::from(u32::MAX), u64::MAX, 1 << 63];
        for len in lengths.into_iter().chain([1 << 21, (1 << 21) + 2]) {
            let first = if len % 2 == 1 { "x".repeat(len) } else { long[..len].to_string() };
            for pieces in 0..4 {
                let list: Vec<&str> = [first.as_str(), "b@x", "", "ä"][..pieces].to_vec();
                for words in [&words[..0], &words[..1], &words[..]] {
                    let fixed = ["icewarp:a", "a", "Ä"];
                    let packed = pack(fixed, list.iter().copied(), words).unwrap();
                    let shape = tail(pieces, words.len());
                    let mut expected = vec!["icewarp:a", "", "Ä"];
                    expected.extend(&list);
                    assert_eq!(all(&packed, shape), expected, "{len} {pieces} {words:?}");
                    let read: Vec<u64> =
                        (0..words.len()).map(|at| word(&packed.text, shape, at)).collect();
                    assert_eq!(read, words, "{len} {pieces}");
                    let ends = pieces.saturating_sub(1) * end_width(packed.text.len());
                    let body = 11 + list.iter().map(|piece| piece.len()).sum::<usize>();
                    assert_eq!(packed.text.len(), body + ends + words.len() * WORD_BYTES);
                }
            }
        }
    }

    #[test]
    fn ends_take_as_few_bytes_as_the_text_needs() {
        assert_eq!([0, 1, 127].map(end_width), [1, 1, 1]);
        assert_eq!([128, 16_383, 16_384, (1 << 21) - 1, 1 << 21].map(end_width), [2, 2, 3, 3, 4]);
        assert_eq!([(1 << 28) - 1, 1 << 28, u32::MAX as usize].map(end_width), [4, 5, 5]);
    }
}
