//! The IceWarp reply reader (`icewarp::wire::parse_reply`) with every visitor dircache uses.
//! Besides "no panic, no hang, bounded memory", a reply that is not `type="result"` must never
//! reach a visitor: a password check is accepted only on a result's non-empty <authtoken>.
#![no_main]

use dircache::directory::icewarp::wire::{
    parse_reply, Fields, Ignore, ListPage, Outcome, Properties,
};
use libfuzzer_sys::fuzz_target;

const FIELDS: &[&[&str]] = &[&["result"], &["result", "authtoken"]];
const ITEM_FIELDS: &[&str] =
    &["name", "email", "accounttype", "accountstate", "accountstate/state"];

fuzz_target!(|data: &[u8]| {
    let plain = parse_reply(data, &mut Ignore);
    if plain.is_ok() {
        assert!(std::str::from_utf8(data).is_ok(), "accepted a reply that is not UTF-8");
    }
    if let Ok(reply) = &plain {
        if let Outcome::Error(uid) = &reply.outcome {
            assert!(!uid.is_empty(), "an error outcome without uid");
        }
    }

    let mut fields = Fields::new(FIELDS);
    let with_fields = parse_reply(data, &mut fields);
    assert_eq!(plain, with_fields, "the visitor changed the outcome");
    if let Ok(reply) = &with_fields {
        if reply.outcome != Outcome::Result {
            assert!(
                fields.values.iter().all(Option::is_none),
                "an error reply reached the visitor: {:?}",
                fields.values
            );
        }
    }

    let mut page = ListPage::new(ITEM_FIELDS);
    if parse_reply(data, &mut page).is_ok() {
        assert!(page.items.iter().all(|item| item.len() == ITEM_FIELDS.len()));
    }

    let mut properties = Properties::new();
    let _ = parse_reply(data, &mut properties);
    let _ = properties.get("u_alias");
});
