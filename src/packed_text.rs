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
    pub text: Box<str>,
    /// Where each fixed piece ends in `text` (the name's end is the identity's when the
    /// identity ends with the name).
    pub heads: [u32; N],
    /// Where the name starts: in the identity or right after it.
    pub name_start: u32,
    /// Where each list piece ends in `text`, but the last one (which ends with `text`).
    pub list_ends: Vec<u32>,
}

/// The identity's place among the fixed pieces.
const IDENTITY: usize = 0;
/// The name's place among the fixed pieces.
const NAME: usize = 1;

/// `fixed` (identity first, name second) and `list` in one buffer. `spare` more words of
/// room are reserved in `list_ends` for the owner.
pub fn pack<'a, const N: usize>(
    fixed: [&'a str; N],
    list: impl Iterator<Item = &'a str> + Clone,
    spare: usize,
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
    let len: usize = fixed.iter().enumerate().map(|(at, piece)| written(at, piece).len()).sum();
    let len = len + list.clone().map(str::len).sum::<usize>();
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
    let pieces = list.clone().count();
    let mut list_ends = Vec::with_capacity(pieces.saturating_sub(1) + spare);
    for (at, piece) in list.enumerate() {
        text.push_str(piece);
        if at + 1 < pieces {
            list_ends.push(offset(&text)?);
        }
    }
    Ok(Packed { text: text.into_boxed_str(), heads, name_start, list_ends })
}

/// The `at`th piece of `text`: a fixed one below `heads.len()`, then the list pieces, of
/// which `list_ends` holds the ends of all but the last.
pub fn piece<'t>(text: &'t str, heads: &[u32], list_ends: &[u32], at: usize) -> &'t str {
    let end = |at: usize| match heads.get(at) {
        Some(head) => *head as usize,
        None => list_ends.get(at - heads.len()).map_or(text.len(), |end| *end as usize),
    };
    let start = at.checked_sub(1).map_or(0, end);
    text.get(start..end(at)).unwrap_or_default()
}

/// The name: in the identity, or the second fixed piece.
pub fn name<'t>(text: &'t str, heads: &[u32], name_start: u32) -> &'t str {
    let end = heads.get(NAME).map_or(0, |end| *end as usize);
    text.get(name_start as usize..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all<const N: usize>(packed: &Packed<N>, pieces: usize) -> Vec<&str> {
        (0..N + pieces)
            .map(|at| piece(&packed.text, &packed.heads, &packed.list_ends, at))
            .collect()
    }

    #[test]
    fn the_name_is_written_once_when_the_identity_ends_with_it() {
        let list = ["a@x", "b@x", "staff"];
        let packed = pack(["icewarp:bob@x", "bob@x", "Bob"], list.into_iter(), 2).unwrap();
        assert_eq!(&*packed.text, "icewarp:bob@xBoba@xb@xstaff");
        assert_eq!(name(&packed.text, &packed.heads, packed.name_start), "bob@x");
        assert_eq!(all(&packed, 3), ["icewarp:bob@x", "", "Bob", "a@x", "b@x", "staff"]);
        assert_eq!(packed.list_ends.capacity(), 4);

        let packed = pack(["icewarp:bob@x", "Bob@X", ""], std::iter::empty(), 0).unwrap();
        assert_eq!(name(&packed.text, &packed.heads, packed.name_start), "Bob@X");
        assert_eq!(all(&packed, 0), ["icewarp:bob@x", "Bob@X", ""]);
        assert!(packed.list_ends.is_empty());
    }

    #[test]
    fn pieces_past_the_list_are_empty_and_nothing_panics() {
        let packed = pack(["", "", "ä€"], ["é"].into_iter(), 0).unwrap();
        assert_eq!(name(&packed.text, &packed.heads, packed.name_start), "");
        assert_eq!(all(&packed, 1), ["", "", "ä€", "é"]);
        assert_eq!(piece(&packed.text, &packed.heads, &packed.list_ends, 9), "");
        assert_eq!(piece("", &[5], &[], 0), "");
    }
}
