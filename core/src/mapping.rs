//! One memory mapping of blocks `[blk_start, blk_start + blk_len)` of a file.

use hashbrown::HashSet;

use crate::bugs::{self, Bug};
use crate::ids::FileId;
pub use crate::ids::MapId;
use crate::ids::VmId;

/// Invariants: `addr` is 0 only until the OS placed the mapping; once
/// placed, `[addr, addr + blk_len * blksize)` belongs to this mapping alone;
/// a `faulting` mapping is never remapped again (only unmapped); `dirty`
/// blocks lie in range and are the user's: pins do not touch them; a
/// mapping with a `vm` is `caller_owned`; a
/// `caller_owned` range (from `mmap_at`) is placed from the start and, once
/// unmapped, is left reserved (faulting) for its owner, never released.
#[derive(Debug)]
pub struct Mapping {
    /// The file mapped.
    pub file: FileId,
    /// First block mapped.
    pub blk_start: u64,
    /// Blocks mapped (at least 1).
    pub blk_len: u64,
    /// The file's block size.
    pub blksize: u64,
    /// Where block `blk_start` lies; 0 until the OS placed the mapping.
    pub addr: usize,
    /// The range was the caller's before the mapping (`Conn::mmap_at`).
    pub caller_owned: bool,
    /// The file was closed or the connection ended: every access faults.
    pub faulting: bool,
    /// The OS refused both ways to make the range fault (`MAP_FIXED` of
    /// inaccessible memory, then `mprotect`): though `faulting`, the range
    /// may still show what it showed when the view ended. Only ever set
    /// after two refused calls, each taking the connection down.
    pub exposed: bool,
    /// Blocks the user laid a private page over (`Conn::mark_dirty`).
    pub dirty: HashSet<u64>,
    /// The VM this mapping is the base layer of (`Conn::mmap_vm`): pins
    /// ask it, under its lock, which blocks it laid a dirty page over.
    pub vm: Option<VmId>,
}

impl Mapping {
    /// One past the last block mapped.
    pub fn blk_stop(&self) -> u64 {
        self.blk_start + self.blk_len
    }

    /// Whether block `blk` lies in range.
    pub fn contains(&self, blk: u64) -> bool {
        (self.blk_start..self.blk_stop()).contains(&blk)
    }

    /// Bytes spanned (never 0: mappings have at least one block).
    pub fn len_bytes(&self) -> usize {
        (self.blk_len * self.blksize) as usize
    }

    /// Address of block `blk`, which must lie in range.
    pub fn blk_addr(&self, blk: u64) -> usize {
        self.addr + ((blk - self.blk_start) * self.blksize) as usize
    }

    /// Whether a pin or remap may replace block `blk` now.
    pub fn remappable(&self, blk: u64) -> bool {
        self.addr != 0
            && !self.faulting
            && (!self.dirty.contains(&blk) || bugs::on(Bug::IgnoreDirty))
    }
}
