include!("../build_support/static_unwinder.rs");

fn main() {
    // glibc loads NSS modules by their SONAME-versioned file name.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_dircache.so.2");
    link_the_unwinder_statically();
}
