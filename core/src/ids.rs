//! The names a connection gives what it holds: files, mappings, long
//! operations, and the owner of a blocking action. Plain `Copy` newtypes,
//! never reused within a connection; every other module names things by them.

/// Names an open file within its connection (never reused: a file opened
/// again after its last close gets a new id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// Names a mapping within its connection (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId(pub u64);

/// Names a long operation within its connection; valid until
/// [`Conn::poll_op`](crate::Conn::poll_op) yielded its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Who a blocking action belongs to, and so who gets its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tok {
    /// A long operation of a caller.
    Op(OpId),
    /// The pin stalled on opening its `@rev` file (at most one at a time).
    Pin,
}
