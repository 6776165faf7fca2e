//! What the mock records and simulates: files under the mountpoint, the
//! store behind them, the trace of calls, the memory a range shows, and
//! syscall counts.

use std::fmt;

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Fd, OsOp, Src, Stat};

/// A file under the mountpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// `head/bigfile/<oid>`.
    Head(Oid),
    /// `@<rev>/bigfile/<oid>`.
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
///
/// The operation is [`Call::op`] (one [`OsOp`], spelled as there); the
/// fields are the arguments the backend got, which traces compare.
pub enum Call {
    /// [`OsOp::WaitHeadAt`] for this revision.
    WaitHeadAt(Tid),
    /// [`OsOp::OpenHead`] or [`OsOp::OpenRev`] of this file.
    Open(Path),
    /// [`OsOp::StatHead`] of this descriptor.
    StatHead(Fd),
    /// [`OsOp::MapNew`].
    MapNew {
        /// The file mapped.
        fd: Fd,
        /// From this byte.
        offset: u64,
        /// This many bytes.
        len: usize,
    },
    /// [`OsOp::MapFixed`].
    MapFixed {
        /// The range's start.
        addr: usize,
        /// Its length.
        len: usize,
        /// What it shows from now on.
        src: Src,
    },
    /// [`OsOp::Protect`].
    Protect {
        /// The range's start.
        addr: usize,
        /// Its length.
        len: usize,
    },
    /// [`OsOp::Unmap`].
    Unmap {
        /// The range's start.
        addr: usize,
        /// Its length.
        len: usize,
    },
    /// [`OsOp::Send`] of this line (without `\n`).
    Send(String),
    /// [`OsOp::Close`] of this descriptor.
    Close(Fd),
    /// [`OsOp::CloseLink`].
    CloseLink,
}

impl Call {
    /// The operation recorded.
    pub fn op(&self) -> OsOp {
        match self {
            Call::WaitHeadAt(_) => OsOp::WaitHeadAt,
            Call::Open(Path::Head(_)) => OsOp::OpenHead,
            Call::Open(Path::Rev(..)) => OsOp::OpenRev,
            Call::StatHead(_) => OsOp::StatHead,
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
    /// Bytes of a file.
    File {
        /// The file.
        path: Path,
        /// Its byte shown at the range's start.
        offset: u64,
    },
    /// Zeros.
    Zeros,
    /// No access: a fault, or a caller's reservation (`mmap(PROT_NONE)`).
    Fault,
    /// A private page the user laid over a block (its bytes all `tag`).
    Private(u8),
}

/// Syscall counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Opens (head and `@rev`), waits for `head/at` included.
    pub open: usize,
    /// `fstat`s.
    pub fstat: usize,
    /// `mmap`s, new and fixed.
    pub mmap: usize,
    /// `mprotect`s.
    pub mprotect: usize,
    /// `munmap`s.
    pub munmap: usize,
    /// Writes of lines.
    pub write: usize,
    /// Closes of files and of the link.
    pub close: usize,
}

impl Counts {
    /// Every call counted.
    pub fn total(&self) -> usize {
        self.open + self.fstat + self.mmap + self.mprotect + self.munmap + self.write + self.close
    }
}
