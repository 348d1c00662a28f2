//! The on-disk table format shared by every cache file.
//!
//! ```text
//! header   96 bytes, little-endian:
//!          magic "DIRCACHE" | format version u32 | table kind u32 | generation u64 |
//!          record count u64 | records offset u64 | index count u32 | slots u32 |
//!          index offsets [u64; 3] | local seal u64 | file length u64 | body crc32 u32 |
//!          header crc32 u32
//! records  per record: length u32 | crc32 u32 | JSON bytes
//! indexes  per index: a hash table of n slots (n in the header, at least 1.5 times the
//!          record count and at least 8), each (key u64, record offset u32, crc32 of those
//!          12 bytes u32); offset 0 marks an empty slot; a key's first slot is its mixed
//!          hash modulo n; collisions probe linearly
//! ```
//! The local seal (0: none) says which state of the local account files every name and id
//! of the generation was checked against: see `LocalAccounts::seal_of`. It took the place of a
//! fourth index offset, which no table ever used and readers ignore past the index count, so
//! version 2 readers without it read these files as before.
//! Version 1 differed only in its indexes: 2^k slots (k in the header; at least twice the
//! record count, so between 2 and 4 slots per record), each (key u64, record offset u64,
//! crc32 of those 16 bytes u32, zero u32), 24 bytes instead of 16, a third of every index for
//! offsets no file reaches. Readers still read it, so that a cache written before an upgrade serves
//! lookups until the next sync writes version 2.
//! A lookup reads the header once, then one window of index slots and one record: the same
//! few small reads for a thousand users or a million. Integrity without a full read: every
//! byte a lookup reads is covered by a checksum (header, each index slot, each record), the
//! header states the file length (a truncated file is refused), and every offset is
//! bounds-checked. Whole-file loads (the writers) also check the body checksum.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;

/// Pieces up to this length are checksummed with [`CRC_TABLES`]; longer ones with crc32fast.
const SMALL_PIECE: usize = 1024;

/// How many small pieces a process checksums with the first table alone, a byte at a time,
/// before slicing by 8: a lookup checks three or four (header, slots, record), and for them
/// eight cold tables (8 KiB, cache lines a fresh process has not touched) cost more than
/// the instructions they save; `initgroups` checks thousands, for which they pay.
const BYTEWISE_PIECES: usize = 16;

/// Small pieces checksummed so far by this process (counted up to [`BYTEWISE_PIECES`]).
static SMALL_PIECES_DONE: AtomicUsize = AtomicUsize::new(0);

/// The CRC-32 (IEEE, reflected, polynomial 0xEDB88320) tables for slicing by 8: `[0]` is
/// the classic table of each byte value, `[k]` the same byte followed by `k` zero bytes.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let previous = tables[k - 1][i];
            tables[k][i] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
};

/// The CRC-32 of a header, an index slot or a record: the same function as
/// `crc32fast::hash`. Small pieces (every lookup's header, slots and record) go through
/// tables: crc32fast's first call detects the CPU's features (`cpuid`, slow in virtual
/// machines), a cost to the first lookup of every process that its speed on a few hundred
/// bytes never pays back (issue 12 §2).
fn checksum(bytes: &[u8]) -> u32 {
    if bytes.len() > SMALL_PIECE {
        return crc32fast::hash(bytes);
    }
    if SMALL_PIECES_DONE.load(Ordering::Relaxed) < BYTEWISE_PIECES {
        SMALL_PIECES_DONE.fetch_add(1, Ordering::Relaxed);
        return crc_bytewise(bytes);
    }
    crc_sliced(bytes)
}

/// The CRC-32 of `bytes` with the first table, a byte a step.
fn crc_bytewise(bytes: &[u8]) -> u32 {
    let table = &CRC_TABLES[0];
    !bytes
        .iter()
        .fold(!0u32, |crc, &byte| table[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8))
}

