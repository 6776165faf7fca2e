//! Linux backend of the WCFS client: the public API (`Wcfs`, `Conn`,
//! `FileH`, `Mapping`: `handles`), the pin thread and the lock around the
//! core (`driver`), fork safety (`fork`), process exit with connections open (`exit`), joining a database's server
//! (`join`: mountpoint, mount checks, autostart), the raw watch link
//! (`watch`: `Wcfs::open_watch`), the mountpoint's descriptor shared by what
//! is live (`mountdir`), and the raw syscalls
//! (`sys`). Every protocol decision is taken by `wcfs-core`; this crate
//! performs what it asks and waits.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod conns;
mod driver;
mod error;
mod exit;
pub mod foreign;
mod fork;
mod handles;
mod join;
mod join_lock;
mod mountdir;
#[cfg(feature = "log")]
mod oplog;
pub mod sys;
mod vm;
mod watch;
mod wcfs;

pub use driver::PIN_THREAD_STACK;
pub use error::{Context, Error, ErrorKind, WatchError};
pub use exit::EXIT_LOCK_WAIT;
pub use handles::{Conn, FileH, Mapping, Wcfs, LINK_END_WAIT};
pub use join::{
    check_mount, mountpoint_for, mountpoint_under, Autostart, JoinOptions, MountEntry,
    ENV_AUTOSTART, ENV_OPTIONS, ENV_SERVER, WCFS_BASE,
};
#[cfg(feature = "log")]
pub use oplog::set_slow_pin_threshold;
pub use vm::{Vm, VmError};
pub use watch::{PinReq, WatchLink, MAX_FATALS};
pub use wcfs_core::wire::{Oid, Tid};
pub use wcfs_core::{Config, ConnStats, Domain, Kind, PIN_TIME_BUCKETS};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
