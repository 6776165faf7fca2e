//! `Mapping`: blocks of a file in memory, lent through the buffer protocol.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use wcfs_linux::Kind;

use crate::errors::{exc, py_err};
use crate::file::PyFileH;
use crate::handle::{Handle, Releases, Track};

/// Blocks `[blk_start, blk_stop)` of a file in memory, as of the
/// connection's `at`. Lends its memory read-only and without copying
/// (`memoryview(m)`, `numpy.frombuffer(m, dtype=...)`).
#[pyclass(module = "wcfs_rs", name = "Mapping", extends = Handle, frozen)]
pub(crate) struct PyMapping {
    pub(crate) m: wcfs_linux::Mapping,
    pub(crate) conn: wcfs_linux::Conn,
    pub(crate) mnt: Arc<std::path::PathBuf>,
}

impl Releases for PyMapping {
    const CLOSING: &'static str = "unmap";
    const CLOSED_WITH_PARENT: bool = false;
    fn release(slf: &Bound<'_, Self>) -> PyResult<()> {
        let m = &slf.get().m;
        slf.py()
            .detach(|| m.unmap())
            .map_err(|e| py_err(slf.py(), e, false))
    }
}

/// The buffer format: unsigned bytes. Python only reads it.
pub(crate) static FORMAT_B: &[u8; 2] = b"B\0";

impl PyMapping {
    /// Why the memory cannot be lent now, if it cannot (`track`: the
    /// mapping's node).
    fn check_usable(&self, py: Python<'_>, track: &Track) -> PyResult<()> {
        let ctx = || {
            wcfs_linux::Context::conn(&self.mnt, self.conn.id(), self.conn.at())
                .file(self.m.file().oid())
                .op(format!(
                    "buffer #{}..#{}",
                    self.m.blk_start(),
                    self.m.blk_stop()
                ))
                .to_string()
        };
        let (kind, why) = if track.closed.load(Ordering::Acquire) {
            (Kind::MappingClosed, "mapping unmapped".into())
        } else if track.is_closed() {
            let conn_closed = track
                .parent
                .as_ref()
                .and_then(|f| f.parent.as_ref())
                .is_some_and(|c| c.is_closed());
            if conn_closed {
                (Kind::ConnClosed, "connection closed".into())
            } else {
                (Kind::FileClosed, "file already closed".into())
            }
        } else if self.m.is_faulting() {
            let why = match self.conn.down_reason() {
                Some(r) => format!("connection down ({r}): the memory faults"),
                None => "file or connection closed: the memory faults".into(),
            };
            (Kind::ConnClosed, why)
        } else {
            return Ok(());
        };
        let ctx = ctx();
        Err(exc(py, kind, false, format!("{ctx}: {why}"), ctx))
    }
}

#[pymethods]
impl PyMapping {
    /// The first block mapped.
    #[getter]
    fn blk_start(&self) -> u64 {
        self.m.blk_start()
    }

    /// One past the last block mapped.
    #[getter]
    fn blk_stop(&self) -> u64 {
        self.m.blk_stop()
    }

    /// Whether the memory faults now (file or connection closed or down):
    /// reading a buffer lent earlier would then be a SIGSEGV.
    #[getter]
    fn faulting(slf: &Bound<'_, Self>) -> bool {
        slf.as_super().get().track.closed.load(Ordering::Acquire) || slf.get().m.is_faulting()
    }

    /// Whether the view ended but the OS refused both to make its memory
    /// fault and to protect it: it may still show the bytes it showed then
    /// (`faulting` is true all the same; see the README).
    #[getter]
    fn exposed(slf: &Bound<'_, Self>) -> bool {
        slf.get().m.is_exposed()
    }

    /// How many buffers of this mapping are lent now.
    #[getter]
    fn exports(slf: &Bound<'_, Self>) -> usize {
        slf.as_super().get().track.exports.load(Ordering::Acquire)
    }

    /// The user's VM layer laid a private page over block `blk`: pins leave
    /// it alone until `remap_blk(blk)`.
    fn mark_dirty(&self, py: Python<'_>, blk: u64) -> PyResult<()> {
        py.detach(|| self.m.mark_dirty(blk))
            .map_err(|e| py_err(py, e, self.conn.down_reason().is_some()))
    }

    /// The private page over `blk` is gone: map the block again per the pins
    /// in force.
    fn remap_blk(&self, py: Python<'_>, blk: u64) -> PyResult<()> {
        py.detach(|| self.m.remap_blk(blk))
            .map_err(|e| py_err(py, e, self.conn.down_reason().is_some()))
    }

    /// Releases the memory now (the same as `close()`). Raises
    /// `BufferError` while a lent buffer (`memoryview`, NumPy array) lives.
    /// Unmapping again does nothing.
    fn unmap(slf: &Bound<'_, Self>) -> PyResult<()> {
        Handle::close(slf.as_super())
    }

