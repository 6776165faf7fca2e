//! `wcfs_rs`: the Python module over the Linux client (`wcfs-linux`).
//!
//! The same verbs as the Rust API: `join(zurl)` / `WCFS(mountpoint)`,
//! `head_at()`, `connect(at)` -> `Conn`, `Conn.open(oid)` -> `FileH`,
//! `FileH.mmap(blk_start, blk_len)` -> `Mapping`. Every protocol decision
//! stays in the core; this module only converts arguments, releases the GIL
//! around calls that can wait on the server, maps errors to Python
//! exceptions, and lends a `Mapping`'s memory through the buffer protocol.
//!
//! `Conn`, `FileH` and `Mapping` are subclasses of one base class,
//! `Handle` ([`Handle`]): `close()`, `closed` and the `with` statement are
//! written there once; each subclass says how its Rust handle is released
//! ([`Releases`]).
//!
//! # Exported buffers
//!
//! A `Mapping` lends its memory read-only and without copying
//! (`memoryview(m)`, `numpy.frombuffer(m, ...)`). Like Python's own `mmap`,
//! it counts the buffers it has lent: unmapping it, or closing its file or
//! connection, while a lent buffer lives raises `BufferError` instead of
//! leaving Python a view of memory that is about to fault. The counts live
//! in one tree of [`Track`]s (connection -> files -> mappings), checked and
//! updated with the GIL held, so a check and the close it allows cannot be
//! interleaved with a new export.
//!
//! What no check can cover: the connection going down under live exports
//! for a reason the caller does not control (the server errs or breaks the
//! link, a pin is refused, `resync` to an older revision raised
//! `GoingBackError`). The core then makes every page of its mappings fault;
//! a lent buffer read after that is a `SIGSEGV`. Each access through this
//! module checks first (`memoryview(m)` and `m.read()` raise
//! `ConnDownError`), and the call that brought the connection down raised
//! first, but an old `memoryview` or NumPy array read after it faults.

#![warn(missing_docs)]

use pyo3::prelude::*;

mod args;
mod conn;
mod errors;
mod file;
mod handle;
mod mapping;
mod stats;
mod wcfs;
mod wendelin; // the `_wcfs`-shaped layer, `wcfs_rs.wendelin`

use conn::PyConn;
pub(crate) use errors::py_err;
use file::PyFileH;
use handle::Handle;
use mapping::PyMapping;
use wcfs::PyWcfs;

/// The WCFS client: isolated, revision-exact views of ZODB bigfiles
/// served by WCFS, with zero-copy NumPy access.
#[pymodule]
fn wcfs_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(errors::_error_table, m)?)?;
    m.add_class::<PyWcfs>()?;
    m.add_class::<Handle>()?;
    m.add_class::<PyConn>()?;
    m.add_class::<PyFileH>()?;
    m.add_class::<PyMapping>()?;
    m.add_function(wrap_pyfunction!(wcfs::join, m)?)?;
    m.add_function(wrap_pyfunction!(wcfs::mountpoint_for, m)?)?;
    m.add_function(wrap_pyfunction!(mapping::_rust_mmap_read, m)?)?;
    wendelin::register(m)?;
    stats::register(m)
}