/// The CRC-32 of `bytes` sliced by 8, the rest a byte a step.
fn crc_sliced(bytes: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let byte = |value: u32, shift: u32| ((value >> shift) & 0xff) as usize;
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = t[7][byte(low, 0)]
            ^ t[6][byte(low, 8)]
            ^ t[5][byte(low, 16)]
            ^ t[4][byte(low, 24)]
            ^ t[3][byte(high, 0)]
            ^ t[2][byte(high, 8)]
            ^ t[1][byte(high, 16)]
            ^ t[0][byte(high, 24)];
    }
    for value in chunks.remainder() {
        crc = t[0][byte(crc ^ u32::from(*value), 0)] ^ (crc >> 8);
    }
    !crc
}

pub const MAGIC: [u8; 8] = *b"DIRCACHE";
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version readers still read.
pub const OLDEST_READABLE_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 96;
pub const MAX_INDEXES: usize = 3;
/// The length of an index slot in `version` (one of the readable ones).
const fn index_entry_len(version: u32) -> u64 {
    if version == 1 {
        24
    } else {
        16
    }
}
/// The longest index slot of any readable version.
const MAX_INDEX_ENTRY_LEN: u64 = 24;
const RECORD_PREFIX_LEN: u64 = 8;
/// No single record may claim more than this; a larger length is corruption.
const MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;
/// Bytes read at once for a record: enough for a typical user.
const RECORD_GUESS_LEN: u64 = 512;

/// What a table file holds; stored in the header so a file cannot be read as another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    PublicUsers = 1,
    PrivateUsers = 2,
    Groups = 3,
    /// `grants.public`: the local groups `[unix.local_groups]` grants (issue 14 §1).
    LocalGrants = 4,
}

impl TableKind {
    fn from_u32(value: u32) -> Option<TableKind> {
        match value {
            1 => Some(TableKind::PublicUsers),
            2 => Some(TableKind::PrivateUsers),
            3 => Some(TableKind::Groups),
            4 => Some(TableKind::LocalGrants),
            _ => None,
        }
    }
}

