//! Fork safety: `pthread_atfork` handlers that take every connection's
//! locks before a fork and release them after; in the child, every mapping
//! faults and every descriptor is let go without a word on the link.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once, Weak};

use wcfs_core::{perform_quick, Errno, Outcome};

use crate::conns::CONNS;
use crate::driver::{LineBatch, Shared, State};
use crate::sys;

static ATFORK: Once = Once::new();

/// Installs the fork handlers (once per process).
pub(crate) fn install() {
    ATFORK.call_once(|| {
        // SAFETY: the handlers only lock/unlock our spin locks and, in the
        // child, perform the core's fork actions (mmap, close) with the
        // locks taken by `prepare` in the forking thread.
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        debug_assert_eq!(rc, 0);
    });
}

/// Before fork: take every connection's lock so that the child inherits
/// consistent states. The guards are forgotten; `parent`/`child` unlock.
extern "C" fn prepare() {
    std::mem::forget(CONNS.lock());
    // SAFETY: we hold CONNS (forgotten guard) in this thread.
    let conns = unsafe { &*CONNS.as_mut_ptr() };
    for sh in conns.iter().filter_map(Weak::upgrade) {
        std::mem::forget(sh.st.lock());
        // After the state lock, as the pin thread takes them.
        std::mem::forget(sh.closer.lock());
    }
}

fn unlock_all(mut each: impl FnMut(&Shared, &mut State, &mut Vec<Arc<OwnedFd>>)) {
    // SAFETY: `prepare` took CONNS and every listed connection's locks in
    // this thread, and forgot the guards; we are their only user until we
    // release them here.
    unsafe {
        let conns = &*CONNS.as_mut_ptr();
        for sh in conns.iter().filter_map(Weak::upgrade) {
            each(&sh, &mut *sh.st.as_mut_ptr(), &mut *sh.closer.as_mut_ptr());
            sh.closer.force_unlock();
            sh.st.force_unlock();
        }
        CONNS.force_unlock();
    }
}

extern "C" fn parent() {
    unlock_all(|_, _, _| {});
}

/// In the child: every mapping faults, descriptors are let go, nothing is sent.
extern "C" fn child() {
    unlock_all(|sh, st, closer| {
        sh.forked.store(true, Ordering::Release);
        st.core.fork_child();
        // Quick actions only (faulting maps, closes); `Sys` writes no line
        // in a fork child.
        let mut out = LineBatch::new();
        while let Some(a) = st.core.poll_action() {
            let (core, mut sys) = st.split(sh, &mut out);
            let outcome =
                perform_quick(&mut sys, &a).unwrap_or(Outcome::Failed(Errno(libc::EPERM)));
            core.complete(&a, outcome);
        }
        // Inherited descriptors of files: close without a word.
        for (raw, fd) in st.fds.drain() {
            std::mem::forget(fd);
            sys::close_raw_no_write(raw);
        }
        for fd in st.closing.drain(..).chain(closer.drain(..)) {
            sys::close_raw_no_write(fd.as_raw_fd());
            std::mem::forget(fd);
        }
    });
}
