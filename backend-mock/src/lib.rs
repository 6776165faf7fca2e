//! A recording, deterministic mock OS for `wcfs-core`.
//!
//! [`MockBackend`] performs every [`Backend`] call on a simulated file table
//! and address space, and records it in order ([`Call`]), so tests can assert
//! exact traces and count syscalls. [`MockBackend::read`] reads simulated
//! memory through a caller-supplied data source, faulting where the memory
//! faults or is unmapped. [`FaultInjector`] wraps any backend and fails
//! operations by seeded chances named per [`OsOp`]. No threads, no clocks,
//! no randomness but the injector's seed.

use std::collections::BTreeMap;
use std::fmt;

pub mod user_op;

use wcfs_core::wire::OutLine;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Backend, BlockingOs, Errno, Fd, OsOp, QuickOs, Src, Stat};

pub const ENOENT: Errno = Errno(2);
pub const EIO: Errno = Errno(5);
pub const EBADF: Errno = Errno(9);
pub const ENOMEM: Errno = Errno(12);
pub const EEXIST: Errno = Errno(17);
pub const EINVAL: Errno = Errno(22);
pub const EPIPE: Errno = Errno(32);

/// A file under the mountpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    Head(Oid),
    Rev(Oid, Tid),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Head(oid) => write!(f, "head/bigfile/{oid}"),
            Path::Rev(oid, rev) => write!(f, "@{rev}/bigfile/{oid}"),
        }
    }
}

/// What the simulated filesystem answers.
pub trait Store {
    /// `head/at` now.
    fn head_at(&mut self) -> Tid;
    /// `fstat` of a file; `None` when it does not exist.
    fn stat(&mut self, path: Path) -> Option<Stat>;
}

/// One backend call, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    WaitHeadAt(Tid),
    Open(Path),
    Stat(Fd),
    MapNew { fd: Fd, offset: u64, len: usize },
    MapFixed { addr: usize, len: usize, src: Src },
    Protect { addr: usize, len: usize },
    Unmap { addr: usize, len: usize },
    Send(String),
    Close(Fd),
    CloseLink,
}

impl Call {
    /// The operation recorded.
    pub fn op(&self) -> OsOp {
        match self {
            Call::WaitHeadAt(_) => OsOp::WaitHeadAt,
            Call::Open(Path::Head(_)) => OsOp::OpenHead,
            Call::Open(Path::Rev(..)) => OsOp::OpenRev,
            Call::Stat(_) => OsOp::Stat,
            Call::MapNew { .. } => OsOp::MapNew,
            Call::MapFixed { .. } => OsOp::MapFixed,
            Call::Protect { .. } => OsOp::Protect,
            Call::Unmap { .. } => OsOp::Unmap,
            Call::Send(_) => OsOp::Send,
            Call::Close(_) => OsOp::Close,
            Call::CloseLink => OsOp::CloseLink,
        }
    }
}

/// What a range of simulated memory shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mem {
    File {
        path: Path,
        offset: u64,
    },
    Zeros,
    /// No access: a fault, or a caller's reservation (`mmap(PROT_NONE)`).
    Fault,
    /// A private page the user laid over a block (its bytes all `tag`).
    Private(u8),
}

/// Syscall counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub open: usize,
    pub fstat: usize,
    pub mmap: usize,
    pub mprotect: usize,
    pub munmap: usize,
    pub write: usize,
    pub close: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.open + self.fstat + self.mmap + self.mprotect + self.munmap + self.write + self.close
    }
}

/// The mock OS.
///
/// Invariant: `mem` regions never overlap (`start -> (end, what)`).
pub struct MockBackend<S> {
    pub store: S,
    trace: Vec<Call>,
    fds: BTreeMap<Fd, Path>,
    next_fd: i32,
    mem: BTreeMap<usize, (usize, Mem)>,
    next_addr: usize,
    link_open: bool,
    sent: Vec<String>,
}

impl<S: Store> MockBackend<S> {
    pub fn new(store: S) -> Self {
        MockBackend {
            store,
            trace: Vec::new(),
            fds: BTreeMap::new(),
            next_fd: 3,
            mem: BTreeMap::new(),
            next_addr: 0x1000_0000,
            link_open: true,
            sent: Vec::new(),
        }
    }

    /// Every call so far, in order.
    pub fn trace(&self) -> &[Call] {
        &self.trace
    }

