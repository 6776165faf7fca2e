//! The Linux driver of `wcfs-core`: the public API (`Wcfs`, `Conn`, `FileH`,
//! `Mapping`), the pin thread, and fork safety.
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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::relax::Yield;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{
    perform, Action, Backend, Config, ConnState, ConnStats, Errno, Fd, FileId, MapId, OpId, OpOk,
    Outcome, Src, Stat, Stats,
};

use crate::error::{Context, Error};
use crate::sys;

mod exit;
pub use exit::EXIT_LOCK_WAIT;

/// A mounted WCFS server.
#[derive(Clone)]
pub struct Wcfs {
    pub(crate) inner: Arc<WcfsInner>,
}

pub(crate) struct WcfsInner {
    mountpoint: PathBuf,
    pub(crate) mount: sys::Mount,
    zeros: sys::Zeros,
    next_conn: AtomicU64,
}

impl Wcfs {
    /// A WCFS mounted at `mountpoint`.
    pub fn open(mountpoint: impl AsRef<Path>) -> Result<Wcfs, Error> {
        let mountpoint = mountpoint.as_ref().to_path_buf();
        let ctx = || Context::wcfs(&mountpoint);
        let mount =
            sys::Mount::open(&mountpoint).map_err(|e| Error::io(ctx(), "open mountpoint", e))?;
        let zeros = sys::Zeros::open().map_err(|e| Error::io(ctx(), "open /dev/zero", e))?;
        Ok(Wcfs {
            inner: Arc::new(WcfsInner {
                mountpoint,
                mount,
                zeros,
                next_conn: AtomicU64::new(1),
            }),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.inner.mountpoint
    }

    /// `head/at` now.
    pub fn head_at(&self) -> Result<Tid, Error> {
        self.inner
            .head_at()
            .map_err(|e| Error::io(Context::wcfs(&self.inner.mountpoint), "read head/at", e))
    }

    /// A connection viewing the database as of `at`.
    pub fn connect(&self, at: Tid) -> Result<Conn, Error> {
        self.connect_with(at, Config::default())
    }

    pub fn connect_with(&self, at: Tid, cfg: Config) -> Result<Conn, Error> {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let ctx = Context::conn(&self.inner.mountpoint, id, at);
        // The last head/at file read is closed by the pin thread.
        let mut head_at_file = None;
        self.inner
            .wait_head_at(at, &mut head_at_file)
            .map_err(|e| Error::io(ctx.clone().op("connect"), "wait head/at", e))?;
        let link = self
            .inner
            .mount
            .open_watch()
            .map_err(|e| Error::io(ctx.clone().op("connect"), "open head/watch", e))?;
        let cfg = Config {
            page_size: sys::page_size(),
            ..cfg
        };
        Conn::start(self.inner.clone(), id, at, cfg, link, head_at_file)
    }

    /// A connection over an already open link (for tests: a socketpair end).
    pub fn connect_over(&self, at: Tid, link: OwnedFd) -> Result<Conn, Error> {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let cfg = Config {
            page_size: sys::page_size(),
            ..Config::default()
        };
        Conn::start(self.inner.clone(), id, at, cfg, link, None)
    }
}

impl WcfsInner {
    fn head_at(&self) -> std::io::Result<Tid> {
        self.head_at_keep().map(|(t, _)| t)
    }

    /// `head/at`, and its file still open (see `sys::Mount::read_tid_text`).
    fn head_at_keep(&self) -> std::io::Result<(Tid, OwnedFd)> {
        let mut buf = [0u8; 64];
        let (n, fd) = self.mount.read_tid_text("head/at", &mut buf)?;
        let s = std::str::from_utf8(&buf[..n]).unwrap_or("").trim_end();
        let head = Tid::parse(s).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("head/at {s:?}: {e}"),
            )
        })?;
        Ok((head, fd))
    }

    /// Waits until `head/at >= at`; the last `head/at` file read is left
    /// open in `last` for the caller to close off its path.
    fn wait_head_at(&self, at: Tid, last: &mut Option<OwnedFd>) -> std::io::Result<Tid> {
        let mut delay = Duration::from_micros(100);
        loop {
            let (head, fd) = self.head_at_keep()?;
            *last = Some(fd);
            if head >= at {
                return Ok(head);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    }
}

/// One connection's state, shared by the user's handles and the pin thread.
struct Shared {
    wcfs: Arc<WcfsInner>,
    id: u64,
    st: SpinMutex<State, Yield>,
    /// (events, waiters): the pin thread bumps `events` after each input
    /// and wakes `cv` only when someone waits (a wake is a syscall).
    ev: Mutex<(u64, usize)>,
    cv: Condvar,
    /// The watch link, -1 once closed. Closed only where no thread reads it:
    /// by the pin thread on exit, in a fork child, or on drop.
    link: AtomicI32,
    /// This process is a fork child of the one that made the connection.
    forked: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set by the pin thread as its last act (also when it unwinds);
    /// `close_conn` waits for it on `ended_cv`, bounded by `LINK_END_WAIT`.
    ended: Mutex<bool>,
    ended_cv: Condvar,
    /// Files the pin thread is closing, taken from `State::closing` under
    /// the state lock and held while it closes them: the fork handlers take
    /// it after the state lock, so a fork child sees each file either here
    /// (and closes it without a word) or already closed. Capacity
    /// `DEFERRED_CLOSES`, reserved.
    closer: SpinMutex<Vec<Arc<OwnedFd>>, Yield>,
    /// The core's counters, read without `st`.
    stats: Arc<Stats>,
}

struct State {
    core: wcfs_core::Conn,
    /// Files the core refers to by `Fd`. An `Arc` so that a blocking call
    /// made without the lock keeps its file open however the core moves on.
    fds: HashMap<i32, Arc<OwnedFd>>,
    /// Files the core let go of, not closed yet: closing a file of the
    /// mount is a FLUSH round trip, so the pin thread closes them after it
    /// has woken whoever waits (see `pin_loop`). At most `DEFERRED_CLOSES`
    /// (capacity reserved: pushing never allocates); past that, closed at
    /// once. Closed without a word in a fork child.
    closing: Vec<Arc<OwnedFd>>,
    /// When the pin thread read the input being handled: acks written
    /// while it is set record their pin's handling time.
    read_at: Option<Instant>,
}

/// Most files waiting in `State::closing`.
const DEFERRED_CLOSES: usize = 32;

/// The pin thread's stack: it reads into a 4 KiB buffer and drains with a
/// 4 KiB `LineBatch` (twice when a failed flush recurses), over core calls
/// that do not recurse. A small fixed stack keeps thread start cheap.
pub const PIN_THREAD_STACK: usize = 128 << 10;

/// Lines waiting to go out in one write. Fixed size: the pin path does not allocate.
struct LineBatch {
    buf: [u8; 4096],
    len: usize,
    /// Acks among the lines.
    acks: u32,
}

impl LineBatch {
    fn new() -> LineBatch {
        LineBatch {
            buf: [0; 4096],
            len: 0,
            acks: 0,
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

/// The backend the core's quick actions run on, with the lock held.
struct Sys<'a> {
    sh: &'a Shared,
    fds: &'a mut HashMap<i32, Arc<OwnedFd>>,
    closing: &'a mut Vec<Arc<OwnedFd>>,
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

impl Backend for Sys<'_> {
    // The blocking calls are performed unlocked by `Shared::blocking`; these
    // serve only drivers that run everything under the lock (none here).
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        self.sh.wcfs.wait_head_at(at, &mut None).map_err(errno)
    }
    fn open_head(&mut self, oid: Oid) -> Result<(Fd, Stat), Errno> {
        let (fd, st) = open_stat(&self.sh.wcfs, &format!("head/bigfile/{oid}"))?;
        Ok((self.keep(fd), st))
    }
    fn open_rev(&mut self, oid: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        let (fd, st) = open_stat(&self.sh.wcfs, &format!("@{rev}/bigfile/{oid}"))?;
        Ok((self.keep(fd), st))
    }
    fn stat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        stat(self.fd(fd)?)
    }
    fn map_new(&mut self, fd: Fd, offset: u64, len: usize) -> Result<usize, Errno> {
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
    fn unmap(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        // SAFETY: as for `map_fixed`: the range is a mapping this connection
        // placed; the core forgets it with this action, and `Mapping` hands
        // out no references that outlive it (see `Mapping::as_slice`).
        unsafe { sys::unmap(addr, len) }.map_err(errno)
    }
    fn send(&mut self, line: &[u8]) -> Result<(), Errno> {
        let fd = self.sh.link.load(Ordering::Acquire);
        if fd < 0 {
            return Err(Errno(libc::EPIPE));
        }
        // SAFETY: `link` is closed only where no other thread uses it (see
        // `Shared::link`), and we hold the state lock, so it is open now.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        sys::write_all(fd, line).map_err(errno)
    }
    fn close(&mut self, fd: Fd) {
        let Some(file) = self.fds.remove(&fd.0) else {
            return;
        };
        if !self.sh.forked.load(Ordering::Acquire) && self.closing.len() < DEFERRED_CLOSES {
            self.closing.push(file); // capacity reserved: no allocation
        }
    }
    fn close_link(&mut self) {
        if self.sh.forked.load(Ordering::Acquire) {
            let fd = self.sh.link.swap(-1, Ordering::AcqRel);
            if fd >= 0 {
                sys::close_raw_no_write(fd);
            }
        } else {
            // Wake the pin thread if it is blocked on a socket; it closes the fd.
            let fd = self.sh.link.load(Ordering::Acquire);
            if fd >= 0 {
                // SAFETY: as in `send`.
                let _ = sys::shutdown_read(unsafe { BorrowedFd::borrow_raw(fd) });
            }
        }
    }
}

impl Sys<'_> {
    fn keep(&mut self, fd: OwnedFd) -> Fd {
        let raw = fd.as_raw_fd();
        self.fds.insert(raw, Arc::new(fd));
        Fd(raw)
    }
}

fn stat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    let (size, blksize) = sys::fstat_size_blksize(fd).map_err(errno)?;
    Ok(Stat { size, blksize })
}

