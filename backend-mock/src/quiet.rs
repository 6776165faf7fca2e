//! Backends for scripted tests and benchmarks: a store of fixed stats, and
//! a backend that performs nothing and says yes.

use std::collections::BTreeMap;

use wcfs_core::wire::{Oid, OutLine, Tid};
use wcfs_core::{BlockingOs, Errno, Fd, QuickOs, Src, Stat, VmId};

use crate::{Path, Store};

/// A store of fixed stats, for scripted tests: `head_at` and file sizes are set by the test.
#[derive(Clone, Debug, Default)]
pub struct StatTable {
    /// What `head/at` says.
    pub head: Tid,
    /// The files there are, and their stats.
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
/// address, every VM lock is free and every VM block clean. What is left
/// when driving the core through it is the core's own cost (benchmarks,
/// allocation counting).
pub struct QuietBackend {
    /// Every file's size.
    pub size: u64,
    /// Every file's block size.
    pub blksize: u64,
    /// Where the next new mapping lands.
    pub next_addr: usize,
    /// Fixed maps performed.
    pub maps: usize,
    /// Lines sent.
    pub sent: usize,
}

impl QuietBackend {
    /// Every file `size` bytes of `blksize` blocks.
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
    fn vm_is_dirty(&mut self, vm: VmId, addr: usize, blk: u64) -> Result<bool, Errno> {
        std::hint::black_box((vm, addr, blk));
        Ok(false)
    }
    fn vm_unlock(&mut self, vm: VmId) {
        std::hint::black_box(vm);
    }
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
    fn vm_lock(&mut self, vm: VmId) -> Result<(), Errno> {
        std::hint::black_box(vm);
        Ok(())
    }
}
