use super::*;

fn records(n: u64) -> Vec<RecordIn> {
    (0..n)
        .map(|i| RecordIn {
            json: format!("{{\"n\":{i}}}").into_bytes(),
            keys: vec![i * 7 % 101, 1000 + i],
        })
        .collect()
}

fn table_bytes(n: u64) -> Vec<u8> {
    let mut file = tempfile::tempfile().unwrap();
    write_table(&mut file, TableKind::PublicUsers, 42, 2, 0, records(n)).unwrap();
    let mut bytes = Vec::new();
    use std::io::Read;
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn round_trip_lookup_and_full_read() {
    let bytes = table_bytes(50);
    let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
    assert_eq!(table.generation(), 42);
    assert_eq!(table.len(), 50);
    assert_eq!(table.lookup(1, 1007).unwrap(), vec![b"{\"n\":7}".to_vec()]);
    assert_eq!(table.lookup(0, 49).unwrap().len(), 1);
    assert!(table.lookup(1, 999).unwrap().is_empty());
    assert!(table.lookup(1, 5000).unwrap().is_empty());
    assert_eq!(table.read_all().unwrap().len(), 50);
}

#[test]
fn colliding_keys_return_every_record() {
    let mut file = tempfile::tempfile().unwrap();
    let same_key = (0..3).map(|i| RecordIn { json: vec![b'0' + i], keys: vec![9] });
    write_table(&mut file, TableKind::Groups, 1, 1, 0, same_key).unwrap();
    let table = TableReader::open(file, TableKind::Groups).unwrap();
    assert_eq!(table.lookup(0, 9).unwrap().len(), 3);
}

/// A source that counts its reads.
struct Counted<'a>(&'a [u8], std::cell::Cell<usize>);

impl ByteSource for Counted<'_> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.1.set(self.1.get() + 1);
        ByteSource::read_exact_at(self.0, buf, offset)
    }
}

#[test]
fn find_answers_the_first_accepted_record_in_lookup_order_and_reads_no_further() {
    let mut file = tempfile::tempfile().unwrap();
    // Six records under one key: their slots make one run of at least six.
    let same_key = (0..6).map(|i| RecordIn { json: vec![b'0' + i], keys: vec![9] });
    write_table(&mut file, TableKind::Groups, 1, 1, 0, same_key).unwrap();
    let mut bytes = Vec::new();
    use std::io::Read;
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    let table = TableReader::open(Counted(&bytes, Default::default()), TableKind::Groups).unwrap();
    table.source.1.set(0);
    let listed = table.lookup(0, 9).unwrap();
    let listing_reads = table.source.1.get();
    assert_eq!(listed.len(), 6);
    let mut reads = Vec::new();
    for wanted in &listed {
        table.source.1.set(0);
        let found = table.find(0, 9, |e| e, |record| Ok((&record == wanted).then_some(record)));
        assert_eq!(found.unwrap().as_ref(), Some(wanted));
        reads.push(table.source.1.get());
    }
    // A window of slots (two if the run wraps around) and a read per record up to the answer.
    assert!(reads[0] <= 3 && reads[0] < listing_reads, "{reads:?} vs {listing_reads}");
    assert!(reads.windows(2).all(|w| w[0] < w[1]), "{reads:?}");
    assert_eq!(table.find(0, 9, |e| e, |_| Ok(None::<()>)).unwrap(), None);
    assert_eq!(table.find(0, 10, |e| e, |_| Ok(Some(()))).unwrap(), None);
}

#[test]
fn many_slots_pointing_at_one_large_record_are_refused_not_copied() {
    // A crafted table: one 1 MiB record and 100 index slots that all carry its key and
    // checksums, which a lookup would otherwise copy 100 times (with 2^20 slots: 1 TiB).
    let mut file = tempfile::tempfile().unwrap();
    let big = RecordIn { json: vec![b'x'; 1 << 20], keys: vec![7] };
    write_table(&mut file, TableKind::Groups, 1, 1, 0, [big]).unwrap();
    let mut bytes = Vec::new();
    use std::io::Read;
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    let mut raw = [0u8; HEADER_LEN as usize];
    raw.copy_from_slice(&bytes[..HEADER_LEN as usize]);
    let mut header = Header::decode(&raw, TableKind::Groups).unwrap();
    let index_at = header.index_offsets[0] as usize;
    bytes.truncate(index_at);
    header.slots_field = 128;
    let start = slot_of(7, 128);
    for slot in 0..128u64 {
        let offset = if (slot + 128 - start) % 128 < 100 { HEADER_LEN } else { 0 };
        bytes.extend_from_slice(&encode_slot(FORMAT_VERSION, 7, offset));
    }
    header.file_len = bytes.len() as u64;
    header.body_crc = crc32fast::hash(&bytes[HEADER_LEN as usize..]);
    bytes[..HEADER_LEN as usize].copy_from_slice(&header.encode());
    let table = TableReader::open(&bytes[..], TableKind::Groups).unwrap();
    match table.lookup(0, 7) {
        Err(err) => assert!(err.to_string().contains("too many records under one key")),
        Ok(found) => panic!("{} copies of the record", found.len()),
    }
}

