//! The NSS functions of the databases dircache does not serve (but gshadow, hosts and
//! networks), each answering UNAVAIL ("not available here") at once.
//!
//! Why define them at all: when glibc (2.33 and later) loads an NSS module it looks up every
//! function name of every database, 64 of them, whatever the database asked for. A name the
//! module lacks fails its `dlsym`, and glibc builds a "symbol not found" error message on the
//! heap for each failure and throws it away: about 900 instructions per name, paid on the
//! first lookup of every process (`ls -l`, `id`, sshd's children) (issue 12 §2, README
//! PERFORMANCE).
//!
//! What they change: nothing where no nsswitch.conf line names dircache for these databases
//! (installing the package names it on passwd, group and shadow only). Where one does, and
//! dircache comes first, they give what glibc makes of a missing function (UNAVAIL, errno
//! untouched) under the `return` and `continue` actions. After another source, dircache's
//! UNAVAIL is the last status where a missing function would have left the other source's
//! (`protocols: files dircache`: a key `files` lacks ends UNAVAIL, `getprotobyname_r`
//! returning the caller's errno, not NOTFOUND and 0; `files [SUCCESS=continue] dircache`
//! ends on the UNAVAIL): as for any module that has the functions and no data.
//! `dircache-sync check` warns about such lines (README, NSS). Left out: gshadow, which
//! glibc reads from the `group` line when nsswitch.conf has no `gshadow` line, so these
//! functions would be used wherever dircache serves groups; hosts and networks, for which
//! glibc takes other paths by which functions a module has (`getaddrinfo` with
//! `gethostbyname4_r`, `h_errno` by whether any module was called), even when dircache is
//! first. The stubs read none of their arguments and write nothing, so they cannot fault,
//! panic or change `errno`: no `catch_unwind` and no cancellation guard are needed.

use std::os::raw::{c_char, c_int, c_void};

use dircache::nss::NSS_STATUS_UNAVAIL;
use libc::size_t;

/// Defines each named function with glibc's parameter list (nss.h, "Types of functions
/// exported from NSS service modules"; struct pointers as `*mut c_void`), returning UNAVAIL.
macro_rules! unavailable {
    ($($name:ident($($param:ty),*);)*) => {
        $(
            #[no_mangle]
            pub extern "C" fn $name($(_: $param),*) -> c_int {
                NSS_STATUS_UNAVAIL
            }
        )*
    };
}

unavailable! {
    // aliases
    _nss_dircache_setaliasent();
    _nss_dircache_endaliasent();
    _nss_dircache_getaliasent_r(*mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getaliasbyname_r(*const c_char, *mut c_void, *mut c_char, size_t, *mut c_int);
    // ethers
    _nss_dircache_setetherent(c_int);
    _nss_dircache_endetherent();
    _nss_dircache_getetherent_r(*mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_gethostton_r(*const c_char, *mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getntohost_r(*const c_void, *mut c_void, *mut c_char, size_t, *mut c_int);
    // netgroup
    _nss_dircache_setnetgrent(*const c_char, *mut c_void);
    _nss_dircache_endnetgrent(*mut c_void);
    _nss_dircache_getnetgrent_r(*mut c_void, *mut c_char, size_t, *mut c_int);
    // protocols
    _nss_dircache_setprotoent(c_int);
    _nss_dircache_endprotoent();
    _nss_dircache_getprotoent_r(*mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getprotobyname_r(*const c_char, *mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getprotobynumber_r(c_int, *mut c_void, *mut c_char, size_t, *mut c_int);
    // publickey
    _nss_dircache_getpublickey(*const c_char, *mut c_char, *mut c_int);
    _nss_dircache_getsecretkey(*const c_char, *mut c_char, *mut c_char, *mut c_int);
    _nss_dircache_netname2user(*mut c_char, *mut u32, *mut u32, *mut c_int, *mut u32, *mut c_int);
    // rpc
    _nss_dircache_setrpcent(c_int);
    _nss_dircache_endrpcent();
    _nss_dircache_getrpcent_r(*mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getrpcbyname_r(*const c_char, *mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getrpcbynumber_r(c_int, *mut c_void, *mut c_char, size_t, *mut c_int);
    // services
    _nss_dircache_setservent(c_int);
    _nss_dircache_endservent();
    _nss_dircache_getservent_r(*mut c_void, *mut c_char, size_t, *mut c_int);
    _nss_dircache_getservbyname_r(
        *const c_char, *const c_char, *mut c_void, *mut c_char, size_t, *mut c_int
    );
    _nss_dircache_getservbyport_r(
        c_int, *const c_char, *mut c_void, *mut c_char, size_t, *mut c_int
    );
}
