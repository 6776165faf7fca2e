//! Linux backend of the WCFS client: the public API (`Wcfs`, `Conn`,
//! `FileH`, `Mapping`: `handles`), the pin thread and the lock around the
//! core (`driver`), fork safety (`fork`), process exit with connections open (`exit`), joining a database's server
//! (`join`: mountpoint, mount checks, autostart), and the raw syscalls
//! (`sys`). Every protocol decision is taken by `wcfs-core`; this crate
//! performs what it asks and waits.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod driver;
mod error;
mod exit;
mod fork;
mod handles;
mod join;
mod join_lock;
#[cfg(feature = "log")]
mod oplog;
pub mod sys;

pub use driver::PIN_THREAD_STACK;
pub use error::{Context, Error, ErrorKind};
pub use exit::EXIT_LOCK_WAIT;
pub use handles::{Conn, FileH, Mapping, Wcfs, LINK_END_WAIT};
pub use join::{
    check_mount, mountpoint_for, mountpoint_under, Autostart, JoinOptions, MountEntry,
    ENV_AUTOSTART, ENV_OPTIONS, ENV_SERVER, WCFS_BASE,
};
#[cfg(feature = "log")]
pub use oplog::set_slow_pin_threshold;
pub use wcfs_core::wire::{Oid, Tid};
pub use wcfs_core::{Config, ConnStats, PIN_TIME_BUCKETS};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