    /// Forgets the trace (not the state).
    pub fn clear_trace(&mut self) {
        self.trace.clear();
    }

    /// Lines sent on the link not taken yet (without `\n`).
    pub fn take_sent(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sent)
    }

    pub fn link_open(&self) -> bool {
        self.link_open
    }

    /// Open descriptors and what they name.
    pub fn open_fds(&self) -> &BTreeMap<Fd, Path> {
        &self.fds
    }

    /// Counts of the recorded calls, as Linux syscalls.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for call in &self.trace {
            match call {
                Call::Open(_) => {
                    c.open += 1;
                    c.fstat += 1;
                }
                Call::WaitHeadAt(_) => {
                    c.open += 1;
                    c.close += 1;
                }
                Call::Stat(_) => c.fstat += 1,
                Call::MapNew { .. } | Call::MapFixed { .. } => c.mmap += 1,
                Call::Protect { .. } => c.mprotect += 1,
                Call::Unmap { .. } => c.munmap += 1,
                Call::Send(_) => c.write += 1,
                Call::Close(_) | Call::CloseLink => c.close += 1,
            }
        }
        c
    }

    /// What the byte at `addr` shows (`None`: unmapped).
    pub fn at(&self, addr: usize) -> Option<Mem> {
        let (&start, &(end, what)) = self.mem.range(..=addr).next_back()?;
        if addr >= end {
            return None;
        }
        Some(match what {
            Mem::File { path, offset } => Mem::File {
                path,
                offset: offset + (addr - start) as u64,
            },
            m => m,
        })
    }

    /// The regions of `[addr, addr+len)` in order: `(start, end, what)`.
    pub fn regions(&self, addr: usize, len: usize) -> Vec<(usize, usize, Option<Mem>)> {
        let mut out = Vec::new();
        let mut a = addr;
        let end = addr + len;
        while a < end {
            match self.at(a) {
                Some(m) => {
                    let (_, &(rend, _)) = self.mem.range(..=a).next_back().expect("mapped");
                    let e = rend.min(end);
                    out.push((a, e, Some(m)));
                    a = e;
                }
                None => {
                    let next = self.mem.range(a..).next().map_or(end, |(&s, _)| s.min(end));
                    out.push((a, next, None));
                    a = next;
                }
            }
        }
        out
    }

    /// Reads `buf.len()` bytes at `addr`; file bytes come from `data(path,
    /// offset, buf)`. `Err(addr)` at the first byte that faults.
    pub fn read(
        &self,
        addr: usize,
        buf: &mut [u8],
        mut data: impl FnMut(Path, u64, &mut [u8]),
    ) -> Result<(), usize> {
        for (s, e, what) in self.regions(addr, buf.len()) {
            let dst = &mut buf[s - addr..e - addr];
            match what {
                None | Some(Mem::Fault) => return Err(s),
                Some(Mem::Zeros) => dst.fill(0),
                Some(Mem::Private(tag)) => dst.fill(tag),
                Some(Mem::File { path, offset }) => data(path, offset, dst),
            }
        }
        Ok(())
    }

    fn place(&mut self, addr: usize, len: usize, what: Option<Mem>) {
        let end = addr + len;
        // Split the regions straddling the boundaries, then drop the inside.
        for cut in [addr, end] {
            if let Some((&s, &(e, m))) = self.mem.range(..cut).next_back() {
                if e > cut {
                    self.mem.insert(s, (cut, m));
                    let tail = match m {
                        Mem::File { path, offset } => Mem::File {
                            path,
                            offset: offset + (cut - s) as u64,
                        },
                        m => m,
                    };
                    self.mem.insert(cut, (e, tail));
                }
            }
        }
        let inside: Vec<usize> = self.mem.range(addr..end).map(|(&s, _)| s).collect();
        for s in inside {
            self.mem.remove(&s);
        }
        if let Some(m) = what {
            self.mem.insert(addr, (end, m));
        }
    }

    /// The user reserves `len` bytes where the OS likes (`mmap(PROT_NONE)`
    /// without `MAP_FIXED`); not a backend call, not traced.
    pub fn reserve(&mut self, len: usize) -> usize {
        let addr = self.next_addr;
        self.next_addr += len.next_multiple_of(0x1000) + 0x1000;
        self.place(addr, len, Some(Mem::Fault));
        addr
    }

    /// The user reserves `[addr, addr+len)` exactly, refused (`EEXIST`)
    /// where anything is mapped already (`MAP_FIXED_NOREPLACE`).
    pub fn reserve_at(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        if len == 0 || addr.checked_add(len).is_none() {
            return Err(EINVAL);
        }
        if self.regions(addr, len).iter().any(|r| r.2.is_some()) {
            return Err(EEXIST);
        }
        self.place(addr, len, Some(Mem::Fault));
        Ok(())
    }

    /// The user lays a private page (bytes all `tag`) over `[addr,
    /// addr+len)`, which must be mapped (`MAP_FIXED` of anonymous memory).
    pub fn lay_private(&mut self, addr: usize, len: usize, tag: u8) -> Result<(), Errno> {
        if len == 0 || !self.mapped(addr, len) {
            return Err(EINVAL);
        }
        self.place(addr, len, Some(Mem::Private(tag)));
        Ok(())
    }

    /// The user releases `[addr, addr+len)` (`munmap` of its reservation).
    pub fn release(&mut self, addr: usize, len: usize) {
        self.place(addr, len, None);
    }

    fn mapped(&self, addr: usize, len: usize) -> bool {
        self.regions(addr, len).iter().all(|r| r.2.is_some())
    }

    fn open(&mut self, path: Path) -> Result<(Fd, Stat), Errno> {
        self.trace.push(Call::Open(path));
        let st = self.store.stat(path).ok_or(ENOENT)?;
        let fd = Fd(self.next_fd);
        self.next_fd += 1;
        self.fds.insert(fd, path);
        Ok((fd, st))
    }
}

