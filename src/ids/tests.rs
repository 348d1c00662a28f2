use super::*;

#[test]
fn reserved_ranges() {
    for id in [0, 999, 61184, 65519, 65534, 65535, u32::MAX] {
        assert!(is_reserved(id), "{id}");
    }
    for id in [1000, 61183, 65520, 65533, 65536, 200_000] {
        assert!(!is_reserved(id), "{id}");
    }
}

#[test]
fn same_seed_same_id_and_collisions_move_on() {
    let mut a = IdAllocator::new([200_000, 299_999], [], []);
    let mut b = IdAllocator::new([200_000, 299_999], [], []);
    let id = a.allocate("manual:alice").unwrap();
    assert_eq!(b.allocate("manual:alice").unwrap(), id);
    assert!((200_000..=299_999).contains(&id));
    let mut c = IdAllocator::new([200_000, 299_999], [id], []);
    let moved = c.allocate("manual:alice").unwrap();
    assert_ne!(moved, id);
}

#[test]
fn never_hands_out_reserved_or_taken_ids_and_reports_exhaustion() {
    // 65534 is reserved and 65535 taken: only 65533 is free.
    let mut alloc = IdAllocator::new([65533, 65535], [65535], []);
    assert_eq!(alloc.allocate("first"), Ok(65533));
    assert_eq!(alloc.allocate("second"), Err(IdsExhausted { low: 65533, high: 65535 }));
}

/// What `allocate` must find: the first free id of an id-by-id walk from the hash slot.
fn walk(range: [u32; 2], taken: &[u32], excluded: &[RangeInclusive<u32>], seed: &str) -> u32 {
    let span = u64::from(range[1] - range[0]) + 1;
    let start = stable_hash(seed) % span;
    (0..span)
        .map(|step| range[0] + ((start + step) % span) as u32)
        .find(|id| {
            !is_reserved(*id)
                && !taken.contains(id)
                && !excluded.iter().any(|range| range.contains(id))
        })
        .unwrap()
}

#[test]
fn ids_without_excluded_ranges_stay_what_they_were() {
    // Pinned: hosts that synced before subordinate ids were excluded keep agreeing
    // with hosts that sync after.
    let mut alloc = IdAllocator::new([200_000, 299_999], [], []);
    assert_eq!(alloc.allocate("manual:alice"), Ok(274_349));
    assert_eq!(alloc.allocate("icewarp:bob@example.com"), Ok(282_646));
    // Ranges outside uid_range change nothing either.
    let mut alloc = IdAllocator::new([200_000, 299_999], [], [100_000..=165_535]);
    assert_eq!(alloc.allocate("manual:alice"), Ok(274_349));
}

#[test]
fn subordinate_ranges_are_never_handed_out() {
    let range = [200_000, 299_999];
    // useradd's ranges of the 2nd and 3rd local users; alice's slot, 274349, is in the
    // 3rd: she gets the first id after it.
    let subs = [165_536..=231_071, 231_072..=296_607];
    let mut alloc = IdAllocator::new(range, [], subs.clone());
    assert_eq!(alloc.allocate("manual:alice"), Ok(296_608));
    // Overlapping ranges and a taken id right after them are stepped over alike; past
    // the end of uid_range the walk wraps to its start.
    let subs = [274_000..=280_000, 279_000..=299_998];
    let mut alloc = IdAllocator::new(range, [299_999], subs);
    assert_eq!(alloc.allocate("manual:alice"), Ok(200_000));
}

#[test]
fn skipping_ranges_finds_what_an_id_by_id_walk_finds() {
    let range = [200_000, 299_999];
    let subs = [
        100_000..=165_535,
        165_536..=231_071,
        231_072..=296_607,
        299_990..=u32::MAX,
        0..=199_999,
        RangeInclusive::new(250_000, 249_999), // empty
    ];
    for n in 0..200 {
        let seed = format!("icewarp:user{n}@example.com");
        let excluded = &subs[n % subs.len()..];
        let taken = [296_608, 296_609, 299_989];
        let mut alloc = IdAllocator::new(range, taken, excluded.iter().cloned());
        assert_eq!(alloc.allocate(&seed), Ok(walk(range, &taken, excluded, &seed)), "{seed}");
    }
}

#[test]
fn a_range_past_the_end_wraps_and_a_covered_range_is_exhausted() {
    let range = [200_000, 200_099];
    let mut alloc = IdAllocator::new(range, [200_000], [200_010..=u32::MAX]);
    let ids: Vec<u32> = (0..9).map(|n| alloc.allocate(&n.to_string()).unwrap()).collect();
    assert!(ids.iter().all(|id| (200_001..=200_009).contains(id)), "{ids:?}");
    assert_eq!(alloc.allocate("tenth"), Err(IdsExhausted { low: 200_000, high: 200_099 }));
    let mut covered = IdAllocator::new(range, [], [100_000..=165_535, 165_536..=231_071]);
    assert_eq!(covered.allocate("x"), Err(IdsExhausted { low: 200_000, high: 200_099 }));
}

#[test]
fn a_full_range_is_found_at_once_and_reserving_counts() {
    let range = [300_000, 300_009];
    let mut alloc = IdAllocator::new(range, [300_003, 1, u32::MAX - 1], []);
    alloc.reserve(300_005);
    alloc.reserve(300_005); // twice is once
    alloc.reserve(7); // outside: nothing
    let mut ids: Vec<u32> = (0..8).map(|n| alloc.allocate(&n.to_string()).unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [300_000, 300_001, 300_002, 300_004, 300_006, 300_007, 300_008, 300_009]);
    for seed in ["a", "b"] {
        assert_eq!(alloc.allocate(seed), Err(IdsExhausted { low: 300_000, high: 300_009 }));
    }
    let message = IdsExhausted { low: 1, high: 2 }.to_string();
    assert!(message.contains("unix.uid_range [1, 2]"), "{message}");
}

#[test]
fn filling_a_range_gives_what_id_by_id_walks_give() {
    // Every allocation, up to the last free id, is the walk's: the same ids as before
    // runs were kept, so hosts on either version agree.
    let range = [200_000, 200_499];
    let excluded = [200_100..=200_199, 200_480..=200_490];
    let mut taken = vec![200_000, 200_499, 200_250];
    let mut alloc = IdAllocator::new(range, taken.clone(), excluded.iter().cloned());
    for n in 0..386 {
        let seed = format!("group:{n}");
        let expected = walk(range, &taken, &excluded, &seed);
        assert_eq!(alloc.allocate(&seed), Ok(expected), "{seed}");
        taken.push(expected);
    }
    assert!(alloc.allocate("one more").is_err());
}
