//! The C ABI of the WCFS client: `include/wcfs.h` over `wcfs-linux`.
//!
//! Conventions (the header's "Conventions" section says the same for C):
//! - Handles (`wcfs_wcfs`, `wcfs_conn`, `wcfs_file`, `wcfs_mapping`) are
//!   opaque: a `Box` of the Rust handle, given out through an out-pointer and
//!   released by the matching `_free`. A handle keeps what it belongs to
//!   alive (a mapping its file and connection), so they may be freed in any
//!   order.
//! - Every exported function runs inside a panic boundary (`boundary`,
//!   `getter`): a panic becomes `WCFS_ERR_PANIC` (or a getter's default),
//!   never an unwind into C.
//! - A failing call returns a `wcfs_result` and keeps the full text of the
//!   error (`wcfs <mnt>: conn<N> @<at>: ...`) in a thread-local slot, copied
//!   out by `wcfs_last_error`; nothing is allocated for the caller to free.
//! - Nothing Rust crosses the boundary: ids and revisions are `uint64_t`,
//!   strings are NUL-terminated `char *` read during the call only.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

mod conn;
mod ffi;
mod file;
mod mapping;
mod result;
mod stats;
#[cfg(test)]
mod tests;
mod vm;
mod wcfs;

pub use conn::*;
pub use file::*;
pub use mapping::*;
pub use result::*;
pub use stats::*;
pub use vm::*;
pub use wcfs::*;
