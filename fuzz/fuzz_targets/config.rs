//! The configuration parser (`Config::from_toml_str`). The PAM module parses the file at every
//! login, so any input must give a config or an error, quickly. Also checked: an accepted
//! config passes validation again and keeps its uid range clear of reserved ids, and no error
//! message or debug output ever shows the directory password.
#![no_main]

use std::path::Path;

use dircache::config::Config;
use dircache::ids::is_reserved;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "S3cr3t-Fuzz-Pw";

fn check(text: &str) {
    match Config::from_toml_str(text, Path::new("/etc/dircache/dircache.toml")) {
        Ok(config) => {
            config.validate(Path::new("/again")).expect("an accepted config fails validation");
            let [low, high] = config.unix.uid_range;
            assert!(low <= high);
            for id in [low, high, 0, 999, 61184, 65519, 65534, 65535, u32::MAX] {
                assert!(!(low <= id && id <= high && is_reserved(id)), "reserved id {id} in range");
            }
            assert!(config.unix.home.starts_with('/') && config.unix.home.contains("{name}"));
            assert!(!format!("{config:?}").contains(SECRET), "the debug output shows the password");
        }
        Err(err) => {
            assert!(!err.to_string().contains(SECRET), "the error shows the password: {err}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check(text);
    // The same text after a section holding the password: whatever follows, the password is
    // never echoed.
    check(&format!("[directory]\npassword = \"{SECRET}\"\n{text}"));
    check(&format!("directory.password = '{SECRET}'\n{text}"));
});
