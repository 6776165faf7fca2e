//! The public handles: `Wcfs` (a mounted server), `Conn` (a view of the
//! database as of a revision), `FileH` (an open bigfile) and `Mapping` (a
//! memory mapping of its blocks). Each call runs the core through the
//! connection's driver (`driver.rs`); no protocol decision is taken here.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use spin::mutex::SpinMutex;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, ConnStats, FileId, MapId, OpOk};

use crate::driver::{Shared, State, DEFERRED_CLOSES, PIN_THREAD_STACK};
use crate::error::{Context, Error};
use crate::mountdir::MountDir;
use crate::sys;
use crate::wcfs::WcfsInner;
use crate::{conns, exit, fork};

/// A mounted WCFS server.
#[derive(Clone)]
pub struct Wcfs {
    pub(crate) inner: Arc<WcfsInner>,
}

impl Wcfs {
    /// A WCFS mounted at `mountpoint`.
    ///
    /// A `Wcfs` holds no descriptor inside the mount of its own: its live
    /// connections and watch links share one on the mountpoint, let go of
    /// with the last of them (a connection lets go when its link ends: at
    /// `close`, or when it goes down). With none live, each call opens the
    /// mountpoint for itself. So once every connection is closed, the
    /// process keeps the mount busy no more (`fusermount3 -u` succeeds).
    pub fn open(mountpoint: impl AsRef<Path>) -> Result<Wcfs, Error> {
        let mountpoint = mountpoint.as_ref().to_path_buf();
        let ctx = || Context::wcfs(&mountpoint);
        let mount = MountDir::new(&mountpoint);
        // Checked now, let go of at once: a `Wcfs` holds no descriptor of its own.
        drop(
            mount
                .get()
                .map_err(|e| Error::io(ctx(), "open mountpoint", e))?,
        );
        let zeros = sys::Zeros::open().map_err(|e| Error::io(ctx(), "open /dev/zero", e))?;
        Ok(Wcfs {
            inner: Arc::new(WcfsInner::new(mountpoint, mount, zeros)),
        })
    }

    /// Where the server is mounted.
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

    /// [`Wcfs::connect`] with tunables (the page size is always the OS's).
    pub fn connect_with(&self, at: Tid, cfg: Config) -> Result<Conn, Error> {
        let id = self.inner.next_conn_id();
        let ctx = Context::conn(&self.inner.mountpoint, id, at);
        // The last head/at file read is closed by the pin thread.
        let mut head_at_file = None;
        let mount = self
            .inner
            .mount
            .get()
            .map_err(|e| Error::io(ctx.clone().op("connect"), "open mountpoint", e))?;
        self.inner
            .wait_head_at(at, &mut head_at_file)
            .map_err(|e| Error::io(ctx.clone().op("connect"), "wait head/at", e))?;
        let link = mount
            .open_watch()
            .map_err(|e| Error::io(ctx.clone().op("connect"), "open head/watch", e))?;
        let cfg = Config {
            page_size: sys::page_size(),
            ..cfg
        };
        Conn::start(self.inner.clone(), mount, id, at, cfg, link, head_at_file)
    }

