//! The driver of one connection: its shared state (`Shared`, `State`), the
//! backend the core's actions run on (`Sys`), the drain loop that performs
//! them, and the pin thread (`pin_loop`).
//!
//! # Locking
//!
//! Each connection's core state sits behind one spin lock (`Shared::st`),
//! held only for core calls, quick syscalls (mmap, munmap, write of a
//! reply, close) and never across a call into the mount or a wait. Blocking
//! actions (`OpenHead`, `OpenRev`, `StatHead`, `WaitHeadAt`) are performed by
//! the thread that drained them, with the lock released; the core queues a
//! blocking action only as the last action of a step, so every thread pops
//! only the actions its own call caused. A thread waiting for the server
//! sleeps on `Shared::ev`, bumped by the pin thread after each input.
//! Files of the mount the core lets go of are closed by the pin thread after
//! it has woken the waiters (`State::closing`, `Shared::closer`): a close is
//! a FLUSH round trip.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::relax::Yield;
use wcfs_core::wire::OutLine;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{
    perform_blocking, perform_quick, Action, BlockingOs, ConnState, Errno, Fd, OpId, OpOk, QuickOs,
    Src, Stat, Stats, VmId,
};

use crate::sys;
use crate::wcfs::WcfsInner;

/// One connection's state, shared by the user's handles and the pin thread.
pub(crate) struct Shared {
    pub(crate) wcfs: Arc<WcfsInner>,
    /// The mountpoint's descriptor, which every open is relative to; let
    /// go of by the pin thread as it ends (see `mountdir`).
    pub(crate) mount: SpinMutex<Option<Arc<sys::Mount>>, Yield>,
    pub(crate) id: u64,
    pub(crate) st: SpinMutex<State, Yield>,
    /// (events, waiters): the pin thread bumps `events` after each input
    /// and wakes `cv` only when someone waits (a wake is a syscall).
    pub(crate) ev: Mutex<(u64, usize)>,
    pub(crate) cv: Condvar,
    /// The watch link, -1 once closed. Closed only where no thread reads it:
    /// by the pin thread on exit, in a fork child, or on drop.
    pub(crate) link: AtomicI32,
    /// This process is a fork child of the one that made the connection.
    pub(crate) forked: AtomicBool,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
    /// Set by the pin thread as its last act (also when it unwinds);
    /// `close_conn` waits for it on `ended_cv`, bounded by `LINK_END_WAIT`.
    pub(crate) ended: Mutex<bool>,
    pub(crate) ended_cv: Condvar,
    /// Files the pin thread is closing, taken from `State::closing` under
    /// the state lock and held while it closes them: the fork handlers take
    /// it after the state lock, so a fork child sees each file either here
    /// (and closes it without a word) or already closed. Capacity
    /// `DEFERRED_CLOSES`, reserved.
    pub(crate) closer: SpinMutex<Vec<Arc<OwnedFd>>, Yield>,
    /// The core's counters, read without `st`.
    pub(crate) stats: Arc<Stats>,
    /// The VMs mappings of this connection serve (`FileH::mmap_vm`).
    pub(crate) vms: crate::vm::Vms,
}

pub(crate) struct State {
    pub(crate) core: wcfs_core::Conn,
    /// Files the core refers to by `Fd`. An `Arc` so that a blocking call
    /// made without the lock keeps its file open however the core moves on.
    pub(crate) fds: HashMap<i32, Arc<OwnedFd>>,
    /// Files the core let go of, not closed yet: closing a file of the
    /// mount is a FLUSH round trip, so the pin thread closes them after it
    /// has woken whoever waits (see `pin_loop`). At most `DEFERRED_CLOSES`
    /// (capacity reserved: pushing never allocates); past that, closed at
    /// once. Closed without a word in a fork child.
    pub(crate) closing: Vec<Arc<OwnedFd>>,
    /// When the pin thread read the input being handled: acks written
    /// while it is set record their pin's handling time.
    pub(crate) read_at: Option<Instant>,
    /// The slowest pin over the log's threshold since the pin thread last
    /// logged one (0: none), see `oplog`.
    #[cfg(feature = "log")]
    pub(crate) slow_pin_ns: u64,
}

/// Most files waiting in `State::closing`.
pub(crate) const DEFERRED_CLOSES: usize = 32;

/// The pin thread's stack: it reads into a 4 KiB buffer and drains with a
/// 4 KiB `LineBatch` (twice when a failed flush recurses), over core calls
/// that do not recurse. A small fixed stack keeps thread start cheap.
pub const PIN_THREAD_STACK: usize = 128 << 10;

