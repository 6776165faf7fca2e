//! A recording, deterministic mock OS for `wcfs-core`.
//!
//! [`MockBackend`] performs every [`Backend`](wcfs_core::Backend) call on a simulated file table
//! and address space, and records it in order ([`Call`]), so tests can assert
//! exact traces and count syscalls. [`MockBackend::read`] reads simulated
//! memory through a caller-supplied data source, faulting where the memory
//! faults or is unmapped. [`FaultInjector`] wraps any backend and fails
//! operations by seeded chances named per [`OsOp`](wcfs_core::OsOp). No threads, no clocks,
//! no randomness but the injector's seed.

#![warn(missing_docs)]

pub mod user_op;

use wcfs_core::Errno;

/// No such file.
pub const ENOENT: Errno = Errno(2);
/// I/O error.
pub const EIO: Errno = Errno(5);
/// Bad descriptor.
pub const EBADF: Errno = Errno(9);
/// Out of memory (or mappings).
pub const ENOMEM: Errno = Errno(12);
/// Already exists (a caller's reservation overlapping another).
pub const EEXIST: Errno = Errno(17);
/// Invalid argument.
pub const EINVAL: Errno = Errno(22);
/// Broken pipe (a write on a closed link).
pub const EPIPE: Errno = Errno(32);

mod fault_injector;
mod harness;
mod mock;
mod quiet;
#[cfg(test)]
mod tests;
mod trace;

pub use fault_injector::FaultInjector;
pub use harness::Harness;
pub use mock::MockBackend;
pub use quiet::{QuietBackend, StatTable};
pub use trace::{Call, Counts, Mem, Path, Store};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
