//! `libnss_dircache.so.2`: the NSS provider. An empty shell for now; the lookups arrive with
//! the NSS issue and will live in `dircache::nss`, this crate only translating them to C.
