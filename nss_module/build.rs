fn main() {
    // glibc loads NSS modules by their SONAME-versioned file name.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_dircache.so.2");
}
