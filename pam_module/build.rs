include!("../build_support/static_unwinder.rs");

fn main() {
    link_the_unwinder_statically();
}
