// Included by the build scripts of the two modules (`include!`): one spelling of the trick.
//
// Rust's standard library asks for `-lgcc_s` (the unwinder). Loading libgcc_s.so.1 costs a C
// program about 100 µs the first time a module is loaded into it (`ls -l`, `id`, sshd's
// children), more than all the rest of a first NSS lookup (issue 12 §2, README PERFORMANCE).
// Found first on the search path, this linker script links the same unwinder statically
// (libgcc_eh.a, built for shared objects) into the module instead. Nothing unwinds across
// the module's boundary: every exported function catches panics, and each module exports a
// self-test that a test calls through dlopen (tests/module_loading.rs).
fn link_the_unwinder_statically() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search=native={}", dir.display());
}