#[derive(Debug, Error)]
pub enum FormatError {
    #[error("not a dircache file (bad magic)")]
    BadMagic,
    #[error("cache format version {found} is not supported (this build reads versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}); run `dircache-sync sync` to rebuild the cache")]
    UnsupportedVersion { found: u32 },
    #[error("the file holds table kind {found}, expected {expected:?}")]
    WrongKind { expected: TableKind, found: u32 },
    #[error("the header checksum does not match: the file is corrupt")]
    HeaderChecksum,
    #[error(
        "the file is {actual} bytes but its header says {expected}: it is truncated or corrupt"
    )]
    LengthMismatch { expected: u64, actual: u64 },
    #[error("the layout in the header is inconsistent: {0}")]
    BadLayout(&'static str),
    #[error("entry {position} of index {index} is corrupt (checksum mismatch)")]
    BadIndex { index: usize, position: u64 },
    #[error("the body checksum does not match: the file is corrupt")]
    BodyChecksum,
    #[error("the record at offset {offset} is corrupt: {reason}")]
    BadRecord { offset: u64, reason: String },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Positioned reads, so one reader serves a file (pread) and a memory map (a slice).
pub trait ByteSource {
    fn size(&self) -> io::Result<u64>;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ByteSource for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl<T: ByteSource + ?Sized> ByteSource for &T {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

impl ByteSource for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        let bytes = self.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version the file was written in.
    pub version: u32,
    pub kind: TableKind,
    pub generation: u64,
    pub record_count: u64,
    pub records_offset: u64,
    pub index_count: u32,
    /// Version 1: each index has `1 << slots_field` slots; version 2: `slots_field` slots.
    pub slots_field: u32,
    pub index_offsets: [u64; MAX_INDEXES],
    /// Which state of the local account files the names and ids were checked against;
    /// 0: none (see `LocalAccounts::seal_of`).
    pub local_seal: u64,
    pub file_len: u64,
    pub body_crc: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&(self.kind as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.generation.to_le_bytes());
        out[24..32].copy_from_slice(&self.record_count.to_le_bytes());
        out[32..40].copy_from_slice(&self.records_offset.to_le_bytes());
        out[40..44].copy_from_slice(&self.index_count.to_le_bytes());
        out[44..48].copy_from_slice(&self.slots_field.to_le_bytes());
        for (i, offset) in self.index_offsets.iter().enumerate() {
            out[48 + i * 8..56 + i * 8].copy_from_slice(&offset.to_le_bytes());
        }
        out[72..80].copy_from_slice(&self.local_seal.to_le_bytes());
        out[80..88].copy_from_slice(&self.file_len.to_le_bytes());
        out[88..92].copy_from_slice(&self.body_crc.to_le_bytes());
        let header_crc = checksum(&out[0..92]);
        out[92..96].copy_from_slice(&header_crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8; HEADER_LEN as usize], expected: TableKind) -> Result<Self, FormatError> {
        if bytes[0..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = le_u32(bytes, 8);
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion { found: version });
        }
        if checksum(&bytes[0..92]) != le_u32(bytes, 92) {
            return Err(FormatError::HeaderChecksum);
        }
        let found_kind = le_u32(bytes, 12);
        let kind = TableKind::from_u32(found_kind)
            .filter(|kind| *kind == expected)
            .ok_or(FormatError::WrongKind { expected, found: found_kind })?;
        let mut index_offsets = [0u64; MAX_INDEXES];
        for (i, offset) in index_offsets.iter_mut().enumerate() {
            *offset = le_u64(bytes, 48 + i * 8);
        }
        Ok(Header {
            version,
            kind,
            generation: le_u64(bytes, 16),
            record_count: le_u64(bytes, 24),
            records_offset: le_u64(bytes, 32),
            index_count: le_u32(bytes, 40),
            slots_field: le_u32(bytes, 44),
            index_offsets,
            local_seal: le_u64(bytes, 72),
            file_len: le_u64(bytes, 80),
            body_crc: le_u32(bytes, 88),
        })
    }

    /// Slots per index (the layout check bounds it before anything uses it).
    pub fn slot_count(&self) -> u64 {
        if self.version == 1 {
            1u64 << self.slots_field.min(63)
        } else {
            u64::from(self.slots_field)
        }
    }

    fn entry_len(&self) -> u64 {
        index_entry_len(self.version)
    }

    /// Records lie between `records_offset` and the first index; the indexes follow each
    /// other and end the file. Anything else is corruption.
    fn check_layout(&self) -> Result<(), FormatError> {
        let count = self.index_count as usize;
        if count == 0 || count > MAX_INDEXES {
            return Err(FormatError::BadLayout("index count out of range"));
        }
        if self.records_offset != HEADER_LEN {
            return Err(FormatError::BadLayout("records do not follow the header"));
        }
        let too_small = if self.version == 1 {
            self.slots_field > 40 || self.slot_count() < self.record_count.saturating_mul(2)
        } else {
            self.slot_count() < min_slots(self.record_count)
        };
        if too_small {
            return Err(FormatError::BadLayout("index too small for the record count"));
        }
        let index_len = self.slot_count() * self.entry_len();
        let mut expected_next = self.index_offsets[0];
        if expected_next < self.records_offset {
            return Err(FormatError::BadLayout("first index overlaps the header"));
        }
        for offset in &self.index_offsets[..count] {
            if *offset != expected_next {
                return Err(FormatError::BadLayout("indexes are not contiguous"));
            }
            expected_next = offset
                .checked_add(index_len)
                .ok_or(FormatError::BadLayout("index past the end"))?;
        }
        if expected_next != self.file_len {
            return Err(FormatError::BadLayout("indexes do not end the file"));
        }
        Ok(())
    }
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// One record to write: its JSON bytes and its key in each index.
pub struct RecordIn {
    pub json: Vec<u8>,
    pub keys: Vec<u64>,
}

/// Writes a complete table to `file` (which must be new and empty). Records are stored in
/// the order given; each index is sorted by key.
pub fn write_table(
    file: &mut File,
    kind: TableKind,
    generation: u64,
    index_count: usize,
    local_seal: u64,
    records: impl IntoIterator<Item = RecordIn>,
) -> Result<(), FormatError> {
    write_table_as(FORMAT_VERSION, file, kind, generation, index_count, local_seal, records)
}

/// [`write_table`] in an older readable `version`: for tests of upgrades.
#[doc(hidden)]
pub fn write_table_as(
    version: u32,
    file: &mut File,
    kind: TableKind,
    generation: u64,
    index_count: usize,
    local_seal: u64,
    records: impl IntoIterator<Item = RecordIn>,
) -> Result<(), FormatError> {
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    if index_count == 0 || index_count > MAX_INDEXES {
        return Err(FormatError::BadLayout("index count out of range"));
    }
    let mut out = BufWriter::new(&mut *file);
    out.write_all(&[0u8; HEADER_LEN as usize])?;
    let mut body_crc = crc32fast::Hasher::new();
    let records = records.into_iter();
    let mut entries = IndexEntries::new(index_count, records.size_hint().1.unwrap_or(0));
    let mut offset = HEADER_LEN;
    for record in records {
        if record.keys.len() != index_count {
            return Err(FormatError::BadLayout("a record has the wrong number of keys"));
        }
        let len = u32::try_from(record.json.len())
            .ok()
            .filter(|len| *len <= MAX_RECORD_LEN)
            .ok_or(FormatError::BadLayout("a record is too large"))?;
        let mut prefix = [0u8; RECORD_PREFIX_LEN as usize];
        prefix[0..4].copy_from_slice(&len.to_le_bytes());
        prefix[4..8].copy_from_slice(&checksum(&record.json).to_le_bytes());
        if version >= 2 && offset > u64::from(u32::MAX) {
            return Err(FormatError::BadLayout("the records of a table exceed 4 GiB"));
        }
        entries.push(&record.keys, offset);
        for chunk in [&prefix[..], &record.json[..]] {
            out.write_all(chunk)?;
            body_crc.update(chunk);
        }
        offset += RECORD_PREFIX_LEN + u64::from(len);
    }
    let record_count = entries.offsets.len() as u64;
    let (slots, slots_field) = if version == 1 {
        let bits = slot_bits_for(record_count);
        (1u64 << bits, bits)
    } else {
        let slots = min_slots(record_count);
        let field = u32::try_from(slots).map_err(|_| FormatError::BadLayout("too many records"))?;
        (slots, field)
    };
    let mut index_offsets = [0u64; MAX_INDEXES];
    for (i, keys) in entries.keys.iter().enumerate() {
        index_offsets[i] = offset;
        for slot in build_hash_index(keys, slots)? {
            let (key, record_offset) = entries.slot(keys, slot);
            let entry = encode_slot(version, key, record_offset);
            out.write_all(&entry)?;
            body_crc.update(&entry);
        }
        offset += slots * index_entry_len(version);
    }
    let header = Header {
        version,
        kind,
        generation,
        record_count,
        records_offset: HEADER_LEN,
        index_count: index_count as u32,
        slots_field,
        index_offsets,
        local_seal,
        file_len: offset,
        body_crc: body_crc.finalize(),
    };
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&header.encode())?;
    out.flush()?;
    Ok(())
}

