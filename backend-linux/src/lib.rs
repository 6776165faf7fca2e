//! Linux backend of the WCFS client: the public API (`Wcfs`, `Conn`,
//! `FileH`, `Mapping`), the pin thread, fork safety, and the raw syscalls
//! (`sys`). Every protocol decision is taken by `wcfs-core`; this crate
//! performs what it asks and waits.
#![deny(unsafe_op_in_unsafe_fn)]

mod client;
mod error;
pub mod sys;

pub use client::{Conn, FileH, Mapping, Wcfs};
pub use error::{Context, Error, ErrorKind};
pub use wcfs_core::wire::{Oid, Tid};
pub use wcfs_core::{Config, ConnStats, PIN_TIME_BUCKETS};