impl<S: Store> QuickOs for MockBackend<S> {
    fn map_new(&mut self, fd: Fd, offset: u64, len: usize) -> Result<usize, Errno> {
        self.trace.push(Call::MapNew { fd, offset, len });
        let path = *self.fds.get(&fd).ok_or(EBADF)?;
        if len == 0 {
            return Err(EINVAL);
        }
        let addr = self.next_addr;
        // Leave a gap so that overruns show up as unmapped memory.
        self.next_addr += len.next_multiple_of(0x1000) + 0x1000;
        self.place(addr, len, Some(Mem::File { path, offset }));
        Ok(addr)
    }
    fn map_fixed(&mut self, addr: usize, len: usize, src: Src) -> Result<(), Errno> {
        self.trace.push(Call::MapFixed { addr, len, src });
        if len == 0 || !self.mapped(addr, len) {
            return Err(EINVAL);
        }
        let what = match src {
            Src::File { fd, offset } => Mem::File {
                path: *self.fds.get(&fd).ok_or(EBADF)?,
                offset,
            },
            Src::Zeros => Mem::Zeros,
            Src::Fault => Mem::Fault,
        };
        self.place(addr, len, Some(what));
        Ok(())
    }
    fn protect(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.trace.push(Call::Protect { addr, len });
        // As mprotect: every page of the range must be mapped.
        if len == 0 || !self.mapped(addr, len) {
            return Err(ENOMEM);
        }
        self.place(addr, len, Some(Mem::Fault));
        Ok(())
    }
    fn unmap(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.trace.push(Call::Unmap { addr, len });
        self.place(addr, len, None);
        Ok(())
    }
    fn send(&mut self, line: &OutLine) -> Result<(), Errno> {
        let line = line.as_bytes();
        let s = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
        self.trace.push(Call::Send(s.clone()));
        if !self.link_open {
            return Err(EPIPE);
        }
        self.sent.push(s);
        Ok(())
    }
    fn close(&mut self, fd: Fd) {
        self.trace.push(Call::Close(fd));
        self.fds.remove(&fd);
    }
    fn close_link(&mut self) {
        self.trace.push(Call::CloseLink);
        self.link_open = false;
    }
}

impl<S: Store> BlockingOs for MockBackend<S> {
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        self.trace.push(Call::WaitHeadAt(at));
        Ok(self.store.head_at())
    }
    fn open_head(&mut self, oid: Oid) -> Result<(Fd, Stat), Errno> {
        self.open(Path::Head(oid))
    }
    fn open_rev(&mut self, oid: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        self.open(Path::Rev(oid, rev))
    }
    fn stat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        self.trace.push(Call::Stat(fd));
        let path = *self.fds.get(&fd).ok_or(EBADF)?;
        self.store.stat(path).ok_or(ENOENT)
    }
}

