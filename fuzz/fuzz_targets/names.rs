//! Name validation (`names::validate_name`) and the GECOS field: a name that is accepted must
//! be safe in a passwd line, a home path and a log line; any full name must give a GECOS field
//! that cannot break a passwd line.
#![no_main]

use std::path::{Component, Path};

use dircache::config::Config;
use dircache::names::{fold_name, name_key, same_name, validate_name, MAX_NAME_LEN};
use dircache::user::sample_user;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let name: &str = &text;

    // Names that match must share the index key, or a lookup would miss them.
    let upper = name.to_uppercase();
    if same_name(name, &upper) {
        assert_eq!(name_key(name), name_key(&upper));
    }
    assert_eq!(name_key(name), name_key(&fold_name(name)));

    if validate_name(name).is_ok() {
        assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
        assert!(name != "." && name != ".." && !name.starts_with('-'));
        assert!(!name.bytes().all(|b| b.is_ascii_digit()));
        for c in name.chars() {
            assert!(
                !matches!(c, ':' | '/' | '\\' | ',' | '\0')
                    && !c.is_whitespace()
                    && !c.is_control(),
                "accepted {c:?}"
            );
            // Zero-width and bidirectional controls would make a name look like another.
            assert!(
                !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'),
                "accepted the invisible {c:?}"
            );
        }
        let line = format!("{name}:x:200000:200000:{name}:/home/{name}:/bin/bash");
        assert_eq!(line.split(':').count(), 7, "{line:?}");
        assert_eq!(line.lines().count(), 1, "{line:?}");
        let home = Config::default().home_for(name);
        let components: Vec<Component> = Path::new(&home).components().collect();
        assert_eq!(components.len(), 3, "{home:?}");
        assert_eq!(components[2], Component::Normal(name.as_ref()), "{home:?}");
    }

    // The GECOS field of any full name.
    let mut user = sample_user("a", 200_000);
    user.full_name = name.to_string();
    let gecos = user.gecos();
    assert!(!gecos.contains(':') && !gecos.contains('\n') && !gecos.contains('\0'), "{gecos:?}");
});
