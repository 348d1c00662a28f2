//! The cache table reader over arbitrary bytes, as the NSS module uses it (a `&[u8]`
//! `ByteSource`, like its memory map): `TableReader` and the typed `Lookup` for each table
//! kind. Every input must give records or a "corrupt" error: no panic, no hang, no huge
//! allocation. The first byte picks the table kind and whether the checksums are repaired
//! first (without that, random bytes rarely get past the header checksum); answers must match
//! what was asked for.
#![no_main]

use std::path::PathBuf;

use dircache::cache::format::{TableKind, TableReader};
use dircache::cache::{CacheRecord, Lookup, PublicUser};
use dircache::names::same_name;
use dircache::user::{Group, User};
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = 96;

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Makes the bytes pass the checksums, the magic, the version and the length check, so that
/// the fuzzer explores the layout, index and record logic behind them.
fn repair(file: &mut Vec<u8>, kind: TableKind) {
    if file.len() < HEADER_LEN {
        file.resize(HEADER_LEN, 0);
    }
    file[0..8].copy_from_slice(b"DIRCACHE");
    file[8..12].copy_from_slice(&1u32.to_le_bytes());
    if file[12] & 0x80 == 0 {
        file[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    }
    let len = file.len();
    let records_end = usize::try_from(le_u64(file, 48)).unwrap_or(len).min(len);
    let mut offset = HEADER_LEN;
    while offset + 8 <= records_end {
        let record_len = le_u32(file, offset) as usize;
        let Some(end) = (offset + 8).checked_add(record_len).filter(|end| *end <= records_end)
        else {
            break;
        };
        let crc = crc32(&file[offset + 8..end]);
        file[offset + 4..offset + 8].copy_from_slice(&crc.to_le_bytes());
        offset = end;
    }
    let index_count = (le_u32(file, 40) as usize).min(4);
    // Version 1: 2^field slots of 24 bytes (crc over 16); version 2: field slots of 16
    // bytes (crc over 12).
    let (slots, entry, covered) = if le_u32(file, 8) == 1 {
        (1usize << le_u32(file, 44).min(20), 24, 16)
    } else {
        ((le_u32(file, 44) as usize).min(1 << 20), 16, 12)
    };
    for index in 0..index_count {
        let start = usize::try_from(le_u64(file, 48 + index * 8)).unwrap_or(len);
        for slot in 0..slots {
            let at = start.saturating_add(slot * entry);
            if at.saturating_add(entry) > len {
                break;
            }
            let crc = crc32(&file[at..at + covered]);
            file[at + covered..at + covered + 4].copy_from_slice(&crc.to_le_bytes());
        }
    }
    file[80..88].copy_from_slice(&(len as u64).to_le_bytes());
    let body = crc32(&file[HEADER_LEN..]);
    file[88..92].copy_from_slice(&body.to_le_bytes());
    let header = crc32(&file[0..92]);
    file[92..96].copy_from_slice(&header.to_le_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), the same as crc32fast; the fuzz inputs are small.
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Lookups, enumeration and the full read through the typed reader of one record type.
fn typed<T: CacheRecord>(file: &[u8], names: &[&str], ids: &[u32]) {
    let Ok(lookup) = Lookup::<T, &[u8]>::from_source(PathBuf::from("/fuzz/table"), file) else {
        return;
    };
    for name in names {
        if let Ok(Some(record)) = lookup.by_name(name) {
            assert!(same_name(record.name(), name), "by_name({name:?}) gave {:?}", record.name());
        }
    }
    for id in ids {
        if let Ok(Some(record)) = lookup.by_id(*id) {
            assert_eq!(record.id(), *id, "by_id gave another id");
        }
    }
    let mut cursor = lookup.first_cursor();
    let mut steps = 0u64;
    while let Ok(Some((_, next))) = lookup.next(cursor) {
        assert!(next > cursor, "enumeration does not advance");
        cursor = next;
        steps += 1;
        assert!(steps <= file.len() as u64, "more records than bytes");
    }
    if let Ok(all) = lookup.read_all() {
        assert_eq!(all.len() as u64, lookup.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let kind = match (mode >> 1) % 3 {
        0 => TableKind::PublicUsers,
        1 => TableKind::PrivateUsers,
        _ => TableKind::Groups,
    };
    let mut file = rest.to_vec();
    if mode & 1 == 1 {
        repair(&mut file, kind);
    }
    let file = &file[..];

    if let Ok(table) = TableReader::open(file, kind) {
        let keys = [0, 1, 200_001, u64::from(u32::MAX), table.len(), le_u64_or_zero(file)];
        for index in 0..5 {
            for key in keys {
                let _ = table.lookup(index, key);
            }
        }
        let _ = table.read_all();
        let _ = table.record_after(table.first_cursor());
    }

    let names = ["alice", "root", "Alice@Example.com", "", "\u{0130}"];
    let ids = [0, 1, 200_001, 65_534, u32::MAX];
    match kind {
        TableKind::PublicUsers => typed::<PublicUser>(file, &names, &ids),
        TableKind::PrivateUsers => typed::<User>(file, &names, &ids),
        TableKind::Groups => typed::<Group>(file, &names, &ids),
    }
});

fn le_u64_or_zero(file: &[u8]) -> u64 {
    if file.len() >= 8 {
        le_u64(file, file.len() - 8)
    } else {
        0
    }
}
