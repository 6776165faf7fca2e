//! Process exit with connections still open.
//!
//! A process that exits (`exit()`, a return from `main`, the end of a
//! Python interpreter, `std::process::exit`) while a connection is up would
//! wait for its server: the pin thread is blocked in a read of `head/watch`
//! that the server already took, and the kernel waits for that answer
//! uninterruptibly (the server is not required to honour
//! `FUSE_INTERRUPT`), so the exit hangs until the server writes something.
//!
//! [`at_exit`], registered with `atexit` once (next to the fork handlers),
//! closes each connection that is still up as [`Conn::close`] starts to:
//! the core goes to `Closing` (so the link's state says `bye` was sent),
//! every mapping of it is made to fault (a view must not show data newer
//! than its revision once the server stops pinning it), and `bye` is
//! written. It does not wait for the link's end: the server answers the
//! pending read with EOF, and the kernel's teardown of the pin thread waits
//! only for that.
//!
//! What the handler may do, running while the process's other threads
//! still run: it takes no lock another thread could hold for long (the
//! connection list and each state lock are only tried, for at most
//! [`EXIT_LOCK_WAIT`] in all; a connection whose lock stays taken is left
//! as it is), it wakes nobody (no user lock), and it panics nowhere (a
//! panic cannot leave an `extern "C"` function: it is caught and dropped).
//! The work is the core's close (a few small allocations) and the
//! syscalls it asks for (an `mmap` per mapping, one `write`).
//!
//! Not covered: `_exit`/`os._exit` and death by a signal run no exit
//! handlers; such a process still waits for its server to answer.
//!
//! [`Conn::close`]: crate::Conn::close

use std::sync::atomic::Ordering;
use std::sync::{Once, Weak};
use std::time::{Duration, Instant};

use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::relax::Yield;
use wcfs_core::ConnState;

use crate::conns::CONNS;
use crate::driver::Shared;

/// The longest the exit handler tries for locks held by other threads
/// (the pin thread holds a state lock while it handles one input).
pub const EXIT_LOCK_WAIT: Duration = Duration::from_millis(500);

static ATEXIT: Once = Once::new();

/// Installs the exit handler (once per process).
pub(crate) fn install() {
    ATEXIT.call_once(|| {
        // SAFETY: the handler only tries our locks and says `bye`.
        let rc = unsafe { libc::atexit(at_exit) };
        debug_assert_eq!(rc, 0);
    });
}

/// The `atexit` handler: says `bye` on every connection still up.
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let deadline = Instant::now() + EXIT_LOCK_WAIT;
        let Some(conns) = try_lock_until(&CONNS, deadline) else {
            return;
        };
        for sh in conns.iter().filter_map(Weak::upgrade) {
            bye(&sh, deadline);
        }
    });
}

/// Starts closing `sh` if it is up: the core's close, its actions, `bye`.
fn bye(sh: &Shared, deadline: Instant) {
    if sh.forked.load(Ordering::Acquire) {
        return; // a fork child says nothing to its parent's server
    }
    let Some(mut st) = try_lock_until(&sh.st, deadline) else {
        return;
    };
    if st.core.state() != ConnState::Up {
        return; // closing, closed, or down: the link is ending or gone
    }
    // The op this starts ends at the link's EOF; nobody waits for it.
    let _ = st.core.close();
    drop(sh.drain(st));
}

/// `m` locked, trying until `deadline`; `None` past it.
fn try_lock_until<T>(m: &SpinMutex<T, Yield>, deadline: Instant) -> Option<SpinMutexGuard<'_, T>> {
    loop {
        if let Some(g) = m.try_lock() {
            return Some(g);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::yield_now();
    }
}