fn open_stat(w: &WcfsInner, rel: &str) -> Result<(OwnedFd, Stat), Errno> {
    let fd = w.mount.open_file(rel).map_err(errno)?;
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
    fn lock(&self) -> Guard<'_> {
        self.st.lock()
    }

    /// Performs every queued action; blocking ones with the lock released.
    fn drain<'a>(&'a self, mut st: Guard<'a>) -> Guard<'a> {
        // Lines go out in one write (a resync's watches, a burst of pins'
        // acks): `out` is flushed before any other action but a remap, so
        // the order of effects is kept except that a remap may overtake
        // lines queued before it. That keeps each ack after its own pin's
        // remaps (what the ack tells the server); a remap done earlier than
        // an unrelated line is written changes nothing the server sees. A
        // failed flush brings the connection down like any failed write.
        let mut out = LineBatch::new();
        while let Some(a) = st.core.poll_action() {
            if let Action::Send(line) = &a {
                if !out.push(line.as_bytes()) {
                    st = self.flush(st, &mut out);
                    out.push(line.as_bytes());
                }
                out.acks += u32::from(line.is_ack());
                st.core.complete(&a, Outcome::Done);
                continue;
            }
            if !matches!(a, Action::Map { .. }) {
                st = self.flush(st, &mut out);
            }
            if a.is_blocking() {
                drop(st);
                let (outcome, fd) = self.blocking(&a);
                st = self.lock();
                if let Some(fd) = fd {
                    if !matches!(a, Action::WaitHeadAt { .. }) {
                        st.fds.insert(fd.as_raw_fd(), Arc::new(fd));
                    } else if st.closing.len() < DEFERRED_CLOSES {
                        // The head/at file read: closed by the pin thread.
                        st.closing.push(Arc::new(fd));
                    }
                }
                st.core.complete(&a, outcome);
            } else {
                let State {
                    core, fds, closing, ..
                } = &mut *st;
                let outcome = perform(
                    &mut Sys {
                        sh: self,
                        fds,
                        closing,
                    },
                    &a,
                );
                core.complete(&a, outcome);
            }
        }
        let mut st = self.flush(st, &mut out);
        if st.core.has_actions() {
            st = self.drain(st); // what a failed flush queued
        }
        st
    }

    fn flush<'a>(&'a self, mut st: Guard<'a>, out: &mut LineBatch) -> Guard<'a> {
        if out.len == 0 {
            return st;
        }
        let State {
            core,
            fds,
            closing,
            read_at,
        } = &mut *st;
        let sent = (Sys {
            sh: self,
            fds,
            closing,
        })
        .send(&out.buf[..out.len]);
        match (sent, *read_at) {
            (Err(e), _) => core.handle_send_error(e),
            (Ok(()), Some(t)) if out.acks > 0 => {
                let ns = t.elapsed().as_nanos().min(u64::MAX as u128) as u64;
                for _ in 0..out.acks {
                    core.record_pin_time(ns);
                }
            }
            _ => {}
        }
        out.len = 0;
        out.acks = 0;
        st
    }

    /// A call into the mount, made without the lock.
    fn blocking(&self, a: &Action) -> (Outcome, Option<OwnedFd>) {
        let opened = |r: Result<(OwnedFd, Stat), Errno>| match r {
            Ok((fd, st)) => (Outcome::Opened(Fd(fd.as_raw_fd()), st), Some(fd)),
            Err(e) => (Outcome::Failed(e), None),
        };
        match *a {
            Action::WaitHeadAt { at, .. } => {
                let mut fd = None;
                let r = self.wcfs.wait_head_at(at, &mut fd);
                (
                    r.map_or_else(|e| Outcome::Failed(errno(e)), Outcome::HeadAt),
                    fd,
                )
            }
            Action::OpenHead { oid, .. } => {
                opened(open_stat(&self.wcfs, &format!("head/bigfile/{oid}")))
            }
            Action::OpenRev { oid, rev, .. } => {
                opened(open_stat(&self.wcfs, &format!("@{rev}/bigfile/{oid}")))
            }
            Action::StatHead { fd, .. } => {
                // Hold the file while we stat it: a close may run meanwhile.
                let file = self.lock().fds.get(&fd.0).cloned();
                match file {
                    Some(f) => (
                        stat(f.as_fd()).map_or_else(Outcome::Failed, Outcome::Stat),
                        None,
                    ),
                    None => (Outcome::Failed(Errno(libc::EBADF)), None),
                }
            }
            _ => unreachable!("not a blocking action"),
        }
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
    fn run(
        &self,
        start: impl FnOnce(&mut wcfs_core::Conn) -> Result<OpId, wcfs_core::Error>,
    ) -> Result<OpOk, wcfs_core::Error> {
        self.run_until(start, None)
    }

    /// `run`, but past `deadline` the link is given up (`ETIMEDOUT`): the
    /// connection goes down and the op fails.
    fn run_until(
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
    fn now<T>(&self, f: impl FnOnce(&mut wcfs_core::Conn) -> T) -> T {
        let mut st = self.lock();
        let r = f(&mut st.core);
        drop(self.drain(st));
        r
    }

    fn pin_loop(self: Arc<Self>) {
        /// Tells `close_conn` that the thread is over, however it ends.
        struct Ended<'a>(&'a Shared);
        impl Drop for Ended<'_> {
            fn drop(&mut self) {
                *self.0.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
                self.0.ended_cv.notify_all();
            }
        }
        let _ended = Ended(&self);
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
            // Closed off the waiters' path: each close of a file of the
            // mount is a FLUSH round trip.
            let closer = self.take_closes(st);
            self.notify();
            drop(closer);
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
    fn wait_ended(&self, bound: Duration) -> bool {
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

// ---- fork ----

static CONNS: SpinMutex<Vec<Weak<Shared>>, Yield> = SpinMutex::new(Vec::new());
static ATFORK: Once = Once::new();

fn register(sh: &Arc<Shared>) {
    ATFORK.call_once(|| {
        // SAFETY: the handlers only lock/unlock our spin locks and, in the
        // child, perform the core's fork actions (mmap, close) with the
        // locks taken by `prepare` in the forking thread.
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        debug_assert_eq!(rc, 0);
        // SAFETY: the handler only tries our locks and says `bye` (exit.rs).
        let rc = unsafe { libc::atexit(exit::at_exit) };
        debug_assert_eq!(rc, 0);
    });
    let mut conns = CONNS.lock();
    conns.retain(|w| w.strong_count() > 0);
    conns.push(Arc::downgrade(sh));
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
        while let Some(a) = st.core.poll_action() {
            let outcome = perform(
                &mut Sys {
                    sh,
                    fds: &mut st.fds,
                    closing: &mut st.closing,
                },
                &a,
            );
            st.core.complete(&a, outcome);
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

// ---- the public handles ----

/// A view of the database as of `at()`. Cheap to clone; the connection
/// closes when the last clone (and every `FileH` and `Mapping` of it) is gone.
#[derive(Clone)]
pub struct Conn {
    h: Arc<ConnHandle>,
}

struct ConnHandle {
    sh: Arc<Shared>,
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        let _ = close_conn(&self.sh);
    }
}

/// How long closing a connection waits for the server to end the link.
pub const LINK_END_WAIT: Duration = Duration::from_secs(10);

fn close_conn(sh: &Arc<Shared>) -> Result<(), wcfs_core::Error> {
    // The close op ends at the link's EOF, which the server sends after our
    // `bye`. A server that never ends the link must not hang us: past
    // `LINK_END_WAIT` the link is given up (its reading end shut down).
    let deadline = Instant::now() + LINK_END_WAIT;
    let r = match sh.run_until(|c| c.close(), Some(deadline)) {
        Ok(_) => Ok(()),
        Err(wcfs_core::Error::ConnClosed) => Ok(()),
        Err(e) => Err(e),
    };
    let t = sh.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(t) = t {
        if sh.forked.load(Ordering::Acquire) {
            std::mem::forget(t); // the thread does not exist in this process
        } else if t.thread().id() != std::thread::current().id() {
            // The pin thread ends at the link's EOF (or once the link is
            // given up); it says so as its last act, and we wait for that,
            // within what is left of the bound; past it the thread is left
            // to end on its own.
            if sh.wait_ended(deadline.saturating_duration_since(Instant::now())) {
                let _ = t.join();
            }
        }
    }
    r
}

impl Conn {
    fn start(
        wcfs: Arc<WcfsInner>,
        id: u64,
        at: Tid,
        cfg: Config,
        link: OwnedFd,
        to_close: Option<OwnedFd>,
    ) -> Result<Conn, Error> {
        let core = wcfs_core::Conn::new(at, cfg);
        let stats = core.stats_handle();
        let mut closing = Vec::with_capacity(DEFERRED_CLOSES);
        closing.extend(to_close.map(Arc::new));
        let sh = Arc::new(Shared {
            wcfs,
            id,
            st: SpinMutex::new(State {
                core,
                fds: HashMap::new(),
                closing,
                read_at: None,
            }),
            ev: Mutex::new((0, 0)),
            cv: Condvar::new(),
            link: AtomicI32::new(std::os::fd::IntoRawFd::into_raw_fd(link)),
            forked: AtomicBool::new(false),
            thread: Mutex::new(None),
            ended: Mutex::new(false),
            ended_cv: Condvar::new(),
            closer: SpinMutex::new(Vec::with_capacity(DEFERRED_CLOSES)),
            stats,
        });
        register(&sh);
        let t = {
            let sh = sh.clone();
            std::thread::Builder::new()
                .name(format!("wcfs-pin-{id}"))
                .stack_size(PIN_THREAD_STACK)
                .spawn(move || sh.pin_loop())
                .map_err(|e| {
                    Error::io(
                        Context::conn(&PathBuf::new(), id, at),
                        "spawn pin thread",
                        e,
                    )
                })?
        };
        *sh.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        Ok(Conn {
            h: Arc::new(ConnHandle { sh }),
        })
    }

    fn sh(&self) -> &Arc<Shared> {
        &self.h.sh
    }

    fn ctx(&self) -> Context {
        Context::conn(&self.sh().wcfs.mountpoint, self.sh().id, self.at())
    }

    pub fn id(&self) -> u64 {
        self.sh().id
    }

    /// The revision this connection views.
    pub fn at(&self) -> Tid {
        self.sh().lock().core.at()
    }

    /// The connection's statistics now: read without the connection's lock,
    /// so without stopping its pin thread.
    pub fn stats(&self) -> ConnStats {
        self.sh().stats.snapshot()
    }

    /// Why the connection is down, if it is.
    pub fn down_reason(&self) -> Option<wcfs_core::Error> {
        self.sh().lock().core.down_reason().cloned()
    }

    /// Opens bigfile `oid` (the same file again gives another handle on it).
    pub fn open(&self, oid: Oid) -> Result<FileH, Error> {
        let ctx = self.ctx().op(format!("open f<{oid}>"));
        match self.sh().run(|c| c.open(oid)) {
            Ok(OpOk::Opened(id)) => {
                let blksize = self.sh().lock().core.file_blksize(id).unwrap_or(0);
                Ok(FileH {
                    f: Arc::new(FileInner {
                        conn: self.clone(),
                        id,
                        oid,
                        blksize,
                        closed: AtomicBool::new(false),
                    }),
                })
            }
            Ok(o) => unreachable!("open yielded {o:?}"),
            Err(e) => Err(Error::core(ctx, e)),
        }
    }

    /// Moves the view forward to `at` (never back: that brings the connection down).
    pub fn resync(&self, at: Tid) -> Result<(), Error> {
        let ctx = self.ctx().op(format!("resync -> @{at}"));
        self.sh()
            .run(|c| c.resync(at))
            .map(|_| ())
            .map_err(|e| Error::core(ctx, e))
    }

    /// Closes the connection: every mapping faults from now on.
    pub fn close(&self) -> Result<(), Error> {
        let ctx = self.ctx().op("close");
        close_conn(self.sh()).map_err(|e| Error::core(ctx, e))
    }
}

/// One open bigfile of a connection. Cheap to clone; the file closes when
/// the last clone and every mapping of it are gone, or at `close()`.
#[derive(Clone)]
pub struct FileH {
    f: Arc<FileInner>,
}

struct FileInner {
    conn: Conn,
    id: FileId,
    oid: Oid,
    blksize: u64,
    closed: AtomicBool,
}

impl FileInner {
    fn close(&self) -> Result<(), wcfs_core::Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.conn.sh().run(|c| c.close_file(self.id)).map(|_| ())
    }
}

impl Drop for FileInner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl FileH {
    pub fn oid(&self) -> Oid {
        self.f.oid
    }

    pub fn blksize(&self) -> u64 {
        self.f.blksize
    }

    fn ctx(&self) -> Context {
        self.f.conn.ctx().file(self.f.oid)
    }

    /// Maps blocks `[blk_start, blk_start + blk_len)` as of the connection's `at`.
    pub fn mmap(&self, blk_start: u64, blk_len: u64) -> Result<Mapping, Error> {
        let ctx = self.ctx().op(format!("mmap #{blk_start}+{blk_len}"));
        if self.f.closed.load(Ordering::Acquire) {
            return Err(Error::core(ctx, wcfs_core::Error::FileClosed));
        }
        let sh = self.f.conn.sh();
        match sh.run(|c| c.mmap(self.f.id, blk_start, blk_len)) {
            Ok(OpOk::Mapped(id)) => {
                let addr = sh.lock().core.mapping(id).map_or(0, |m| m.addr);
                Ok(Mapping {
                    m: Arc::new(MapInner {
                        file: self.clone(),
                        id,
                        addr,
                        len: (blk_len * self.f.blksize) as usize,
                        blk_start,
                        blk_len,
                        unmapped: AtomicBool::new(false),
                    }),
                })
            }
            Ok(o) => unreachable!("mmap yielded {o:?}"),
            Err(e) => Err(Error::core(ctx, e)),
        }
    }

    /// Maps blocks `[blk_start, blk_start + blk_len)` as of the connection's
    /// `at` over the caller's range `[addr, addr + len)` (`MAP_FIXED`), and
    /// from then on manages it like a mapping of its own: pins, resync,
    /// zeros past the file's end, faulting after close, after the
    /// connection goes down, and in a fork child.
    ///
    /// The range stays the caller's: when the mapping is unmapped (or its
    /// last clone dropped), and when this call fails after touching the
    /// range, the range is left reserved for its owner, inaccessible (an
    /// anonymous `PROT_NONE` mapping), never given back to the OS; the
    /// caller may map into it again or release it with `munmap`. A range
    /// refused up front (misaligned, wrong length, overlapping a mapping of
    /// this connection) is not touched.
    ///
    /// For a virtual-memory layer that lays private pages over blocks it
    /// writes: call [`Mapping::mark_dirty`] for the block *before* laying the
    /// page over it (`MAP_FIXED`), so that a pin arriving meanwhile does not
    /// replace that page; after dropping the page, [`Mapping::remap_blk`]
    /// makes the block show the data as of `at` again.
    ///
    /// # Safety
    ///
    /// * The caller owns `[addr, addr + len)`: memory of this process it
    ///   mapped itself (e.g. reserved with `mmap(PROT_NONE)`), which nothing
    ///   else (an allocator, another mapping) uses.
    /// * No Rust reference points into the range while the mapping lives:
    ///   pins, resync and close replace its pages under any reader.
    /// * While the mapping lives the caller does not unmap or remap the
    ///   range itself, except private pages over blocks it marked dirty.
    /// * `addr` is page-aligned and `len == blk_len * self.blksize()`;
    ///   otherwise the call fails (`BadAddress` / `BadLength`) untouched.
    pub unsafe fn mmap_at(
        &self,
        blk_start: u64,
        blk_len: u64,
        addr: *mut u8,
        len: usize,
    ) -> Result<Mapping, Error> {
        let ctx = self
            .ctx()
            .op(format!("mmap #{blk_start}+{blk_len} at {addr:p}+{len:#x}"));
        if self.f.closed.load(Ordering::Acquire) {
            return Err(Error::core(ctx, wcfs_core::Error::FileClosed));
        }
        let sh = self.f.conn.sh();
        match sh.run(|c| c.mmap_at(self.f.id, blk_start, blk_len, addr as usize, len)) {
            Ok(OpOk::Mapped(id)) => Ok(Mapping {
                m: Arc::new(MapInner {
                    file: self.clone(),
                    id,
                    addr: addr as usize,
                    len,
                    blk_start,
                    blk_len,
                    unmapped: AtomicBool::new(false),
                }),
            }),
            Ok(o) => unreachable!("mmap_at yielded {o:?}"),
            Err(e) => Err(Error::core(ctx, e)),
        }
    }

    /// Pins in force (block -> revision), for tests.
    pub fn pinned(&self) -> Vec<(u64, Tid)> {
        self.f.conn.sh().lock().core.pinned(self.f.id)
    }

    /// Closes the file now (for every clone): its mappings fault from now on.
    pub fn close(&self) -> Result<(), Error> {
        self.f
            .close()
            .map_err(|e| Error::core(self.ctx().op("close"), e))
    }
}

/// A memory mapping of blocks of a file, showing the data as of the
/// connection's `at`.
///
/// # When the bytes change
///
/// Pins keep every byte equal to the data as of `at`: a pin replaces a page
/// by another with the same bytes. So the bytes change only when the
/// connection is resynced (they become the data as of the new `at`), or when
/// the file or connection is closed, the connection goes down, or the
/// process forks (then every page faults on access: SIGSEGV).
/// [`Mapping::read`] copies bytes out; [`Mapping::as_slice`] lends them, and
/// is `unsafe` because the borrow checker cannot see resync and close.
#[derive(Clone)]
pub struct Mapping {
    m: Arc<MapInner>,
}

struct MapInner {
    file: FileH,
    id: MapId,
    addr: usize,
    len: usize,
    blk_start: u64,
    blk_len: u64,
    unmapped: AtomicBool,
}

impl MapInner {
    fn unmap(&self) -> Result<(), wcfs_core::Error> {
        if self.unmapped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.file.f.conn.sh().now(|c| c.unmap(self.id))
    }
}

impl Drop for MapInner {
    fn drop(&mut self) {
        let _ = self.unmap();
    }
}

impl Mapping {
    pub fn addr(&self) -> *const u8 {
        self.m.addr as *const u8
    }

    pub fn len(&self) -> usize {
        self.m.len
    }

    pub fn is_empty(&self) -> bool {
        self.m.len == 0
    }

    pub fn blk_start(&self) -> u64 {
        self.m.blk_start
    }

    pub fn blk_stop(&self) -> u64 {
        self.m.blk_start + self.m.blk_len
    }

    pub fn file(&self) -> &FileH {
        &self.m.file
    }

    fn ctx(&self) -> Context {
        self.m.file.ctx()
    }

    /// Whether the mapping's memory faults (file or connection closed or
    /// down, or a fork child).
    pub fn is_faulting(&self) -> bool {
        let sh = self.m.file.f.conn.sh();
        let st = sh.lock();
        st.core.mapping(self.m.id).is_none_or(|m| m.faulting)
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`. Fails instead of
    /// faulting when the mapping is known to fault; a close racing with the
    /// copy still faults (as any memory unmapped under a reader).
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let end = offset.checked_add(buf.len()).filter(|&e| e <= self.m.len);
        if end.is_none() {
            return Err(Error::core(
                self.ctx().op("read"),
                wcfs_core::Error::BadRange,
            ));
        }
        if self.m.unmapped.load(Ordering::Acquire) || self.is_faulting() {
            return Err(Error::core(
                self.ctx().op("read"),
                wcfs_core::Error::FileClosed,
            ));
        }
        // SAFETY: `[addr+offset, +len)` lies inside this live mapping (checked
        // above); the memory is readable (not faulting) and nothing in Rust
        // writes it. Pages may be replaced concurrently by pins with equal
        // bytes, which a byte copy tolerates.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (self.m.addr + offset) as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// The mapped bytes.
    ///
    /// # Safety
    ///
    /// While the slice lives, the caller must not resync the connection, nor
    /// close or drop (the last handle of) the file or connection, nor unmap
    /// this mapping: each changes the bytes or makes them fault.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is this live mapping; the caller keeps it stable.
        unsafe { std::slice::from_raw_parts(self.m.addr as *const u8, self.m.len) }
    }

    /// The user's VM layer laid a private page over block `blk`: pins leave it alone.
    pub fn mark_dirty(&self, blk: u64) -> Result<(), Error> {
        let sh = self.m.file.f.conn.sh();
        sh.now(|c| c.mark_dirty(self.m.id, blk))
            .map_err(|e| Error::core(self.ctx().op(format!("mark_dirty #{blk}")), e))
    }

    /// The dirty page over `blk` is gone: map the block per the pins in force.
    pub fn remap_blk(&self, blk: u64) -> Result<(), Error> {
        let sh = self.m.file.f.conn.sh();
        sh.run(|c| c.remap_blk(self.m.id, blk))
            .map(|_| ())
            .map_err(|e| Error::core(self.ctx().op(format!("remap_blk #{blk}")), e))
    }

    /// Releases the memory now (for every clone).
    pub fn unmap(&self) -> Result<(), Error> {
        self.m
            .unmap()
            .map_err(|e| Error::core(self.ctx().op("unmap"), e))
    }
}

/// The handles may be shared between threads.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Wcfs>();
    is::<Conn>();
    is::<FileH>();
    is::<Mapping>();
}

impl std::fmt::Debug for Wcfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wcfs({})", self.inner.mountpoint.display())
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn(conn{} @{})", self.id(), self.at())
    }
}

impl std::fmt::Debug for FileH {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileH(f<{}>)", self.f.oid)
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mapping(f<{}> #{}..#{} at {:#x})",
            self.m.file.f.oid,
            self.blk_start(),
            self.blk_stop(),
            self.m.addr
        )
    }
}
