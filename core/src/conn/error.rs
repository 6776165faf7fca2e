//! The errors of a connection, in the protocol's words.

use core::fmt;

use crate::action::{Errno, OsOp};
use crate::kind::Kind;
use crate::link::{LinkError, Text};
use crate::wire::{Oid, Tid};

/// What went wrong, in the protocol's words.
///
/// An error of one op leaves the connection up; one that the connection
/// went down for is also kept as [`Conn::down_reason`](crate::Conn::down_reason) and fails every op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The connection is closed or down (see [`Conn::down_reason`](crate::Conn::down_reason)).
    ConnClosed,
    /// The file was closed.
    FileClosed,
    /// The mapping was unmapped (or never was).
    NoSuchMapping,
    /// No such operation (never started, or its result was taken).
    NoSuchOp,
    /// A block range outside the file's addressable range or the mapping.
    BadRange,
    /// A caller's range for `mmap_at` starts at 0 or off a page boundary,
    /// or wraps around the address space.
    BadAddress(usize),
    /// A caller's range for `mmap_at` is `len` bytes, not `blk_len * blksize`.
    BadLength {
        /// The caller's length.
        len: usize,
        /// `blk_len * blksize`.
        want: u64,
    },
    /// A caller's range for `mmap_at` overlaps a mapping of this connection.
    AddressInUse {
        /// The caller's range start.
        addr: usize,
        /// The caller's range length.
        len: usize,
    },
    /// The server answered `error <text>`.
    Server(Text),
    /// `resync` to an older revision.
    GoingBack {
        /// The connection's `at`.
        at: Tid,
        /// The older revision asked for.
        to: Tid,
    },
    /// `head/at` is before the revision we waited for.
    HeadBehind {
        /// `head/at` as the wait returned it.
        head: Tid,
        /// The revision waited for.
        at: Tid,
    },
    /// The head file's block size is 0 or not a multiple of the page size.
    BadBlksize(u64),
    /// The head file's size is not a multiple of its block size.
    BadSize {
        /// The head file's size.
        size: u64,
        /// Its block size.
        blksize: u64,
    },
    /// At resync the head file's block size changed.
    HeadChanged {
        /// The head file's size now.
        size: u64,
        /// Its block size now.
        blksize: u64,
    },
    /// A pin for a file we do not watch.
    UnexpectedPin(Oid),
    /// A pin whose block lies beyond any addressable offset.
    PinOutOfRange {
        /// The bigfile.
        oid: Oid,
        /// The block.
        blk: u64,
    },
    /// A pin naming a revision after our `at`.
    PinAfterAt {
        /// The bigfile.
        oid: Oid,
        /// The block.
        blk: u64,
        /// The revision, after the connection's `at`.
        rev: Tid,
    },
    /// More pins in force than `max_pins_per_file`.
    TooManyPins(Oid),
    /// The driver broke the drain contract: a step queued a blocking action
    /// while the previous step's was still waiting to be polled (see
    /// [`Conn`](crate::Conn)'s module doc: drain after every mutator and handler).
    NotDrained,
    /// The driver broke the completion contract: it handed back an action
    /// with an outcome of another operation than the action's (or an op's
    /// action as the stalled pin's).
    BadCompletion(OsOp),
    /// The watch link broke.
    Link(LinkError),
    /// The OS refused.
    Os {
        /// The operation.
        call: OsOp,
        /// What the OS said.
        errno: Errno,
    },
}

impl Error {
    /// What kind of failure this is (see [`Kind`]).
    pub const fn kind(&self) -> Kind {
        match self {
            Error::ConnClosed => Kind::ConnClosed,
            Error::FileClosed => Kind::FileClosed,
            Error::NoSuchMapping => Kind::MappingClosed,
            Error::BadRange => Kind::BadRange,
            Error::BadAddress(_) | Error::BadLength { .. } | Error::AddressInUse { .. } => {
                Kind::BadAddress
            }
            Error::GoingBack { .. } => Kind::GoingBack,
            Error::Server(_)
            | Error::HeadBehind { .. }
            | Error::BadBlksize(_)
            | Error::BadSize { .. }
            | Error::HeadChanged { .. }
            | Error::UnexpectedPin(_)
            | Error::PinOutOfRange { .. }
            | Error::PinAfterAt { .. }
            | Error::TooManyPins(_) => Kind::Protocol,
            Error::Link(_) => Kind::Link,
            Error::Os { .. } => Kind::Os,
            Error::NoSuchOp | Error::NotDrained | Error::BadCompletion(_) => Kind::Bug,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ConnClosed => f.write_str("connection closed"),
            Error::FileClosed => f.write_str("file already closed"),
            Error::NoSuchMapping => f.write_str("no such mapping"),
            Error::NoSuchOp => f.write_str("no such operation"),
            Error::BadRange => f.write_str("block range out of bounds"),
            Error::BadAddress(a) => write!(
                f,
                "bad address {a:#x}: null, not page-aligned, or the range wraps"
            ),
            Error::BadLength { len, want } => {
                write!(f, "range of {len} bytes for a mapping of {want} bytes")
            }
            Error::AddressInUse { addr, len } => write!(
                f,
                "range {addr:#x}+{len:#x} overlaps a mapping of this connection"
            ),
            Error::Server(t) => f.write_str(t),
            Error::GoingBack { at, to } => {
                write!(
                    f,
                    "@{to} is before @{at}: going back in history is forbidden"
                )
            }
            Error::HeadBehind { head, at } => write!(f, "head/at (@{head}) < @{at}"),
            Error::BadBlksize(b) => write!(f, "invalid blksize {b}"),
            Error::BadSize { size, blksize } => {
                write!(f, "size {size} is not a multiple of blksize {blksize}")
            }
            Error::HeadChanged { size, blksize } => write!(
                f,
                "head file changed unexpectedly: blksize is now {blksize} (size {size})"
            ),
            Error::UnexpectedPin(oid) => write!(f, "unexpected pin: f<{oid}> not watched"),
            Error::PinOutOfRange { oid, blk } => {
                write!(f, "pin f<{oid}> #{blk}: block out of range")
            }
            Error::PinAfterAt { oid, blk, rev } => {
                write!(
                    f,
                    "pin f<{oid}> #{blk} @{rev}: revision after the connection's at"
                )
            }
            Error::TooManyPins(oid) => write!(f, "f<{oid}>: too many pins"),
            Error::NotDrained => {
                f.write_str("actions not drained before the next step (driver bug)")
            }
            Error::BadCompletion(call) => write!(
                f,
                "completion of {} with another operation's outcome (driver bug)",
                call.name()
            ),
            Error::Link(e) => write!(f, "watch link: {e}"),
            Error::Os { call, errno } => write!(f, "{}: errno {}", call.name(), errno.0),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
