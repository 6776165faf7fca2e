//! `FileH`: an open bigfile of a connection.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::py_err;
use crate::handle::{Handle, Releases, Track};
use crate::mapping::PyMapping;

/// One open bigfile of a connection.
#[pyclass(module = "wcfs_rs", name = "FileH", extends = Handle, frozen)]
pub(crate) struct PyFileH {
    pub(crate) f: wcfs_linux::FileH,
    pub(crate) conn: wcfs_linux::Conn,
    pub(crate) mnt: Arc<std::path::PathBuf>,
}

impl PyFileH {
    fn err(slf: &Bound<'_, Self>, e: wcfs_linux::Error) -> PyErr {
        // The connection is closed (by the caller) or down.
        let track = &slf.as_super().get().track;
        let down = track.parent.as_ref().is_some_and(|p| p.is_closed())
            || slf.get().conn.down_reason().is_some();
        py_err(slf.py(), e, down)
    }
}

impl Releases for PyFileH {
    const CLOSING: &'static str = "close the file";
    const CLOSED_WITH_PARENT: bool = true;
    fn release(slf: &Bound<'_, Self>) -> PyResult<()> {
        let f = &slf.get().f;
        slf.py().detach(|| f.close()).map_err(|e| Self::err(slf, e))
    }
}

#[pymethods]
impl PyFileH {
    /// The file's oid, as an int.
    #[getter]
    fn oid(&self) -> u64 {
        self.f.oid().0
    }

    /// The block size in bytes.
    #[getter]
    fn blksize(&self) -> u64 {
        self.f.blksize()
    }

    /// Maps blocks `[blk_start, blk_start + blk_len)` showing the data as of
    /// the connection's `at`. Blocks past the end of the file read as zeros.
    fn mmap<'py>(
        slf: &Bound<'py, Self>,
        blk_start: u64,
        blk_len: u64,
    ) -> PyResult<Bound<'py, PyMapping>> {
        let (py, me) = (slf.py(), slf.get());
        let m = py
            .detach(|| me.f.mmap(blk_start, blk_len))
            .map_err(|e| Self::err(slf, e))?;
        let track = Track::new(Some(&slf.as_super().get().track));
        let mapping = PyMapping {
            m,
            conn: me.conn.clone(),
            mnt: me.mnt.clone(),
        };
        Bound::new(py, Handle::new::<PyMapping>(track).add_subclass(mapping))
    }

    /// The pins in force, `{blk: tid}` (a diagnostic: which blocks show an
    /// older revision than head).
    fn pinned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (blk, rev) in self.f.pinned() {
            d.set_item(blk, rev.0)?;
        }
        Ok(d)
    }

    /// The Rust handle's description.
    fn __repr__(&self) -> String {
        format!("<wcfs_rs.FileH {:?} blksize={}>", self.f, self.f.blksize())
    }
}