/// Wraps a backend and fails operations by chance: each [`OsOp`] has its
/// own chance (in percent, 0 by default) and errno, and one seed decides
/// every draw, so a run replays exactly from its seed (after smoltcp's
/// `FaultInjector`). Closes cannot fail: their chances stay 0.
pub struct FaultInjector<B> {
    pub inner: B,
    rng: u64,
    chances: [(u8, Errno); OsOp::ALL.len()],
    injected: Vec<OsOp>,
}

/// The injector stands for the backend it wraps: the mock's own calls
/// (trace, memory, store) go through to it.
impl<B> core::ops::Deref for FaultInjector<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> core::ops::DerefMut for FaultInjector<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: Backend> FaultInjector<B> {
    /// Fails nothing until a chance is set.
    pub fn new(inner: B, seed: u64) -> Self {
        FaultInjector {
            inner,
            // splitmix64 of the seed: never 0, as xorshift needs.
            rng: {
                let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) | 1
            },
            chances: [(0, Errno(0)); OsOp::ALL.len()],
            injected: Vec::new(),
        }
    }

    /// `op` fails with `errno` in `percent` (capped at 100) of its calls.
    /// Ignored for the operations that cannot fail ([`OsOp::can_fail`]).
    pub fn set_fail_chance(&mut self, op: OsOp, percent: u8, errno: Errno) {
        if op.can_fail() {
            self.chances[op as usize] = (percent.min(100), errno);
        }
    }

    /// The chance and errno set for `op`.
    pub fn fail_chance(&self, op: OsOp) -> (u8, Errno) {
        self.chances[op as usize]
    }

    /// Failures injected so far.
    pub fn injected(&self) -> usize {
        self.injected.len()
    }

    /// The operations failed so far, in order.
    pub fn injected_ops(&self) -> &[OsOp] {
        &self.injected
    }

    fn check(&mut self, op: OsOp) -> Result<(), Errno> {
        let (percent, errno) = self.chances[op as usize];
        if percent == 0 {
            return Ok(());
        }
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 100 < u64::from(percent) {
            self.injected.push(op);
            return Err(errno);
        }
        Ok(())
    }
}

impl<B: Backend> QuickOs for FaultInjector<B> {
    fn map_new(&mut self, fd: Fd, offset: u64, len: usize) -> Result<usize, Errno> {
        self.check(OsOp::MapNew)?;
        self.inner.map_new(fd, offset, len)
    }
    fn map_fixed(&mut self, addr: usize, len: usize, src: Src) -> Result<(), Errno> {
        self.check(OsOp::MapFixed)?;
        self.inner.map_fixed(addr, len, src)
    }
    fn protect(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.check(OsOp::Protect)?;
        self.inner.protect(addr, len)
    }
    fn unmap(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.check(OsOp::Unmap)?;
        self.inner.unmap(addr, len)
    }
    fn send(&mut self, line: &OutLine) -> Result<(), Errno> {
        self.check(OsOp::Send)?;
        self.inner.send(line)
    }
    fn close(&mut self, fd: Fd) {
        self.inner.close(fd)
    }
    fn close_link(&mut self) {
        self.inner.close_link()
    }
}

impl<B: Backend> BlockingOs for FaultInjector<B> {
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        self.check(OsOp::WaitHeadAt)?;
        self.inner.wait_head_at(at)
    }
    fn open_head(&mut self, oid: Oid) -> Result<(Fd, Stat), Errno> {
        self.check(OsOp::OpenHead)?;
        self.inner.open_head(oid)
    }
    fn open_rev(&mut self, oid: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        self.check(OsOp::OpenRev)?;
        self.inner.open_rev(oid, rev)
    }
    fn stat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        self.check(OsOp::Stat)?;
        self.inner.stat(fd)
    }
}

/// A store of fixed stats, for scripted tests: `head_at` and file sizes are set by the test.
#[derive(Clone, Debug, Default)]
pub struct StatTable {
    pub head: Tid,
    pub files: BTreeMap<Path, Stat>,
}

impl Store for StatTable {
    fn head_at(&mut self) -> Tid {
        self.head
    }
    fn stat(&mut self, path: Path) -> Option<Stat> {
        self.files.get(&path).copied()
    }
}