    /// A copy of `size` bytes at `offset` (all of the rest by default).
    /// Checked, unlike a lent buffer: raises `ConnDownError` (or
    /// `FileClosedError`, `ValueError` once unmapped) instead of faulting
    /// when the memory is known to fault.
    #[pyo3(signature = (offset = 0, size = None))]
    fn read<'py>(
        slf: &Bound<'py, Self>,
        offset: usize,
        size: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (py, me) = (slf.py(), slf.get());
        me.check_usable(py, &slf.as_super().get().track)?;
        let size = size.unwrap_or_else(|| me.m.len().saturating_sub(offset));
        let mut buf = vec![0u8; size];
        py.detach(|| me.m.read(offset, &mut buf))
            .map_err(|e| py_err(py, e, me.conn.down_reason().is_some()))?;
        Ok(PyBytes::new(py, &buf))
    }

    /// The length in bytes.
    fn __len__(&self) -> usize {
        self.m.len()
    }

    /// The Rust handle's description.
    fn __repr__(&self) -> String {
        format!("<wcfs_rs.{:?}>", self.m)
    }

    /// Lends the memory: read-only, one dimension of unsigned bytes.
    ///
    /// # Safety
    ///
    /// Called by Python with a `Py_buffer` to fill (`view`), with the GIL.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null view"));
        }
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("a wcfs_rs.Mapping is read-only"));
        }
        let (me, track) = (slf.get(), &slf.as_super().get().track);
        me.check_usable(slf.py(), track)?;
        track.exports.fetch_add(1, Ordering::AcqRel);
        // SAFETY: `view` is non-null and ours to fill (the buffer protocol).
        // The memory `[addr, addr+len)` is a live mapping (checked above) and
        // stays one while the export is counted: unmap and the closes of the
        // file and connection refuse while `exports > 0`; `view.obj` keeps
        // this object alive. `shape` and `strides` point into `*view` itself,
        // which Python keeps for the life of the export; the format string is
        // static and only read.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = me.m.addr() as *mut c_void;
            (*view).len = me.m.len() as isize;
            (*view).readonly = 1;
            (*view).itemsize = 1;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                FORMAT_B.as_ptr() as *mut c_char
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                &mut (*view).len
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                &mut (*view).itemsize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    /// A lent buffer is released.
    ///
    /// # Safety
    ///
    /// Called by Python, with the GIL, once per successful `__getbuffer__`.
    unsafe fn __releasebuffer__(slf: &Bound<'_, Self>, _view: *mut ffi::Py_buffer) {
        slf.as_super()
            .get()
            .track
            .exports
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// For the benchmark (`python/bench.py`): `iters` times, maps blocks
/// `[blk_start, blk_start+blk_len)` of `fileh` through the Rust API, reads
/// it (`how`: "sum" sums every byte, "copy" copies every byte into a buffer
/// allocated once, "touch" sums one byte per page, "map" reads nothing) and
/// unmaps. Returns
/// `(nanoseconds per iteration, the last sum or copied length)`.
#[pyfunction]
pub(crate) fn _rust_mmap_read(
    py: Python<'_>,
    fileh: &PyFileH,
    blk_start: u64,
    blk_len: u64,
    iters: u32,
    how: &str,
) -> PyResult<(f64, u64)> {
    #[derive(Clone, Copy)]
    enum How {
        Sum,
        Copy,
        Touch,
        Map,
    }
    let how = match how {
        "sum" => How::Sum,
        "copy" => How::Copy,
        "touch" => How::Touch,
        "map" => How::Map,
        _ => {
            return Err(PyValueError::new_err(
                "how: 'sum', 'copy', 'touch' or 'map'",
            ))
        }
    };
    let f = fileh.f.clone();
    let page = wcfs_linux::sys::page_size();
    py.detach(move || {
        let mut out = 0u64;
        let mut buf = vec![0u8; (blk_len * f.blksize()) as usize];
        let t0 = std::time::Instant::now();
        for _ in 0..iters {
            let m = f.mmap(blk_start, blk_len)?;
            out = match how {
                How::Copy => {
                    m.read(0, &mut buf)?;
                    std::hint::black_box(&buf);
                    buf.len() as u64
                }
                How::Sum => {
                    // SAFETY: nothing resyncs, closes or unmaps while the slice lives.
                    let s = unsafe { m.as_slice() };
                    s.iter().map(|&b| b as u64).sum()
                }
                How::Touch => {
                    // SAFETY: as above.
                    let s = unsafe { m.as_slice() };
                    s.iter().step_by(page).map(|&b| b as u64).sum()
                }
                How::Map => m.len() as u64,
            };
            m.unmap()?;
        }
        let ns = t0.elapsed().as_nanos() as f64 / f64::from(iters.max(1));
        Ok((ns, out))
    })
    .map_err(|e| py_err(py, e, false))
}