/// Lines waiting to go out in one write. Fixed size: the pin path does not allocate.
///
/// `Sys::send` appends to it; every other quick operation but a remap
/// writes it out first, and so does the driver before a blocking action and
/// at the end of a drain. What a write did is left here for the driver to
/// tell the core (`Shared::settle`): the acks it carried, or its error.
pub(crate) struct LineBatch {
    buf: [u8; 4096],
    len: usize,
    /// Acks among the lines.
    acks: u32,
    /// Acks written out since the driver last settled.
    written_acks: u32,
    /// The error of a failed write, not told to the core yet.
    failed: Option<Errno>,
}

impl LineBatch {
    pub(crate) fn new() -> LineBatch {
        LineBatch {
            buf: [0; 4096],
            len: 0,
            acks: 0,
            written_acks: 0,
            failed: None,
        }
    }

    /// Appends `line`; false when it does not fit.
    fn push(&mut self, line: &[u8]) -> bool {
        let end = self.len + line.len();
        if end > self.buf.len() {
            return false;
        }
        self.buf[self.len..end].copy_from_slice(line);
        self.len = end;
        true
    }
}

/// The backend the core's quick actions run on, with the lock held. Lines
/// sent are batched in `out` (see `LineBatch`).
pub(crate) struct Sys<'a> {
    sh: &'a Shared,
    fds: &'a mut HashMap<i32, Arc<OwnedFd>>,
    closing: &'a mut Vec<Arc<OwnedFd>>,
    out: &'a mut LineBatch,
}

impl State {
    /// The core, and the backend its quick actions run on: this state's
    /// descriptors, lines batched into `out`. The one way a [`Sys`] is made.
    pub(crate) fn split<'a>(
        &'a mut self,
        sh: &'a Shared,
        out: &'a mut LineBatch,
    ) -> (&'a mut wcfs_core::Conn, Sys<'a>) {
        let State {
            core, fds, closing, ..
        } = self;
        (
            core,
            Sys {
                sh,
                fds,
                closing,
                out,
            },
        )
    }
}

/// The backend the core's blocking actions run on, without the lock: calls
/// into the mount. A file it opens is kept in `opened` until the driver,
/// holding the lock again, hands it to the fd table.
struct Mount<'a> {
    sh: &'a Shared,
    opened: Option<OwnedFd>,
    /// The VM a `VmLock` locks, taken from `Shared::vms` with the lock held.
    vm: Option<crate::vm::Hook>,
}

impl BlockingOs for Mount<'_> {
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        self.sh
            .wcfs
            .wait_head_at(at, &mut self.opened)
            .map_err(errno)
    }
    fn open_head(&mut self, oid: Oid) -> Result<(Fd, Stat), Errno> {
        self.open(&format!("head/bigfile/{oid}"))
    }
    fn open_rev(&mut self, oid: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        self.open(&format!("@{rev}/bigfile/{oid}"))
    }
    fn stat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        // Hold the file while we stat it: a close may run meanwhile.
        let file = self.sh.lock().fds.get(&fd.0).cloned();
        stat(file.ok_or(Errno(libc::EBADF))?.as_fd())
    }
    fn vm_lock(&mut self, vm: VmId) -> Result<(), Errno> {
        self.sh.vms.lock(vm, self.vm.take())
    }
}

impl Mount<'_> {
    fn open(&mut self, rel: &str) -> Result<(Fd, Stat), Errno> {
        let (fd, st) = open_stat(self.sh, rel)?;
        let raw = Fd(fd.as_raw_fd());
        self.opened = Some(fd);
        Ok((raw, st))
    }
}

fn errno(e: impl Into<std::io::Error>) -> Errno {
    Errno(e.into().raw_os_error().unwrap_or(libc::EIO))
}

impl Sys<'_> {
    fn fd(&self, fd: Fd) -> Result<BorrowedFd<'_>, Errno> {
        self.fds
            .get(&fd.0)
            .map(|f| f.as_fd())
            .ok_or(Errno(libc::EBADF))
    }
}