/// Slots per index from version 2: 1.5 per record (at least 8). Linear probing at two thirds
/// full finds a key within 2 slots on average and a missing one within 5, inside the one
/// window of 8 a lookup reads; version 1's powers of two cost 2 to 4 slots per record.
fn min_slots(records: u64) -> u64 {
    records.saturating_add(records.div_ceil(2)).max(8)
}

/// Version 1: the smallest power of two that is at least twice `records` (and at least 8).
fn slot_bits_for(records: u64) -> u32 {
    let wanted = records.saturating_mul(2).max(8);
    64 - (wanted - 1).leading_zeros()
}

/// Spreads keys over slots; uids are sequential and name keys already hashed, both mixed.
fn slot_of(key: u64, slots: u64) -> u64 {
    let mut x = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    // For version 1's powers of two, the same slot as the mask it used.
    (x ^ (x >> 31)) % slots
}

/// Most records [`IndexEntries`] makes room for before the first is written.
const RESERVED_RECORDS: usize = 1 << 24;

/// What the indexes of a table are built from, gathered as its records are written: where
/// each record starts, and its key in each index. A commit writes a table of every user while
/// it holds all of them: as a (key, offset) pair per index and record, in vectors grown by
/// doubling, this took up to 64 bytes per user, now 8 per index and 8 more, sized once.
struct IndexEntries {
    offsets: Vec<u64>,
    /// One vector per index, in step with `offsets`.
    keys: Vec<Vec<u64>>,
}

