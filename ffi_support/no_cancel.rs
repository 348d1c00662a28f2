// Included by both modules (`#[path]`): one spelling of the guard.
//
// A thread cancelled (`pthread_cancel`) while inside a module would be acted on at the first
// cancellation point the module reaches (an `open`, a `read`): glibc's forced unwind through
// Rust frames aborts the whole process (sshd, login), whichever unwinder runs it (found in
// review). While a module's code runs, cancellation is therefore disabled, and the caller's
// state is restored on the way out: a pending cancellation then acts at the caller's next
// cancellation point, as if it had come a moment later.

use std::os::raw::c_int;

extern "C" {
    // glibc; not in the libc crate.
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}

/// glibc's value (pthread.h).
const PTHREAD_CANCEL_DISABLE: c_int = 1;

/// Cancellation disabled from `new` until dropped.
pub struct NoCancel {
    previous: c_int,
}

impl NoCancel {
    pub fn new() -> NoCancel {
        let mut previous = PTHREAD_CANCEL_DISABLE;
        // SAFETY: a valid state and a pointer to a local int; the call only changes this
        // thread's cancellation state.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut previous) };
        NoCancel { previous }
    }
}

impl Drop for NoCancel {
    fn drop(&mut self) {
        // SAFETY: restores the state `new` read; a null `old` is allowed.
        unsafe { pthread_setcancelstate(self.previous, std::ptr::null_mut()) };
    }
}