/// A backend that performs nothing, allocates nothing, and says yes: every
/// file is `size` bytes of `blksize` blocks, every map lands at a fresh
/// address. What is left when driving the core through it is the core's
/// own cost (benchmarks, allocation counting).
pub struct QuietBackend {
    pub size: u64,
    pub blksize: u64,
    pub next_addr: usize,
    /// Fixed maps performed.
    pub maps: usize,
    /// Lines sent.
    pub sent: usize,
}

impl QuietBackend {
    pub fn new(size: u64, blksize: u64) -> QuietBackend {
        QuietBackend {
            size,
            blksize,
            next_addr: 0x1000_0000,
            maps: 0,
            sent: 0,
        }
    }

    fn stat_(&self) -> Stat {
        Stat {
            size: self.size,
            blksize: self.blksize,
        }
    }
}

impl QuickOs for QuietBackend {
    fn map_new(&mut self, _: Fd, _: u64, len: usize) -> Result<usize, Errno> {
        let a = self.next_addr;
        self.next_addr += len + 4096;
        Ok(a)
    }
    fn map_fixed(&mut self, a: usize, l: usize, s: Src) -> Result<(), Errno> {
        std::hint::black_box((a, l, s));
        self.maps += 1;
        Ok(())
    }
    fn protect(&mut self, _: usize, _: usize) -> Result<(), Errno> {
        Ok(())
    }
    fn unmap(&mut self, _: usize, _: usize) -> Result<(), Errno> {
        Ok(())
    }
    fn send(&mut self, l: &OutLine) -> Result<(), Errno> {
        std::hint::black_box(l);
        self.sent += 1;
        Ok(())
    }
    fn close(&mut self, _: Fd) {}
    fn close_link(&mut self) {}
}

impl BlockingOs for QuietBackend {
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        Ok(at)
    }
    fn open_head(&mut self, _: Oid) -> Result<(Fd, Stat), Errno> {
        Ok((Fd(3), self.stat_()))
    }
    fn open_rev(&mut self, _: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        Ok((Fd(1000 + (rev.0 % 1_000_000) as i32), self.stat_()))
    }
    fn stat(&mut self, _: Fd) -> Result<Stat, Errno> {
        Ok(self.stat_())
    }
}

/// A connection on the mock OS with a server scripted by the test: the test
/// feeds server lines with [`Harness::recv`] and takes what the client sent
/// with [`Harness::sent`]. Every step drains the actions (blocking ones
/// too, synchronously) and checks the core's invariants. The mock sits in
/// a [`FaultInjector`] that fails nothing unless a chance is set.
pub struct Harness<S> {
    pub conn: wcfs_core::Conn,
    pub be: FaultInjector<MockBackend<S>>,
}

impl<S: Store> Harness<S> {
    pub fn new(at: Tid, cfg: wcfs_core::Config, store: S) -> Self {
        Harness::seeded(at, cfg, store, 0)
    }

    /// A harness whose fault injector draws from `seed`.
    pub fn seeded(at: Tid, cfg: wcfs_core::Config, store: S, seed: u64) -> Self {
        Harness {
            conn: wcfs_core::Conn::new(at, cfg),
            be: FaultInjector::new(MockBackend::new(store), seed),
        }
    }

    /// Performs every queued action.
    pub fn drain(&mut self) {
        self.conn.drain_with(&mut self.be);
        if let Err(e) = self.conn.check_invariants() {
            panic!("core invariant broken: {e}");
        }
    }

    /// Drives `op` as far as it goes without the server; its result if done.
    pub fn poll(
        &mut self,
        op: wcfs_core::OpId,
    ) -> Option<Result<wcfs_core::OpOk, wcfs_core::Error>> {
        loop {
            self.drain();
            if let Some(r) = self.conn.poll_op(op) {
                self.drain();
                return Some(r);
            }
            if !self.conn.has_actions() {
                return None;
            }
        }
    }