impl IndexEntries {
    /// Room for `records` records: the writer's iterator's upper bound, exact for the
    /// commit's (room not written to is never made resident). Capped, as any iterator may
    /// be given: past the cap the vectors grow as they are filled.
    fn new(index_count: usize, records: usize) -> IndexEntries {
        let records = records.min(RESERVED_RECORDS);
        IndexEntries {
            offsets: Vec::with_capacity(records),
            keys: (0..index_count).map(|_| Vec::with_capacity(records)).collect(),
        }
    }

    /// The caller checked that `keys` has one key per index.
    fn push(&mut self, keys: &[u64], offset: u64) {
        self.offsets.push(offset);
        for (index, key) in self.keys.iter_mut().zip(keys) {
            index.push(*key);
        }
    }

    /// The (key, record offset) a slot of [`build_hash_index`] stands for, (0, 0) when empty.
    fn slot(&self, keys: &[u64], slot: u32) -> (u64, u64) {
        match (slot as usize).checked_sub(1) {
            Some(at) => (keys[at], self.offsets[at]),
            None => (0, 0),
        }
    }
}

/// The slots of one index: each the position of its record plus one, 0 when empty; 4 bytes
/// a slot instead of a (key, offset) pair of 16, as the slots of every user's index are held
/// beside every user.
fn build_hash_index(keys: &[u64], count: u64) -> Result<Vec<u32>, FormatError> {
    let mut slots = vec![0u32; count as usize];
    for (at, key) in keys.iter().enumerate() {
        let position =
            u32::try_from(at + 1).map_err(|_| FormatError::BadLayout("too many records"))?;
        let mut slot = slot_of(*key, count);
        while slots[slot as usize] != 0 {
            slot = (slot + 1) % count;
        }
        slots[slot as usize] = position;
    }
    Ok(slots)
}

/// One slot as `version` lays it out (the writer checked that offsets fit).
fn encode_slot(version: u32, key: u64, record_offset: u64) -> Vec<u8> {
    let mut entry = Vec::with_capacity(MAX_INDEX_ENTRY_LEN as usize);
    entry.extend_from_slice(&key.to_le_bytes());
    if version == 1 {
        entry.extend_from_slice(&record_offset.to_le_bytes());
    } else {
        entry.extend_from_slice(&(record_offset as u32).to_le_bytes());
    }
    let entry_crc = checksum(&entry);
    entry.extend_from_slice(&entry_crc.to_le_bytes());
    entry.resize(index_entry_len(version) as usize, 0);
    entry
}

/// The (key, record offset) of a slot whose checksum holds, in `version`'s layout.
fn decode_slot(version: u32, raw: &[u8]) -> Option<(u64, u64)> {
    let covered = if version == 1 { 16 } else { 12 };
    if checksum(&raw[0..covered]) != le_u32(raw, covered) {
        return None;
    }
    let offset = if version == 1 { le_u64(raw, 8) } else { u64::from(le_u32(raw, 8)) };
    Some((le_u64(raw, 0), offset))
}

