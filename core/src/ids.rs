//! The names of what a connection holds: files, mappings, long operations,
//! the VMs mappings serve (named by the backend), and the owner of a
//! blocking action. Plain `Copy` newtypes; every other module names things
//! by them.

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

/// Names a user-space virtual-memory manager (one lock) that a mapping
/// serves as base layer (`Conn::mmap_vm`). Chosen by the backend, which
/// keeps what the number stands for; mappings that share one lock share
/// one `VmId`. Several VMs are locked in ascending `VmId` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmId(pub u64);

/// Who a blocking action belongs to, and so who gets its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tok {
    /// A long operation of a caller.
    Op(OpId),
    /// The pin stalled on opening its `@rev` file (at most one at a time).
    Pin,
}
