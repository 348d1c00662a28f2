//! The built modules as C programs load them: without libgcc_s (loading it cost a C program
//! more than a whole first lookup; the unwinder is linked in statically), and with a panic
//! inside each module still caught by the module's own unwinder. A small C program (built
//! with `cc`, which every Rust build on Linux needs anyway) loads each module with dlopen,
//! calls its self-test, and reports whether libgcc_s came into the process.

mod testbed;

use std::fs;

use std::process::Command;

use testbed::{artifact, compile_c};

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
    let harness = compile_c(dir.path(), "harness", HARNESS, &["-ldl"]);
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

/// A thread cancelled (`pthread_cancel`) while it waits inside the NSS module (here on the
/// open() of a cache file that is a FIFO) must not take the process down: the module holds
/// the cancellation back until it returns, and the thread ends cancelled at the caller's
/// next cancellation point.
const CANCEL_HARNESS: &str = r#"
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static int (*getpw)(const char *, struct passwd *, char *, size_t, int *);
static void *worker(void *arg) {
    struct passwd pw; char buf[1024]; int err = 0;
    getpw("alice", &pw, buf, sizeof buf, &err);
    pthread_testcancel();
    return NULL;
}
int main(int argc, char **argv) {
    /* The write below only unblocks the worker's open(); the module may have closed the
       FIFO (not a regular file) before it lands, which must not kill this process. */
    signal(SIGPIPE, SIG_IGN);
    void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!module) { printf("dlopen: %s\n", dlerror()); return 2; }
    getpw = (int (*)(const char *, struct passwd *, char *, size_t, int *))
        dlsym(module, "_nss_dircache_getpwnam_r");
    pthread_t t; pthread_create(&t, NULL, worker, NULL);
    usleep(300000);
    pthread_cancel(t);
    usleep(100000);
    int fd = open(argv[2], O_WRONLY); if (fd >= 0) { write(fd, "x", 1); close(fd); }
    void *res; pthread_join(t, &res);
    printf("%s\n", res == PTHREAD_CANCELED ? "cancelled" : "returned");
    return 0;
}
"#;

#[test]
fn a_thread_cancelled_inside_the_nss_module_does_not_abort_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let harness = compile_c(dir.path(), "cancel", CANCEL_HARNESS, &["-ldl", "-pthread"]);
    let cache = dir.path().join("cache");
    fs::create_dir_all(cache.join("gen1")).unwrap();
    std::os::unix::fs::symlink("gen1", cache.join("current")).unwrap();
    let fifo = cache.join("gen1/users.public");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let run = Command::new(&harness)
        .arg(artifact("libnss_dircache.so"))
        .arg(&fifo)
        .env("DIRCACHE_CACHE_DIR", &cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the host process died: {:?} {stdout}{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(stdout.trim(), "cancelled");
}