impl QuickOs for Sys<'_> {
    fn map_new(&mut self, fd: Fd, offset: u64, len: usize) -> Result<usize, Errno> {
        self.write_lines();
        sys::map_file(self.fd(fd)?, offset, len).map_err(errno)
    }
    fn map_fixed(&mut self, addr: usize, len: usize, src: Src) -> Result<(), Errno> {
        // SAFETY: the core hands out only ranges inside mappings it placed
        // with `map_new` on this connection, or that a caller of the unsafe
        // `FileH::mmap_at` gave it (owned by the caller, no Rust object in
        // it: its safety contract), and has not unmapped (its invariant:
        // placed mappings never overlap and are released only by `Unmap`),
        // so no other Rust object lives in that memory.
        unsafe {
            match src {
                Src::File { fd, offset } => sys::map_file_fixed(addr, len, self.fd(fd)?, offset),
                Src::Zeros => self.sh.wcfs.zeros.map_zeros_fixed(addr, len),
                Src::Fault => sys::map_fault_fixed(addr, len),
            }
        }
        .map_err(errno)
    }
    fn protect(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        // SAFETY: as for `map_fixed`: the range is a mapping of this
        // connection or a caller's range it was given, and no Rust object
        // lives in it; making it inaccessible breaks no reference.
        unsafe { sys::protect_none(addr, len) }.map_err(errno)
    }
    fn unmap(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.write_lines();
        // SAFETY: as for `map_fixed`: the range is a mapping this connection
        // placed; the core forgets it with this action, and `Mapping` hands
        // out no references that outlive it (see `Mapping::as_slice`).
        unsafe { sys::unmap(addr, len) }.map_err(errno)
    }
    fn send(&mut self, line: &OutLine) -> Result<(), Errno> {
        if !self.out.push(line.as_bytes()) {
            self.write_lines();
            // A line is at most `MAX_OUT_LINE` bytes: it fits an empty batch.
            self.out.push(line.as_bytes());
        }
        self.out.acks += u32::from(line.is_ack());
        Ok(())
    }
    fn close(&mut self, fd: Fd) {
        self.write_lines();
        let Some(file) = self.fds.remove(&fd.0) else {
            return;
        };
        if !self.sh.forked.load(Ordering::Acquire) && self.closing.len() < DEFERRED_CLOSES {
            self.closing.push(file); // capacity reserved: no allocation
        }
    }
    fn vm_is_dirty(&mut self, vm: VmId, addr: usize, blk: u64) -> Result<bool, Errno> {
        self.sh.vms.is_dirty(vm, addr, blk)
    }
    fn vm_unlock(&mut self, vm: VmId) {
        self.sh.vms.unlock(vm);
    }
    fn close_link(&mut self) {
        self.write_lines();
        if self.sh.forked.load(Ordering::Acquire) {
            let fd = self.sh.link.swap(-1, Ordering::AcqRel);
            if fd >= 0 {
                sys::close_raw_no_write(fd);
            }
        } else {
            // Wake the pin thread if it is blocked on a socket; it closes the fd.
            let fd = self.sh.link.load(Ordering::Acquire);
            if fd >= 0 {
                // SAFETY: as in `write`.
                let _ = sys::shutdown_read(unsafe { BorrowedFd::borrow_raw(fd) });
            }
        }
    }
}

impl Sys<'_> {
    /// Writes the batched lines out in one write; what it did is left in
    /// the batch for `Shared::settle`.
    /// In a fork child the lines are dropped: the child says nothing.
    pub(crate) fn write_lines(&mut self) {
        if self.out.len == 0 {
            return;
        }
        if self.sh.forked.load(Ordering::Acquire) {
            self.out.len = 0;
            self.out.acks = 0;
            return;
        }
        match self.write(&self.out.buf[..self.out.len]) {
            Ok(()) => self.out.written_acks += self.out.acks,
            Err(e) => self.out.failed = Some(e),
        }
        self.out.len = 0;
        self.out.acks = 0;
    }

    fn write(&self, line: &[u8]) -> Result<(), Errno> {
        let fd = self.sh.link.load(Ordering::Acquire);
        if fd < 0 {
            return Err(Errno(libc::EPIPE));
        }
        // SAFETY: `link` is closed only where no other thread uses it (see
        // `Shared::link`), and we hold the state lock, so it is open now.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        sys::write_all(fd, line).map_err(errno)
    }
}

fn stat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    let (size, blksize) = sys::fstat_size_blksize(fd).map_err(errno)?;
    Ok(Stat { size, blksize })
}

fn open_stat(sh: &Shared, rel: &str) -> Result<(OwnedFd, Stat), Errno> {
    // A clone of the `Arc` (no allocation); none once the link has ended.
    let mount = sh.mount.lock().clone().ok_or(Errno(libc::ENOTCONN))?;
    let fd = mount.open_file(rel).map_err(errno)?;
    let st = stat(fd.as_fd())?;
    Ok((fd, st))
}

