//! The Application Integration `cmd=list` reader (`appint::parse_users`): what it returns is
//! what the sync planner trusts, so the invariants it promises are checked here.
#![no_main]

use std::collections::HashSet;

use dircache::directory::appint::parse_users;
use dircache::directory::ListingBudget;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((users, _warnings)) = parse_users(data, &mut ListingBudget::unlimited()) else {
        return;
    };
    let mut identities = HashSet::new();
    for user in users.iter().map(|user| user.to_parts()) {
        assert!(!user.login_name.trim().is_empty(), "an empty userName was accepted");
        assert!(user.identity.starts_with("application-integration:"));
        assert!(identities.insert(user.identity.clone()), "duplicate identity {:?}", user.identity);
        assert!(user.enabled);
        let mut seen = HashSet::new();
        for email in &user.emails {
            assert!(!email.trim().is_empty() && email.trim() == email, "untrimmed {email:?}");
            assert!(seen.insert(email.to_lowercase()), "duplicate address {email:?}");
        }
        if let Some(dn) = &user.distinguished_name {
            assert!(!dn.is_empty());
        }
    }
});
