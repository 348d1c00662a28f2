//! The Application Integration `cmd=auth` reader (`appint::parse_auth_reply`): `Ok(true)` lets
//! someone in, so it must only ever come from a JSON object with exactly one `success`
//! member holding `true`. Checked against serde's derived reader of `{ "success": bool }`,
//! which skips the other members the same way (so values serde skips unchecked, such as an
//! out-of-range number or bytes that are not UTF-8 in an ignored member, agree too).
#![no_main]

use dircache::directory::appint::parse_auth_reply;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reply {
    success: bool,
}

fuzz_target!(|data: &[u8]| {
    let ours = parse_auth_reply(data);
    let reference = serde_json::from_slice::<Reply>(data).ok().map(|reply| reply.success);
    match ours {
        // parse_auth_reply may be stricter (it refuses `[true]`, which serde's struct reader
        // takes as a sequence), never more lenient.
        Ok(success) => assert_eq!(reference, Some(success)),
        Err(reason) => assert!(reason.len() < 512, "an overlong reason: {} bytes", reason.len()),
    }
});
