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
