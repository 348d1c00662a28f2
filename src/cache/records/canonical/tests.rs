use super::*;

/// serde_json's reading of `json`, the reference the canonical reader must agree with.
fn by_serde(json: &[u8]) -> Option<PublicUser> {
    serde_json::from_slice(json).ok()
}

/// What a lookup reads: the canonical reader, else serde_json.
fn read(json: &[u8]) -> Option<PublicUser> {
    decode(json).or_else(|| by_serde(json))
}

fn user(name: &str, gids: Vec<u32>, expires_day: Option<i64>) -> PublicUser {
    PublicUser {
        name: name.into(),
        uid: 1_879_048_200,
        gid: 0,
        gecos: "Ann Ö. Müller,,,".into(),
        home: "/home/ann".into(),
        shell: "/bin/bash".into(),
        gids,
        expires_day,
    }
}

#[test]
fn every_record_the_writer_produces_without_escapes_is_read_here() {
    let users = [
        user("ann@example.com", vec![], None),
        user("ann", vec![0, 7, 4_294_967_295], Some(20_000)),
        user("ann", vec![1], Some(0)),
        user("ann", vec![1], Some(-3)),
        user("", vec![], Some(i64::MAX)),
        PublicUser { uid: u32::MAX, gid: 10, ..user("日本", vec![2, 3], None) },
    ];
    for user in users {
        let json = serde_json::to_vec(&user).unwrap();
        assert_eq!(decode(&json), Some(user), "{}", String::from_utf8_lossy(&json));
    }
}

#[test]
fn records_it_does_not_take_are_left_to_serde_and_read_the_same() {
    let escaped = PublicUser { gecos: "Ann \"A\" \\ \u{1}".into(), ..user("ann", vec![], None) };
    let escaped_json = serde_json::to_vec(&escaped).unwrap();
    let cases: [&[u8]; 6] = [
        &escaped_json,
        br#"{"name":"ann","uid":1,"gid":2,"gecos":"","home":"/","shell":"/bin/sh"}"#,
        br#"["ann",1,2,"","/","/bin/sh"]"#,
        br#" ["ann",1,2,"","/","/bin/sh",[]] "#,
        br#"["ann",1,2,"","/","/bin/sh",[],null]"#,
        br#"["ann",1,2,"","/","/bin/sh",[ 3 ]]"#,
    ];
    for json in cases {
        assert_eq!(decode(json), None, "{}", String::from_utf8_lossy(json));
        assert!(read(json).is_some(), "{}", String::from_utf8_lossy(json));
    }
    assert_eq!(read(&escaped_json), Some(escaped));
}

#[test]
fn what_serde_refuses_is_refused_here_too() {
    let cases: [&[u8]; 14] = [
        br#"["ann",01,2,"","/","/bin/sh",[]]"#,
        br#"["ann",-1,2,"","/","/bin/sh",[]]"#,
        br#"["ann",4294967296,2,"","/","/bin/sh",[]]"#,
        br#"["ann",1.0,2,"","/","/bin/sh",[]]"#,
        br#"["ann",1e3,2,"","/","/bin/sh",[]]"#,
        br#"["ann",1,2,"","/","/bin/sh",[],1,2]"#,
        br#"["ann",1,2,"","/","/bin/sh",[1,]]"#,
        br#"["ann",1,2,"","/","/bin/sh",[]]x"#,
        br#"["ann",1,2,"","/","/bin/sh",[],9223372036854775808]"#,
        br#"["ann",1,2,"","/","/bin/sh",[],-9223372036854775809]"#,
        br#"["an	n",1,2,"","/","/bin/sh",[]]"#,
        b"[\"a\xffn\",1,2,\"\",\"/\",\"/bin/sh\",[]]",
        br#"["ann",1,2,"","/","/bin/sh",[]"#,
        br#"["ann",1,2,"","/","/bin/sh""#,
    ];
    for json in cases {
        assert_eq!(by_serde(json), None, "serde takes {}", String::from_utf8_lossy(json));
        assert_eq!(decode(json), None, "{}", String::from_utf8_lossy(json));
    }
}

/// xorshift64*: reproducible, no dependency.
struct Draws(u64);

impl Draws {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Bytes that matter to a JSON reader, spliced into records.
const SPLICED: &[&[u8]] = &[
    b"\"",
    b"\\",
    b",",
    b"[",
    b"]",
    b"{",
    b"-",
    b"0",
    b"9",
    b"1.5",
    b"e5",
    b" ",
    b"\t",
    b"\n",
    b"\x01",
    b"\xc3",
    b"\xc3\xa9",
    b"\xff",
    b"null",
    b"4294967296",
    b"18446744073709551616",
    b"-0",
    b"00",
];

fn mutated(json: &[u8], draws: &mut Draws) -> Vec<u8> {
    let mut bytes = json.to_vec();
    for _ in 0..=draws.below(3) {
        let at = draws.below(bytes.len() + 1);
        match draws.below(4) {
            0 if at < bytes.len() => {
                bytes.remove(at);
            }
            1 => bytes.truncate(at),
            2 if at < bytes.len() => bytes[at] = SPLICED[draws.below(SPLICED.len())][0],
            _ => {
                let piece = SPLICED[draws.below(SPLICED.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
        }
    }
    bytes
}

#[test]
fn on_a_hundred_thousand_mutated_records_it_never_reads_what_serde_would_not() {
    let mut draws = Draws(0x9E37_79B9_7F4A_7C15);
    let base = [
        serde_json::to_vec(&user("ann", vec![7, 8], None)).unwrap(),
        serde_json::to_vec(&user("bob@example.com", vec![], Some(-12))).unwrap(),
        serde_json::to_vec(&user("c", vec![0], Some(19_000))).unwrap(),
    ];
    let mut taken = 0;
    for round in 0..100_000 {
        let json = mutated(&base[round % base.len()], &mut draws);
        if let Some(mine) = decode(&json) {
            taken += 1;
            assert_eq!(Some(mine), by_serde(&json), "{}", String::from_utf8_lossy(&json));
        }
    }
    // The test means something only if many mutated records still read.
    assert!(taken > 5_000, "only {taken} mutated records were canonical");
}
