//! One open bigfile of a connection: its pins and the index of its mappings.

use alloc::collections::BTreeSet;

use hashbrown::HashMap;

use crate::action::{Fd, Src};
use crate::ids::MapId;
use crate::wire::{Oid, Tid};

/// Where an open file is in its life: `Opening` -> `Open` -> `Closing`,
/// then it is forgotten. Only an `Open` file has live mappings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// `head/bigfile/<oid>` is being opened, or its `watch` awaits `ok`.
    Opening,
    /// Watched and usable: the user holds `count` handles on it.
    Open,
    /// `watch <oid> -` awaits its reply; the mappings already fault.
    Closing,
}

/// Invariants: `fd`, `blksize` are set once the head file is open and
/// `blksize` never changes; `size % blksize == 0`; `size` is head's size as
/// of the last open or resync, and may be smaller than before (a commit
/// that deletes the last blocks shrinks head); `pinned` is non-empty only
/// while `watched`; `maps` holds `(blk_start, id)` of every placed mapping
/// of this file that is not faulting, and `max_map_len` bounds their lengths.
#[derive(Debug)]
pub struct File {
    /// The bigfile.
    pub oid: Oid,
    /// Where the file is in its life.
    pub state: FileState,
    /// Open handles the user holds.
    pub count: u32,
    /// The head file `head/bigfile/<oid>`, once opened.
    pub fd: Option<Fd>,
    /// Block size of the head file (0 until opened).
    pub blksize: u64,
    /// Head size known to this connection (as of its last open/resync): it
    /// grows and shrinks with head.
    pub size: u64,
    /// A `watch` for this file was sent and no `watch -` completed.
    pub watched: bool,
    /// Pins in force: blk -> rev. Sized by the pins in force, not by the
    /// file: open, mmap and resync top the capacity up to the pins plus
    /// `PIN_HEADROOM`; a pin past that grows the table on the pin path,
    /// doubling it (amortized: `log2` growths for any number of pins, none
    /// while the pins in force stay within the capacity reached). At most
    /// `Config::max_pins_per_file` entries.
    pub pinned: HashMap<u64, Tid>,
    /// `(blk_start, id)` of every placed, non-faulting mapping of this file.
    pub maps: BTreeSet<(u64, MapId)>,
    /// Blocks spanned by the longest mapping in `maps` (0 when empty).
    pub max_map_len: u64,
}

impl File {
    /// A file about to be opened: `Opening`, no fd, no pins, no mappings.
    pub fn new(oid: Oid) -> File {
        File {
            oid,
            state: FileState::Opening,
            count: 0,
            fd: None,
            blksize: 0,
            size: 0,
            watched: false,
            pinned: HashMap::new(),
            maps: BTreeSet::new(),
            max_map_len: 0,
        }
    }

    /// Blocks of the head file known to this connection.
    pub fn nblk(&self) -> u64 {
        self.size.checked_div(self.blksize).unwrap_or(0)
    }

    /// What block `blk` shows when no pin says otherwise: head while the
    /// block lies within head's known size, zeros past it (touching head
    /// there would fault: SIGBUS). Every mapping of head decides here, and
    /// in [`File::head_stop`] for stretches.
    pub fn unpinned_src(&self, blk: u64) -> Src {
        if blk < self.nblk() {
            Src::File {
                fd: self.fd.expect("open file has fd"),
                offset: blk * self.blksize,
            }
        } else {
            Src::Zeros
        }
    }

    /// End of the stretch from `blk` (exclusive, at most `stop`) whose
    /// unpinned blocks all show the same source as `blk`: head up to
    /// head's end, zeros past it.
    pub fn head_stop(&self, blk: u64, stop: u64) -> u64 {
        if blk < self.nblk() {
            stop.min(self.nblk())
        } else {
            stop
        }
    }

    /// Mappings whose range covers `blk`: `O(log n + k)` where `k` counts
    /// the mappings starting within `max_map_len` blocks before `blk`.
    pub fn maps_covering(&self, blk: u64) -> impl Iterator<Item = (u64, MapId)> + '_ {
        let lo = (blk + 1).saturating_sub(self.max_map_len.max(1));
        self.maps
            .range((lo, MapId(0))..=(blk, MapId(u64::MAX)))
            .copied()
    }

    /// Indexes a placed mapping of `blk_len` blocks from `blk_start`.
    pub fn add_map(&mut self, blk_start: u64, blk_len: u64, id: MapId) {
        self.maps.insert((blk_start, id));
        self.max_map_len = self.max_map_len.max(blk_len);
    }

    /// Drops a mapping from the index (a no-op if it is not there).
    pub fn remove_map(&mut self, blk_start: u64, id: MapId) {
        self.maps.remove(&(blk_start, id));
        if self.maps.is_empty() {
            self.max_map_len = 0;
        }
    }

    /// Pinned blocks in `[start, stop)`: `O(min(stop - start, pins))`.
    pub fn pinned_in(&self, start: u64, stop: u64) -> alloc::vec::Vec<u64> {
        let mut v: alloc::vec::Vec<u64> = if stop - start <= self.pinned.len() as u64 {
            (start..stop)
                .filter(|b| self.pinned.contains_key(b))
                .collect()
        } else {
            self.pinned
                .keys()
                .copied()
                .filter(|b| (start..stop).contains(b))
                .collect()
        };
        v.sort_unstable();
        v
    }
}
