//! Linux backend of the WCFS client: the public API (`Wcfs`, `Conn`,
//! `FileH`, `Mapping`), the pin thread, fork safety, joining a database's
//! server (`join`: mountpoint, mount checks, autostart), and the raw
//! syscalls (`sys`). Every protocol decision is taken by `wcfs-core`; this crate
//! performs what it asks and waits.
#![deny(unsafe_op_in_unsafe_fn)]

mod client;
mod error;
mod join;
pub mod sys;

pub use client::{Conn, FileH, Mapping, Wcfs, EXIT_LOCK_WAIT, LINK_END_WAIT, PIN_THREAD_STACK};
pub use error::{Context, Error, ErrorKind};
pub use join::{
    check_mount, mountpoint_for, mountpoint_under, Autostart, JoinOptions, MountEntry,
    ENV_AUTOSTART, ENV_OPTIONS, ENV_SERVER, WCFS_BASE,
};
pub use wcfs_core::wire::{Oid, Tid};
pub use wcfs_core::{Config, ConnStats, PIN_TIME_BUCKETS};
