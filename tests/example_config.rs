//! The example configuration shipped in conf/ must stay valid and match the defaults.

use std::path::Path;

use dircache::config::{Config, DirectoryKind};

#[test]
fn shipped_example_parses_and_states_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/dircache.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let example = Config::from_toml_str(&text, &path).unwrap();
    let defaults = Config::default();
    assert_eq!(example.directory.kind, DirectoryKind::None);
    assert_eq!(example.cache, defaults.cache);
    assert_eq!(example.sync, defaults.sync);
    assert_eq!(example.unix, defaults.unix);
    assert_eq!(example.passwords, defaults.passwords);
}

#[test]
fn the_commented_local_groups_example_parses_when_uncommented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/dircache.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut in_example = false;
    let uncommented: Vec<&str> = text
        .lines()
        .map(|line| {
            if line.starts_with("# [unix.local_groups]") {
                in_example = true;
            } else if !line.starts_with("# ") {
                in_example = false;
            }
            if in_example {
                line.trim_start_matches("# ")
            } else {
                line
            }
        })
        .collect();
    let config = Config::from_toml_str(&uncommented.join("\n"), &path).unwrap();
    let mapping = &config.unix.local_groups.map;
    assert_eq!(mapping["sudo"], ["it-admins@example.com"]);
    assert_eq!(mapping["docker"], ["developers@example.com"]);
}