/// How many slots one read of an index fetches.
const PROBE_WINDOW: u64 = 8;
/// Most records one key may have. Names are unique (case-folded) and ids too, so only a
/// 64-bit hash collision puts two records under one key; many more is a crafted file whose
/// slots all point at one large record, which must not make a lookup allocate without bound.
const MAX_MATCHES: usize = 16;

/// Reads one table. Opening checks the header, the layout and the file length; each record
/// read checks that record's checksum.
pub struct TableReader<S> {
    source: S,
    header: Header,
}

impl<S: ByteSource> TableReader<S> {
    pub fn open(source: S, kind: TableKind) -> Result<Self, FormatError> {
        let actual = source.size()?;
        if actual < HEADER_LEN {
            return Err(FormatError::LengthMismatch { expected: HEADER_LEN, actual });
        }
        let mut raw = [0u8; HEADER_LEN as usize];
        source.read_exact_at(&mut raw, 0)?;
        let header = Header::decode(&raw, kind)?;
        if header.file_len != actual {
            return Err(FormatError::LengthMismatch { expected: header.file_len, actual });
        }
        header.check_layout()?;
        Ok(TableReader { source, header })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    pub fn len(&self) -> u64 {
        self.header.record_count
    }

    pub fn is_empty(&self) -> bool {
        self.header.record_count == 0
    }

    /// Every record whose key in `index` equals `key` (several when keys collide): what
    /// [`TableReader::find`] goes through, for the tests of the format.
    #[cfg(test)]
    pub fn lookup(&self, index: usize, key: u64) -> Result<Vec<Vec<u8>>, FormatError> {
        let mut found = Vec::new();
        self.find(
            index,
            key,
            |e| e,
            |record| {
                found.push(record);
                Ok(None::<()>)
            },
        )?;
        Ok(found)
    }

    /// The first record under `key` in `index` that `accept` takes, in the order
    /// [`TableReader::lookup`] lists them: the search ends there, without reading the slots
    /// after the answer (a process's first lookup reads one window of slots, not three).
    /// Errors of the file become `E` through `corrupt`.
    pub fn find<V, E>(
        &self,
        index: usize,
        key: u64,
        corrupt: impl Fn(FormatError) -> E,
        mut accept: impl FnMut(Vec<u8>) -> Result<Option<V>, E>,
    ) -> Result<Option<V>, E> {
        if index >= self.header.index_count as usize {
            return Err(corrupt(FormatError::BadLayout("no such index")));
        }
        let slots = self.header.slot_count();
        let mut slot = slot_of(key, slots);
        let mut matches = 0;
        let mut probed = 0u64;
        let mut window = [0u8; (PROBE_WINDOW * MAX_INDEX_ENTRY_LEN) as usize];
        let (version, entry_len) = (self.header.version, self.header.entry_len());
        while probed < slots {
            let count = PROBE_WINDOW.min(slots - slot);
            let bytes = &mut window[..(count * entry_len) as usize];
            let at = self.header.index_offsets[index] + slot * entry_len;
            self.source.read_exact_at(bytes, at).map_err(|e| corrupt(e.into()))?;
            for (i, raw) in bytes.chunks_exact(entry_len as usize).enumerate() {
                let Some((entry_key, offset)) = decode_slot(version, raw) else {
                    return Err(corrupt(FormatError::BadIndex {
                        index,
                        position: slot + i as u64,
                    }));
                };
                if offset == 0 {
                    return Ok(None);
                }
                if entry_key != key {
                    continue;
                }
                if matches >= MAX_MATCHES {
                    return Err(corrupt(FormatError::BadLayout("too many records under one key")));
                }
                matches += 1;
                if let Some(answer) = accept(self.read_record(offset).map_err(&corrupt)?)? {
                    return Ok(Some(answer));
                }
            }
            probed += count;
            slot = (slot + count) % slots;
        }
        // A full table cannot be written (slots >= 2 x records): corruption.
        Err(corrupt(FormatError::BadLayout("index has no empty slot")))
    }

    /// The record starting at `cursor` and the cursor of the one after it, for enumeration
    /// in file order; `None` at the end. Start with [`TableReader::first_cursor`].
    pub fn record_after(&self, cursor: u64) -> Result<Option<(Vec<u8>, u64)>, FormatError> {
        if cursor >= self.header.index_offsets[0] {
            return Ok(None);
        }
        let json = self.read_record(cursor)?;
        let next = cursor + RECORD_PREFIX_LEN + json.len() as u64;
        Ok(Some((json, next)))
    }

    pub fn first_cursor(&self) -> u64 {
        self.header.records_offset
    }

    /// The record at `offset`, its checksum verified.
    pub fn record_at(&self, offset: u64) -> Result<Vec<u8>, FormatError> {
        // In a buffer of its own size: the records of a whole table may be kept at once.
        self.read_record(offset).map(|bytes| bytes.as_slice().to_vec())
    }

    /// The record at `offset`, in the buffer it was read into (which may be larger): for
    /// lookups and enumeration, whose callers decode it at once.
    fn read_record(&self, offset: u64) -> Result<Vec<u8>, FormatError> {
        let records_end = self.header.index_offsets[0];
        let bad = |reason: &str| FormatError::BadRecord { offset, reason: reason.to_string() };
        if offset < self.header.records_offset
            || offset > records_end.saturating_sub(RECORD_PREFIX_LEN)
        {
            return Err(bad("offset outside the record area"));
        }
        // One read usually covers prefix and record; a longer record takes a second.
        let room = records_end - offset - RECORD_PREFIX_LEN;
        let first = (RECORD_PREFIX_LEN + room).min(RECORD_GUESS_LEN) as usize;
        let mut bytes = vec![0u8; first];
        self.source.read_exact_at(&mut bytes, offset)?;
        let len = le_u32(&bytes, 0);
        if len > MAX_RECORD_LEN || u64::from(len) > room {
            return Err(bad("length runs past the record area"));
        }
        let expected_crc = le_u32(&bytes, 4);
        let total = RECORD_PREFIX_LEN as usize + len as usize;
        if total > bytes.len() {
            let have = bytes.len();
            bytes.resize(total, 0);
            self.source.read_exact_at(&mut bytes[have..], offset + have as u64)?;
        }
        bytes.truncate(total);
        bytes.drain(..RECORD_PREFIX_LEN as usize);
        if checksum(&bytes) != expected_crc {
            return Err(bad("checksum mismatch"));
        }
        Ok(bytes)
    }

    /// All records in file order, after checking the whole-file checksum.
    pub fn read_all(&self) -> Result<Vec<Vec<u8>>, FormatError> {
        self.verify_body()?;
        let mut records = Vec::with_capacity(self.header.record_count as usize);
        let mut offset = self.header.records_offset;
        while offset < self.header.index_offsets[0] {
            let json = self.record_at(offset)?;
            offset += RECORD_PREFIX_LEN + json.len() as u64;
            records.push(json);
        }
        if records.len() as u64 != self.header.record_count {
            return Err(FormatError::BadLayout("record count does not match the records"));
        }
        Ok(records)
    }

    /// Checks the checksum over everything after the header.
    pub fn verify_body(&self) -> Result<(), FormatError> {
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = HEADER_LEN;
        while offset < self.header.file_len {
            let chunk = (self.header.file_len - offset).min(buf.len() as u64) as usize;
            self.source.read_exact_at(&mut buf[..chunk], offset)?;
            crc.update(&buf[..chunk]);
            offset += chunk as u64;
        }
        if crc.finalize() != self.header.body_crc {
            return Err(FormatError::BodyChecksum);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