#[test]
fn empty_table_is_valid() {
    let bytes = table_bytes(0);
    let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
    assert!(table.is_empty());
    assert!(table.lookup(0, 1).unwrap().is_empty());
}

#[test]
fn truncation_is_detected() {
    let bytes = table_bytes(20);
    for cut in [0, 10, 95, 96, bytes.len() / 2, bytes.len() - 1] {
        let err = TableReader::open(&bytes[..cut], TableKind::PublicUsers).err();
        assert!(matches!(err, Some(FormatError::LengthMismatch { .. })), "cut {cut}: {err:?}");
    }
}

#[test]
fn header_corruption_is_detected() {
    let mut bytes = table_bytes(5);
    bytes[20] ^= 1;
    let err = TableReader::open(&bytes[..], TableKind::PublicUsers).err();
    assert!(matches!(err, Some(FormatError::HeaderChecksum)), "{err:?}");
}

#[test]
fn wrong_magic_version_and_kind_are_refused() {
    let bytes = table_bytes(1);
    let err = TableReader::open(&bytes[..], TableKind::PrivateUsers).err();
    assert!(matches!(err, Some(FormatError::WrongKind { found: 1, .. })), "{err:?}");
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(
        TableReader::open(&bad[..], TableKind::PublicUsers).err(),
        Some(FormatError::BadMagic)
    ));
    let mut newer = bytes;
    newer[8] = 3;
    let err = TableReader::open(&newer[..], TableKind::PublicUsers).err().unwrap();
    assert!(err.to_string().contains("version 3"), "{err}");
}

#[test]
fn record_corruption_is_detected_on_lookup_and_full_read() {
    let mut bytes = table_bytes(10);
    // Flip a byte inside the JSON of the first record.
    bytes[HEADER_LEN as usize + RECORD_PREFIX_LEN as usize + 2] ^= 0x20;
    let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
    assert!(matches!(table.lookup(1, 1000), Err(FormatError::BadRecord { .. })));
    assert!(matches!(table.read_all(), Err(FormatError::BodyChecksum)));
}

#[test]
fn index_corruption_is_detected() {
    let bytes = table_bytes(10);
    let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
    let slot = slot_of(1000, table.header().slot_count()) as usize;
    let slot_at = table.header().index_offsets[1] as usize + slot * 16;
    for byte in [slot_at, slot_at + 9, slot_at + 13] {
        let mut bad = bytes.clone();
        bad[byte] ^= 0x01;
        let table = TableReader::open(&bad[..], TableKind::PublicUsers).unwrap();
        let err = table.lookup(1, 1000).err();
        assert!(matches!(err, Some(FormatError::BadIndex { index: 1, .. })), "{err:?}");
    }
}

