//! Files that shrink (PROTOCOL section 5): a commit deletes a file's last
//! block and head shrinks. A resync across the shrink keeps the connection
//! up with byte-exact views; a view set up before the shrink that touches
//! the deleted tail gets SIGBUS, the server's known limit (README).
mod e2e_common;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

fn four_blocks(srv: &wcfs_testkit::server::ServerProcess) -> wcfs_core::wire::Tid {
    srv.commit(&[
        change(F, 0, "a0"),
        change(F, 1, "a1"),
        change(F, 2, "a2"),
        change(F, 3, "a3"),
    ])
}

#[test]
fn resync_across_a_shrink_keeps_the_connection_up() {
    require_fuse!();
    let srv = server();
    let at0 = four_blocks(&srv);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let conn = w.connect(at0).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(0, 5).unwrap();
    assert_eq!(tags(&m, 0..5), ["a0", "a1", "a2", "a3", ""]);

    let at1 = srv.delete_from(F, 3);
    let head = srv.mountpoint().join(format!("head/bigfile/{F}"));
    assert_eq!(std::fs::metadata(&head).unwrap().len(), 3 * bs());
    conn.resync(at1).unwrap();
    assert_eq!(conn.down_reason(), None);
    assert_eq!(
        tags(&m, 0..5),
        ["a0", "a1", "a2", "", ""],
        "zeros past the new end"
    );
    assert!(!faults(&m, 3) && !faults(&m, 4));
    assert_eq!(fh.pinned(), []);
    let past = fh.mmap(2, 3).unwrap();
    assert_eq!(
        tags(&past, 2..5),
        ["a2", "", ""],
        "a new mapping past the new end"
    );

    // A connection at the old at, set up after the deletion: the setup
    // pins the deleted block, so the view shows it.
    let old = w.connect(at0).unwrap();
    let fh0 = old.open(F).unwrap();
    let m0 = fh0.mmap(0, 5).unwrap();
    assert_eq!(fh0.pinned(), [(3, at0)]);
    assert_eq!(tags(&m0, 0..5), ["a0", "a1", "a2", "a3", ""]);

    // #3 comes back: no pin to anyone; each view moves on at its resync.
    let at2 = srv.commit(&[change(F, 3, "b3")]);
    assert_eq!(std::fs::metadata(&head).unwrap().len(), 4 * bs());
    assert_eq!(
        tags(&m, 0..5),
        ["a0", "a1", "a2", "", ""],
        "still as of at1"
    );
    assert_eq!(
        tags(&m0, 0..5),
        ["a0", "a1", "a2", "a3", ""],
        "still as of at0"
    );
    conn.resync(at2).unwrap();
    assert_eq!(tags(&m, 0..5), ["a0", "a1", "a2", "b3", ""]);
    assert_eq!(tags(&past, 2..5), ["a2", "b3", ""]);
    old.resync(at2).unwrap();
    assert_eq!(fh0.pinned(), []);
    assert_eq!(tags(&m0, 0..5), ["a0", "a1", "a2", "b3", ""]);
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}

/// Where the child's SIGBUS handler reports (a pipe's write end).
static SIGBUS_FD: AtomicI32 = AtomicI32::new(-1);

/// Says `B` to the parent, then lets the fault happen again with the
/// default action: the child dies of SIGBUS.
extern "C" fn on_sigbus(_: libc::c_int) {
    // SAFETY: write(2) and signal(2) are async-signal-safe; the buffer is static.
    unsafe {
        libc::write(SIGBUS_FD.load(Ordering::Relaxed), b"B".as_ptr().cast(), 1);
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

/// The known limit: the server pins no deleted block, so a view set up
/// before the shrink still maps head over the deleted tail, and touching it
/// is SIGBUS. If a future server pins deleted blocks, this test fails:
/// then drop the limit from the README.
#[test]
fn view_from_before_the_shrink_gets_sigbus_on_the_deleted_tail() {
    require_fuse!();
    let srv = server();
    let at0 = four_blocks(&srv);
    let (mut from_child, to_parent) = std::io::pipe().unwrap();
    let (go_r, mut go_w) = std::io::pipe().unwrap();
    // SAFETY: the child connects on its own and ends with _exit or a signal.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop((from_child, go_w));
        let (mut to_parent, mut go_r) = (to_parent, go_r);
        // No core dump: dumping would read the FUSE mappings while the pin
        // thread waits in the mount.
        // SAFETY: prctl and sigaction on this process only; the handler
        // only calls async-signal-safe functions.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0);
            SIGBUS_FD.store(to_parent.as_raw_fd(), Ordering::Relaxed);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
        let code = (|| {
            let w = Wcfs::open(srv.mountpoint()).ok()?;
            let conn = w.connect(at0).ok()?;
            let fh = conn.open(F).ok()?;
            let m = fh.mmap(0, 4).ok()?;
            (tags(&m, 0..4) == ["a0", "a1", "a2", "a3"]).then_some(())?;
            to_parent.write_all(b"r").ok()?;
            let mut b = [0u8; 1];
            go_r.read_exact(&mut b).ok()?;
            (tag(&m, 2) == "a2").then_some(())?;
            // The deleted tail, still mapped from head: SIGBUS here.
            let _ = tag(&m, 3);
            // No fault: say so, and close (the pin thread must not be
            // left in a read of the link when the process exits).
            to_parent.write_all(b"n").ok()?;
            drop(m);
            conn.close().ok()
        })()
        .map_or(2, |()| 0);
        // SAFETY: leave the child without the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    drop((to_parent, go_r));
    let mut b = [0u8; 1];
    from_child
        .read_exact(&mut b)
        .expect("the child's view is set up");
    assert_eq!(&b, b"r");
    srv.delete_from(F, 3);
    // The kernel learns the new size at the next stat, and drops the pages
    // past it from every mapping.
    let head = srv.mountpoint().join(format!("head/bigfile/{F}"));
    assert_eq!(std::fs::metadata(&head).unwrap().len(), 3 * bs());
    go_w.write_all(b"g").unwrap();
    let got = from_child.read_exact(&mut b).map(|()| b[0]);
    let sigbus = got.as_ref().is_ok_and(|&c| c == b'B');
    if sigbus {
        // The dying child's pin thread waits in a read of its watch link,
        // which the test server (no FUSE_INTERRUPT) answers only with a
        // line: a head read that pins the child gives it one, and its exit
        // then releases the link (and this read).
        srv.commit(&[change(F, 0, "z0")]);
        let mut f = std::fs::File::open(&head).unwrap();
        let mut buf = [0u8; 2];
        f.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"z0");
    }
    let mut status = 0;
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        sigbus && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS,
        "a view set up before the shrink must get SIGBUS on the deleted block \
         (child said {got:?}, status {status:#x}; exit 2 = setup failed)"
    );
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
