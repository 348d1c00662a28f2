//! The built modules as C programs load them: without libgcc_s (loading it cost a C program
//! more than a whole first lookup; the unwinder is linked in statically), and with a panic
//! inside each module still caught by the module's own unwinder. A small C program (built
//! with `cc`, which every Rust build on Linux needs anyway) loads each module with dlopen,
//! calls its self-test, and reports whether libgcc_s came into the process.

mod testbed;

use std::fs;
use std::process::Command;

use testbed::artifact;

const HARNESS: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!module) { printf("dlopen: %s\n", dlerror()); return 2; }
    int (*self_test)(void) = (int (*)(void))dlsym(module, argv[2]);
    if (!self_test) { printf("no %s\n", argv[2]); return 2; }
    int caught = self_test();
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int libgcc_s = 0;
    while (maps && fgets(line, sizeof line, maps)) {
        if (strstr(line, "libgcc_s")) libgcc_s = 1;
    }
    printf("caught=%d libgcc_s=%d\n", caught, libgcc_s);
    return 0;
}
"#;

#[test]
fn each_module_catches_its_panics_without_libgcc_s_in_a_c_program() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("harness.c");
    fs::write(&source, HARNESS).unwrap();
    let harness = dir.path().join("harness");
    let built = Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(&harness)
        .arg("-ldl")
        .output()
        .expect("cc runs (Rust builds need it)");
    assert!(built.status.success(), "cc: {}", String::from_utf8_lossy(&built.stderr));
    for (module, symbol) in [
        ("libnss_dircache.so", "dircache_nss_unwind_selftest"),
        ("libpam_dircache.so", "dircache_pam_unwind_selftest"),
    ] {
        let run = Command::new(&harness).arg(artifact(module)).arg(symbol).output().unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{module}: {stdout}{}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(stdout.trim(), "caught=1 libgcc_s=0", "{module}");
    }
}