type Guard<'a> = SpinMutexGuard<'a, State>;

/// `Shared::closer` held; closes its files when dropped.
struct Closer<'a>(SpinMutexGuard<'a, Vec<Arc<OwnedFd>>>);

impl Drop for Closer<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> Guard<'_> {
        self.st.lock()
    }

    /// Performs every queued action through `perform_quick` (with the
    /// lock) or `perform_blocking` (without it, on `Mount`).
    pub(crate) fn drain<'a>(&'a self, mut st: Guard<'a>) -> Guard<'a> {
        // Lines go out in one write (a resync's watches, a burst of pins'
        // acks): `Sys::send` batches them in `out`, written out before any
        // other action but a remap, so the order of effects is kept except
        // that a remap may overtake lines queued before it. That keeps each
        // ack after its own pin's remaps (what the ack tells the server); a
        // remap done earlier than an unrelated line is written changes
        // nothing the server sees. A failed write brings the connection
        // down like any failed write (`settle`).
        let mut out = LineBatch::new();
        while let Some(a) = st.core.poll_action() {
            if a.is_blocking() {
                st = self.flush(st, &mut out);
                drop(st);
                let mut mount = Mount {
                    sh: self,
                    opened: None,
                    vm: self.vms.hook_for(&a),
                };
                let outcome = perform_blocking(&mut mount, &a);
                st = self.lock();
                if let Some(fd) = mount.opened {
                    if !matches!(a, Action::WaitHeadAt { .. }) {
                        st.fds.insert(fd.as_raw_fd(), Arc::new(fd));
                    } else if st.closing.len() < DEFERRED_CLOSES {
                        // The head/at file read: closed by the pin thread.
                        st.closing.push(Arc::new(fd));
                    }
                }
                if let Some(outcome) = outcome {
                    st.core.complete(&a, outcome);
                }
            } else {
                let (core, mut sys) = st.split(self, &mut out);
                if let Some(outcome) = perform_quick(&mut sys, &a) {
                    core.complete(&a, outcome);
                }
                self.settle(&mut st, &mut out);
            }
        }
        let mut st = self.flush(st, &mut out);
        if st.core.has_actions() {
            st = self.drain(st); // what a failed write queued
        }
        st
    }

    /// Writes the batched lines out, then `settle`.
    fn flush<'a>(&'a self, mut st: Guard<'a>, out: &mut LineBatch) -> Guard<'a> {
        st.split(self, out).1.write_lines();
        self.settle(&mut st, out);
        st
    }

    /// Tells the core what the batch's writes did: a failed write brings the
    /// connection down; each ack written records its pin's handling time.
    fn settle(&self, st: &mut State, out: &mut LineBatch) {
        if let Some(e) = out.failed.take() {
            st.core.handle_send_error(e);
        }
        if let (Some(t), n @ 1..) = (st.read_at, out.written_acks) {
            let ns = t.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            for _ in 0..n {
                st.core.record_pin_time(ns);
            }
            #[cfg(feature = "log")]
            if crate::oplog::is_slow(ns) {
                st.slow_pin_ns = st.slow_pin_ns.max(ns);
            }
        }
        out.written_acks = 0;
    }

    fn event(&self) -> u64 {
        self.ev.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn notify(&self) {
        let mut ev = self.ev.lock().unwrap_or_else(|e| e.into_inner());
        ev.0 += 1;
        if ev.1 > 0 {
            self.cv.notify_all();
        }
    }

    fn wait_event(&self, seen: u64, deadline: Option<Instant>) {
        let mut ev = self.ev.lock().unwrap_or_else(|e| e.into_inner());
        ev.1 += 1;
        let mut ev = match deadline {
            None => self
                .cv
                .wait_while(ev, |ev| ev.0 == seen)
                .unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                self.cv
                    .wait_timeout_while(ev, left, |ev| ev.0 == seen)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        ev.1 -= 1;
    }

    /// Runs a core call that starts an op, then drives the op to its end.
    pub(crate) fn run(
        &self,
        start: impl FnOnce(&mut wcfs_core::Conn) -> Result<OpId, wcfs_core::Error>,
    ) -> Result<OpOk, wcfs_core::Error> {
        self.run_until(start, None)
    }

    /// `run`, but past `deadline` the link is given up (`ETIMEDOUT`): the
    /// connection goes down and the op fails.
    pub(crate) fn run_until(
        &self,
        start: impl FnOnce(&mut wcfs_core::Conn) -> Result<OpId, wcfs_core::Error>,
        deadline: Option<Instant>,
    ) -> Result<OpOk, wcfs_core::Error> {
        let mut st = self.lock();
        // A call that fails at once may still have queued actions (going
        // down faults every mapping): drain them before returning.
        let op = match start(&mut st.core) {
            Ok(op) => op,
            Err(e) => {
                drop(self.drain(st));
                return Err(e);
            }
        };
        loop {
            st = self.drain(st);
            if let Some(r) = st.core.poll_op(op) {
                drop(self.drain(st));
                return r;
            }
            if st.core.has_actions() {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                st.core.abandon_link(Errno(libc::ETIMEDOUT));
                continue;
            }
            let seen = self.event();
            drop(st);
            self.wait_event(seen, deadline);
            st = self.lock();
        }
    }

    /// A core call that completes without the server.
    pub(crate) fn now<T>(&self, f: impl FnOnce(&mut wcfs_core::Conn) -> T) -> T {
        let mut st = self.lock();
        let r = f(&mut st.core);
        drop(self.drain(st));
        r
    }

    pub(crate) fn pin_loop(self: Arc<Self>) {
        /// Tells `close_conn` that the thread is over, however it ends.
        struct Ended<'a>(&'a Shared);
        impl Drop for Ended<'_> {
            fn drop(&mut self) {
                *self.0.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
                self.0.ended_cv.notify_all();
            }
        }
        let _ended = Ended(&self);
        #[cfg(feature = "log")]
        crate::oplog::pin_thread_started(&self);
        // What connect let go of (the head/at file it read).
        drop(self.take_closes(self.lock()));
        let mut buf = [0u8; 4096];
        loop {
            let fd = self.link.load(Ordering::Acquire);
            if fd < 0 {
                break;
            }
            // SAFETY: only this thread closes the link while it runs (see `link`).
            let r = sys::read_some(unsafe { BorrowedFd::borrow_raw(fd) }, &mut buf);
            let read_at = Instant::now();
            let mut st = self.lock();
            st.read_at = Some(read_at);
            let mut end = false;
            match r {
                Ok(0) => {
                    st.core.handle_eof();
                    end = true;
                }
                Ok(n) => {
                    let mut rest = &buf[..n];
                    while !rest.is_empty() {
                        let used = st.core.handle_bytes(rest);
                        rest = &rest[used..];
                        st = self.drain(st);
                    }
                }
                Err(e) => {
                    st.core.handle_link_error(errno(e));
                    end = true;
                }
            }
            st = self.drain(st);
            st.read_at = None;
            let reading = matches!(st.core.state(), ConnState::Up | ConnState::Closing);
            #[cfg(feature = "log")]
            let slow = (st.core.at(), std::mem::take(&mut st.slow_pin_ns));
            // Closed off the waiters' path: each close of a file of the
            // mount is a FLUSH round trip.
            let closer = self.take_closes(st);
            self.notify();
            drop(closer);
            #[cfg(feature = "log")]
            if slow.1 > 0 {
                crate::oplog::slow_pin(&self, slow.0, slow.1);
            }
            if end || !reading {
                break;
            }
        }
        let fd = self.link.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: we own the link fd and nobody else uses it any more.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        // What a user's call let go of after our last wake-up.
        drop(self.take_closes(self.lock()));
        // Nothing opens a file of the mount from now on: let go of it
        // before `close_conn` hears of our end.
        drop(self.mount.lock().take());
        #[cfg(feature = "log")]
        crate::oplog::pin_thread_ended(&self);
    }

    /// Moves the files let go of into `closer` and releases the state
    /// lock; dropping the guard closes them (see `Shared::closer`).
    fn take_closes(&self, mut st: Guard<'_>) -> Closer<'_> {
        let mut c = self.closer.lock();
        c.append(&mut st.closing); // capacity reserved: no allocation
        drop(st);
        Closer(c)
    }

    /// Waits until the pin thread has ended, at most `bound`; true if it has.
    pub(crate) fn wait_ended(&self, bound: Duration) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let (ended, _) = self
            .ended_cv
            .wait_timeout_while(ended, bound, |ended| !*ended)
            .unwrap_or_else(|e| e.into_inner());
        *ended
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let fd = self.link.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            if self.forked.load(Ordering::Acquire) {
                sys::close_raw_no_write(fd);
            } else {
                // SAFETY: no thread uses the link any more (we are its last owner).
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
}