    /// A connection over an already open link (for tests: a socketpair end).
    pub fn connect_over(&self, at: Tid, link: OwnedFd) -> Result<Conn, Error> {
        let id = self.inner.next_conn_id();
        let cfg = Config {
            page_size: sys::page_size(),
            ..Config::default()
        };
        let mount = self.inner.mount.get().map_err(|e| {
            Error::io(
                Context::conn(&self.inner.mountpoint, id, at).op("connect"),
                "open mountpoint",
                e,
            )
        })?;
        Conn::start(self.inner.clone(), mount, id, at, cfg, link, None)
    }
}

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
        mount: Arc<sys::Mount>,
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
            mount: SpinMutex::new(Some(mount)),
            id,
            st: SpinMutex::new(State {
                core,
                fds: HashMap::new(),
                closing,
                read_at: None,
                #[cfg(feature = "log")]
                slow_pin_ns: 0,
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
            vms: Default::default(),
        });
        // The handlers that act on every connection, then this one listed.
        fork::install();
        exit::install();
        conns::register(&sh);
        let ctx = Context::conn(&sh.wcfs.mountpoint, id, at);
        let t = {
            let sh = sh.clone();
            std::thread::Builder::new()
                .name(format!("wcfs-pin-{id}"))
                .stack_size(PIN_THREAD_STACK)
                .spawn(move || sh.pin_loop())
                .map_err(|e| Error::io(ctx, "spawn pin thread", e))?
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

    /// This connection's number, unique within its `Wcfs` (`conn<N>` in errors).
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

    /// Closes the connection: every mapping faults from now on, and once
    /// it returns nothing of the connection holds the mount busy (its link
    /// has ended; see [`Wcfs::open`]), unless the server left the link
    /// open past `LINK_END_WAIT`: then its pin thread lets go as it ends.
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
    /// The bigfile this handle shows.
    pub fn oid(&self) -> Oid {
        self.f.oid
    }

    /// The file's block size (`st_blksize` of its head file; never changes).
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
    /// anonymous `PROT_NONE` mapping; should the OS refuse that, the same
    /// file mapping `mprotect`ed to `PROT_NONE`, and should it refuse that
    /// too, `unmap` says so), never given back to the OS; the caller may
    /// map into it again or release it with `munmap`. A range
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
        // SAFETY: the caller's contract is this function's.
        unsafe { self.map_over(blk_start, blk_len, addr, len, None) }
    }

    /// `mmap_at`, as the base layer of `vm`'s area when given (`mmap_vm`).
    ///
    /// # Safety
    ///
    /// That of [`FileH::mmap_at`].
    pub(crate) unsafe fn map_over(
        &self,
        blk_start: u64,
        blk_len: u64,
        addr: *mut u8,
        len: usize,
        vm: Option<&Arc<dyn crate::vm::Vm>>,
    ) -> Result<Mapping, Error> {
        let ctx = self
            .ctx()
            .op(format!("mmap #{blk_start}+{blk_len} at {addr:p}+{len:#x}"));
        if self.f.closed.load(Ordering::Acquire) {
            return Err(Error::core(ctx, wcfs_core::Error::FileClosed));
        }
        let sh = self.f.conn.sh();
        let (id, addr) = (self.f.id, addr as usize);
        match sh.run(|c| match vm {
            None => c.mmap_at(id, blk_start, blk_len, addr, len),
            Some(vm) => c.mmap_vm(id, blk_start, blk_len, addr, len, sh.vms.register(c, vm)),
        }) {
            Ok(OpOk::Mapped(id)) => Ok(Mapping {
                m: Arc::new(MapInner {
                    file: self.clone(),
                    id,
                    addr,
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
    /// `Err` also when the OS refused what this unmap asked of it (to
    /// release the range, or to make a caller's range inaccessible): the
    /// connection went down for it, and says why.
    fn unmap(&self) -> Result<(), wcfs_core::Error> {
        if self.unmapped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let sh = self.file.f.conn.sh();
        let mut st = sh.lock();
        st.core.unmap(self.id)?;
        let mut st = sh.drain(st);
        match st.core.take_unmap_refusal() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for MapInner {
    fn drop(&mut self) {
        let _ = self.unmap();
    }
}

impl Mapping {
    /// The first byte of the mapping (block `blk_start`).
    pub fn addr(&self) -> *const u8 {
        self.m.addr as *const u8
    }

    /// Bytes spanned: `(blk_stop - blk_start) * blksize`.
    pub fn len(&self) -> usize {
        self.m.len
    }

    /// Whether the mapping spans no byte (never: mappings have at least one block).
    pub fn is_empty(&self) -> bool {
        self.m.len == 0
    }

    /// The first block mapped.
    pub fn blk_start(&self) -> u64 {
        self.m.blk_start
    }

    /// The block after the last one mapped.
    pub fn blk_stop(&self) -> u64 {
        self.m.blk_start + self.m.blk_len
    }

    /// The file this mapping shows.
    pub fn file(&self) -> &FileH {
        &self.m.file
    }

    fn ctx(&self) -> Context {
        self.m.file.ctx()
    }

    /// Whether the mapping's memory faults (file or connection closed or
    /// down, or a fork child).
    pub fn is_faulting(&self) -> bool {
        self.with_core(|m| m.is_none_or(|m| m.faulting))
    }

    /// Whether the view ended but the OS refused both to lay inaccessible
    /// memory over it and to `mprotect` it: the memory may still show the
    /// bytes it showed then. `read` refuses it as faulting; raw accesses
    /// through `addr` must not rely on a fault. Only after two refused
    /// syscalls, each of which took the connection down.
    pub fn is_exposed(&self) -> bool {
        self.with_core(|m| m.is_some_and(|m| m.exposed))
    }

    /// Runs `f` on the core's record of this mapping (`None` once unmapped).
    fn with_core<R>(&self, f: impl FnOnce(Option<&wcfs_core::mapping::Mapping>) -> R) -> R {
        let sh = self.m.file.f.conn.sh();
        let st = sh.lock();
        f(st.core.mapping(self.m.id))
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
        let why = if self.m.unmapped.load(Ordering::Acquire) {
            Err(wcfs_core::Error::NoSuchMapping)
        } else {
            let sh = self.m.file.f.conn.sh();
            let st = sh.lock();
            st.core.check_mapped(self.m.id)
        };
        why.map_err(|e| Error::core(self.ctx().op("read"), e))?;
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

    /// Releases the memory now (for every clone); a range of the caller's
    /// (`mmap_at`) is left reserved and inaccessible instead.
    ///
    /// `Err` when the OS refused to do so (the connection goes down for
    /// it): for a caller's range, the memory may then still show what it
    /// showed, so map over it yourself before relying on a fault. Errors of
    /// a connection already down are not repeated.
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
