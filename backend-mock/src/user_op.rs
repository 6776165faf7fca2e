//! What a user of the client API can do, named once for every driver of the
//! core: the deterministic simulation (`wcfs-testkit`, `sim.rs`) draws these
//! from its seed with per-run weights, the `client` fuzz target derives them
//! with `arbitrary` (feature `arbitrary`). Both keep their own server.
//!
//! Operands are small numbers, not handles: each driver reads them modulo
//! what it holds (`file` picks one of the open files, `map` one of the live
//! mappings), so every value is a valid operation and none is wasted.

/// One call a user makes, as drawn by a driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum UserOp {
    /// Read block `blk` of mapping `map` (an access to its memory).
    Read {
        /// Which live mapping.
        map: u8,
        /// Which of its blocks.
        blk: u8,
    },
    /// `Conn::open` of file `oid`.
    Open {
        /// Which bigfile.
        oid: u8,
    },
    /// `Conn::mmap` of `len` blocks from `start` of open file `file`.
    Mmap {
        /// Which open file.
        file: u8,
        /// The first block.
        start: u8,
        /// How many blocks.
        len: u8,
    },
    /// `Conn::mmap_at` into a range the user reserved; with `over`, first
    /// the same call over live mapping `over >> 1` (ending on its first
    /// byte when `over & 1 == 0`, starting on its last otherwise), which
    /// must be refused with nothing performed.
    MmapAt {
        /// Which open file.
        file: u8,
        /// The first block.
        start: u8,
        /// How many blocks.
        len: u8,
        /// A live mapping to overlap first, and from which end.
        over: Option<u8>,
    },
    /// `Conn::unmap`.
    Unmap {
        /// Which live mapping.
        map: u8,
    },
    /// `Conn::mark_dirty`, then, with `page`, the user lays a private page
    /// (bytes all `page`) over the block, as the ordering contract says.
    Dirty {
        /// Which live mapping.
        map: u8,
        /// Which of its blocks.
        blk: u8,
        /// The private page's bytes, if one is laid.
        page: Option<u8>,
    },
    /// `Conn::remap_blk`: the user gives a dirty block back.
    Remap {
        /// Which live mapping.
        map: u8,
        /// Which of its blocks.
        blk: u8,
    },
    /// `Conn::resync` to the revision `to` picks among those the driver knows.
    Resync {
        /// Which revision, among those the driver knows.
        to: u8,
    },
    /// `Conn::close_file` of open file `file`.
    CloseFile {
        /// Which open file.
        file: u8,
    },
    /// `Conn::close`.
    Close,
    /// The process forks; the child carries on (`Conn::fork_child`).
    Fork,
}

/// Which [`UserOp`] (no operands): what per-run weights are keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserOpKind {
    /// [`UserOp::Read`].
    Read,
    /// [`UserOp::Open`].
    Open,
    /// [`UserOp::Mmap`].
    Mmap,
    /// [`UserOp::MmapAt`].
    MmapAt,
    /// [`UserOp::Unmap`].
    Unmap,
    /// [`UserOp::Dirty`].
    Dirty,
    /// [`UserOp::Remap`].
    Remap,
    /// [`UserOp::Resync`].
    Resync,
    /// [`UserOp::CloseFile`].
    CloseFile,
    /// [`UserOp::Close`].
    Close,
    /// [`UserOp::Fork`].
    Fork,
}

impl UserOpKind {
    /// Every kind, in declaration order.
    pub const ALL: [UserOpKind; 11] = [
        UserOpKind::Read,
        UserOpKind::Open,
        UserOpKind::Mmap,
        UserOpKind::MmapAt,
        UserOpKind::Unmap,
        UserOpKind::Dirty,
        UserOpKind::Remap,
        UserOpKind::Resync,
        UserOpKind::CloseFile,
        UserOpKind::Close,
        UserOpKind::Fork,
    ];
}

impl UserOp {
    /// Its kind.
    pub fn kind(&self) -> UserOpKind {
        match self {
            UserOp::Read { .. } => UserOpKind::Read,
            UserOp::Open { .. } => UserOpKind::Open,
            UserOp::Mmap { .. } => UserOpKind::Mmap,
            UserOp::MmapAt { .. } => UserOpKind::MmapAt,
            UserOp::Unmap { .. } => UserOpKind::Unmap,
            UserOp::Dirty { .. } => UserOpKind::Dirty,
            UserOp::Remap { .. } => UserOpKind::Remap,
            UserOp::Resync { .. } => UserOpKind::Resync,
            UserOp::CloseFile { .. } => UserOpKind::CloseFile,
            UserOp::Close => UserOpKind::Close,
            UserOp::Fork => UserOpKind::Fork,
        }
    }
}

/// `v[i % v.len()]`, `None` when `v` is empty: how a driver reads an operand.
pub fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_once_each() {
        for (n, k) in UserOpKind::ALL.iter().enumerate() {
            assert_eq!(UserOpKind::ALL.iter().position(|x| x == k), Some(n));
        }
        let ops = [
            UserOp::Read { map: 0, blk: 0 },
            UserOp::Open { oid: 0 },
            UserOp::Mmap {
                file: 0,
                start: 0,
                len: 0,
            },
            UserOp::MmapAt {
                file: 0,
                start: 0,
                len: 0,
                over: None,
            },
            UserOp::Unmap { map: 0 },
            UserOp::Dirty {
                map: 0,
                blk: 0,
                page: None,
            },
            UserOp::Remap { map: 0, blk: 0 },
            UserOp::Resync { to: 0 },
            UserOp::CloseFile { file: 0 },
            UserOp::Close,
            UserOp::Fork,
        ];
        let kinds: Vec<UserOpKind> = ops.iter().map(UserOp::kind).collect();
        assert_eq!(kinds, UserOpKind::ALL);
    }

    #[test]
    fn operands_wrap_and_empty_picks_nothing() {
        assert_eq!(pick(&[10, 20, 30], 4), Some(20));
        assert_eq!(pick::<u8>(&[], 4), None);
    }
}
