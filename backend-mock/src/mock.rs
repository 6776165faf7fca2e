//! The mock OS: a simulated file table and address space, every call
//! recorded in order.

use std::collections::BTreeMap;

use wcfs_core::wire::{Oid, OutLine, Tid};
use wcfs_core::{BlockingOs, Errno, Fd, QuickOs, Src, Stat};

use crate::{Call, Counts, Mem, Path, Store, EBADF, EEXIST, EINVAL, ENOENT, ENOMEM, EPIPE};

/// The mock OS.
///
/// Invariant: `mem` regions never overlap (`start -> (end, what)`).
pub struct MockBackend<S> {
    /// What the files hold and `head/at` says.
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
    /// A mock OS over `store`: no file open, no memory mapped, the link open.
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

    /// Whether the watch link is still open.
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
                Call::StatHead(_) => c.fstat += 1,
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
        self.trace.push(Call::StatHead(fd));
        let path = *self.fds.get(&fd).ok_or(EBADF)?;
        self.store.stat(path).ok_or(ENOENT)
    }
}