#[test]
fn enumeration_visits_every_record_in_order() {
    let bytes = table_bytes(30);
    let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
    let mut cursor = table.first_cursor();
    let mut seen = Vec::new();
    while let Some((json, next)) = table.record_after(cursor).unwrap() {
        seen.push(String::from_utf8(json).unwrap());
        cursor = next;
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(seen[29], "{\"n\":29}");
}

#[test]
fn long_records_are_read_whole() {
    let mut file = tempfile::tempfile().unwrap();
    let long = RecordIn { json: vec![b'x'; 5000], keys: vec![1] };
    write_table(&mut file, TableKind::Groups, 1, 1, 0, [long]).unwrap();
    let table = TableReader::open(file, TableKind::Groups).unwrap();
    assert_eq!(table.lookup(0, 1).unwrap()[0].len(), 5000);
}

#[test]
fn slot_sizes() {
    assert_eq!(slot_bits_for(0), 3);
    assert_eq!(slot_bits_for(4), 3);
    assert_eq!(slot_bits_for(5), 4);
    assert_eq!(slot_bits_for(1_000_000), 21);
    assert_eq!((min_slots(0), min_slots(5), min_slots(6), min_slots(7)), (8, 8, 9, 11));
    assert_eq!(min_slots(1_000_000), 1_500_000);
}

#[test]
fn the_table_checksum_is_crc32_as_crc32fast_computes_it() {
    // The check value of CRC-32/ISO-HDLC.
    assert_eq!(checksum(b"123456789"), 0xCBF4_3926);
    let bytes: Vec<u8> =
        (0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for len in [0, 1, 15, 16, 92, 255, 1023, 1024, 1025, 3000] {
        assert_eq!(checksum(&bytes[..len]), crc32fast::hash(&bytes[..len]), "{len} bytes");
    }
    // Both ways of the tables' range, every length and start (eight bytes a step, then the
    // rest one by one).
    for start in 0..9 {
        for len in 0..300 {
            let piece = &bytes[start..start + len];
            let crc = crc32fast::hash(piece);
            assert_eq!(crc_bytewise(piece), crc, "bytewise, start {start} len {len}");
            assert_eq!(crc_sliced(piece), crc, "sliced, start {start} len {len}");
        }
    }
}

/// `table_bytes` in `version`.
fn table_bytes_as(version: u32, n: u64) -> Vec<u8> {
    let mut file = tempfile::tempfile().unwrap();
    write_table_as(version, &mut file, TableKind::PublicUsers, 42, 2, 0, records(n)).unwrap();
    let mut bytes = Vec::new();
    use std::io::Read;
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn version_1_tables_are_still_read_and_version_2_slots_are_two_thirds_of_them() {
    let (old, new) = (table_bytes_as(1, 1000), table_bytes(1000));
    for bytes in [&old, &new] {
        let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
        assert_eq!(table.lookup(1, 1007).unwrap(), vec![b"{\"n\":7}".to_vec()]);
        assert!(table.lookup(0, 500).unwrap().is_empty());
        assert_eq!(table.lookup(0, 100).unwrap().len(), 10);
        assert_eq!(table.read_all().unwrap().len(), 1000);
    }
    let version = |bytes: &[u8]| le_u32(bytes, 8);
    assert_eq!((version(&old), version(&new)), (1, 2));
    // 2 indexes of 2048 slots of 24 bytes before, of 1500 slots of 16 bytes now.
    assert_eq!(old.len() - new.len(), 2 * (2048 * 24 - 1500 * 16));
    // A corrupt old slot is caught as before.
    let table = TableReader::open(&old[..], TableKind::PublicUsers).unwrap();
    let slot = slot_of(1007, table.header().slot_count()) as usize;
    let mut bad = old.clone();
    bad[table.header().index_offsets[1] as usize + slot * 24 + 17] ^= 1;
    let table = TableReader::open(&bad[..], TableKind::PublicUsers).unwrap();
    assert!(matches!(table.lookup(1, 1007), Err(FormatError::BadIndex { .. })));
}

#[test]
fn the_local_seal_is_kept_in_bytes_72_to_80_where_version_2_readers_ignore_it() {
    let mut file = tempfile::tempfile().unwrap();
    let seal = 0x0123_4567_89ab_cdef_u64;
    write_table(&mut file, TableKind::PublicUsers, 42, 2, seal, records(20)).unwrap();
    let mut bytes = Vec::new();
    use std::io::Read;
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    let table = TableReader::open(&bytes[..], TableKind::PublicUsers).unwrap();
    assert_eq!(table.header().local_seal, seal);
    // Where a version 2 reader without the seal read a fourth index offset, unused by a
    // table of two indexes: the same file, with and without a seal, differs only there
    // (and in the header checksum).
    let unsealed = table_bytes(20);
    let differing: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != unsealed[i]).collect();
    assert!(
        differing.iter().all(|i| (72..80).contains(i) || (92..96).contains(i)),
        "{differing:?}"
    );
    assert_eq!(le_u64(&bytes, 72), seal);
    assert_eq!(
        TableReader::open(&unsealed[..], TableKind::PublicUsers).unwrap().header().local_seal,
        0
    );
}

#[test]
fn the_bytes_written_are_those_of_the_writer_before_its_index_entries_were_compacted() {
    // Checksums of tables written before `IndexEntries` and the 4-byte slots (keys that
    // collide, in both versions); the layout on disk must not move.
    assert_eq!(crc32fast::hash(&table_bytes(1000)), GOLDEN_V2);
    assert_eq!(crc32fast::hash(&table_bytes_as(1, 1000)), GOLDEN_V1);
}

const GOLDEN_V2: u32 = 663_260_161;
const GOLDEN_V1: u32 = 2_433_001_242;

#[test]
fn hash_slots_hold_each_position_once_probing_past_collisions() {
    let keys = [5, 5, 5, 9, 12];
    let count = 8;
    let slots = build_hash_index(&keys, count).unwrap();
    let mut positions: Vec<u32> = slots.iter().copied().filter(|at| *at != 0).collect();
    positions.sort_unstable();
    assert_eq!(positions, [1, 2, 3, 4, 5]);
    // The three records of key 5 follow each other from its slot, in order (wrapping).
    let home = slot_of(5, count);
    let of_five: Vec<u32> = (0..3).map(|step| slots[((home + step) % count) as usize]).collect();
    assert_eq!(of_five, [1, 2, 3]);
    let mut entries = IndexEntries::new(1, 0);
    for (at, key) in keys.iter().enumerate() {
        entries.push(&[*key], 100 + at as u64);
    }
    assert_eq!(entries.slot(&entries.keys[0], 4), (9, 103));
    assert_eq!(entries.slot(&entries.keys[0], 0), (0, 0));
}

#[test]
fn index_entries_reserve_at_most_the_cap_whatever_bound_the_records_give() {
    let entries = IndexEntries::new(2, usize::MAX);
    assert_eq!(entries.offsets.capacity(), RESERVED_RECORDS);
    assert!(entries.keys.iter().all(|keys| keys.capacity() == RESERVED_RECORDS));
    assert_eq!(IndexEntries::new(1, 3).offsets.capacity(), 3);
}
