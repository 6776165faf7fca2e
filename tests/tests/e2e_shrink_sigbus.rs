//! The known limit of shrinking files (README): the server pins no deleted
//! block, so a view set up before the shrink still maps head over the
//! deleted tail, and touching it is SIGBUS. Shown in a forked child. (A file
//! of its own: the child must not inherit another test's descriptors.)
mod e2e_common;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

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
    let mut status = 0;
    let reaped = |status: &mut i32| {
        // SAFETY: our own child; WNOHANG does not block.
        unsafe { libc::waitpid(pid, status, libc::WNOHANG) == pid }
    };
    let mut done = false;
    for poke in 0..20 {
        // The dying child's pin thread waits in a read of its watch link,
        // which the test server (no FUSE_INTERRUPT) answers only with a
        // line: a head read that pins the child gives it one, and its exit
        // then releases the link (and this read). Again, if the pin came
        // before the fatal fault.
        for _ in 0..20 {
            done = reaped(&mut status);
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if done {
            break;
        }
        let tag = format!("z{poke}");
        srv.commit(&[change(F, 0, &tag)]);
        let mut f = std::fs::File::open(&head).unwrap();
        let mut buf = [0u8; 2];
        f.read_exact(&mut buf).unwrap();
        assert_eq!(buf, tag.as_bytes()[..2]);
    }
    assert!(done, "the child did not end");
    assert!(
        sigbus && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS,
        "a view set up before the shrink must get SIGBUS on the deleted block \
         (child said {got:?}, status {status:#x}; exit 2 = setup failed)"
    );
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