    /// Feeds raw bytes from the server, draining between stalls.
    pub fn recv_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = self.conn.handle_bytes(bytes);
            bytes = &bytes[n..];
            self.drain();
        }
    }

    /// Feeds one server line (`\n` added).
    pub fn recv(&mut self, line: &str) {
        self.recv_bytes(format!("{line}\n").as_bytes());
    }

    /// The server ends the link.
    pub fn eof(&mut self) {
        self.conn.handle_eof();
        self.drain();
    }

    /// Lines the client sent since the last call.
    pub fn sent(&mut self) -> Vec<String> {
        self.be.take_sent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be() -> MockBackend<StatTable> {
        let mut st = StatTable::default();
        st.files.insert(
            Path::Head(Oid(1)),
            Stat {
                size: 64,
                blksize: 16,
            },
        );
        st.files.insert(
            Path::Rev(Oid(1), Tid(5)),
            Stat {
                size: 32,
                blksize: 16,
            },
        );
        MockBackend::new(st)
    }

    #[test]
    fn fixed_maps_split_regions() {
        let mut b = be();
        let (h, _) = b.open_head(Oid(1)).unwrap();
        let (r, _) = b.open_rev(Oid(1), Tid(5)).unwrap();
        let a = b.map_new(h, 0, 64).unwrap();
        b.map_fixed(a + 16, 16, Src::File { fd: r, offset: 16 })
            .unwrap();
        b.map_fixed(a + 48, 16, Src::Zeros).unwrap();
        assert_eq!(
            b.at(a + 20),
            Some(Mem::File {
                path: Path::Rev(Oid(1), Tid(5)),
                offset: 20
            })
        );
        assert_eq!(
            b.at(a + 40),
            Some(Mem::File {
                path: Path::Head(Oid(1)),
                offset: 40
            })
        );
        assert_eq!(b.at(a + 50), Some(Mem::Zeros));
        assert_eq!(b.at(a + 64), None);
        b.map_fixed(a, 64, Src::Fault).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(b.read(a + 3, &mut buf, |_, _, _| {}), Err(a + 3));
        b.unmap(a, 64).unwrap();
        assert_eq!(b.at(a), None);
        assert!(
            b.map_fixed(a, 16, Src::Zeros).is_err(),
            "MAP_FIXED over nothing"
        );
    }

    #[test]
    fn reservations_refuse_overlaps() {
        let mut b = be();
        let (h, _) = b.open_head(Oid(1)).unwrap();
        let a = b.map_new(h, 0, 64).unwrap();
        assert_eq!(b.reserve_at(a + 32, 64), Err(EEXIST), "overlaps a mapping");
        assert_eq!(
            b.reserve_at(a - 16, 17),
            Err(EEXIST),
            "touches its first byte"
        );
        let r = b.reserve(64);
        assert!(r >= a + 64, "fresh addresses");
        assert_eq!(b.at(r), Some(Mem::Fault), "reserved, inaccessible");
        assert_eq!(b.reserve_at(r + 63, 1), Err(EEXIST));
        b.map_fixed(r, 16, Src::File { fd: h, offset: 0 }).unwrap();
        b.lay_private(r, 16, b'x').unwrap();
        let mut buf = [0u8; 2];
        b.read(r + 3, &mut buf, |_, _, _| {}).unwrap();
        assert_eq!(&buf, b"xx");
        b.release(r, 64);
        assert_eq!(b.at(r), None);
        assert!(b.lay_private(r, 16, 1).is_err(), "over nothing");
        b.reserve_at(r, 64).unwrap();
        assert_eq!(b.at(r + 10), Some(Mem::Fault));
    }

    #[test]
    fn read_goes_through_sources() {
        let mut b = be();
        let (h, _) = b.open_head(Oid(1)).unwrap();
        let a = b.map_new(h, 16, 32).unwrap();
        b.map_fixed(a + 16, 16, Src::Zeros).unwrap();
        let mut buf = [9u8; 32];
        b.read(a, &mut buf, |p, off, dst| {
            assert_eq!(p, Path::Head(Oid(1)));
            for (i, d) in dst.iter_mut().enumerate() {
                *d = (off as usize + i) as u8;
            }
        })
        .unwrap();
        assert_eq!(buf[0], 16);
        assert_eq!(buf[15], 31);
        assert!(buf[16..].iter().all(|&x| x == 0));
    }

    #[test]
    fn counts_and_injected_faults() {
        let mut f = FaultInjector::new(be(), 1);
        f.set_fail_chance(OsOp::Send, 100, EPIPE);
        let bye = OutLine::new(&wcfs_core::wire::Frame {
            stream: 1,
            msg: wcfs_core::wire::Msg::Bye,
        });
        assert_eq!(f.send(&bye), Err(EPIPE));
        let (h, _) = f.open_head(Oid(1)).unwrap();
        f.map_new(h, 0, 16).unwrap();
        assert_eq!(f.inner.counts().mmap, 1);
        assert_eq!(f.inner.counts().open, 1);
        assert_eq!(f.inner.open_head(Oid(2)), Err(ENOENT));
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
