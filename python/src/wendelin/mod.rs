//! `wcfs_rs._wendelin`: the handles the `_wcfs`-shaped layer
//! (`wcfs_rs.wendelin`, Python, `wendelin.py`) is written over.
//!
//! Plain wrappers of `wcfs-linux`'s handles, without the export tracking of
//! the Pythonic API: `memoryview(Mapping)` lends the mapping's memory
//! counted nowhere (the view keeps the mapping alive but never blocks
//! `unmap`; reading it once the view ended faults, as wendelin.core's
//! tests expect), and the raw watch link. Every call that can wait on the server releases the GIL. Errors
//! are `wcfs_rs.Error` (their classes from the one table, as in the
//! Pythonic API); a deadline passing on the watch link raises
//! `wcfs_rs.DeadlineError` (kind `Timeout`, also `_wendelin.Timeout`), for
//! the layer to turn into its context's error.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use wcfs_linux::{Context, ErrorKind, Kind, Oid, Tid};

use crate::errors::class_type_of;
use crate::py_err;

/// A WCFS mount, opened for a `PyWCFS`; holds no descriptor in the mount
/// while nothing of it is live.
#[pyclass(module = "wcfs_rs._wendelin", name = "Wcfs", frozen)]
pub(crate) struct RawWcfs {
    w: wcfs_linux::Wcfs,
}

#[pymethods]
impl RawWcfs {
    #[new]
    fn new(py: Python<'_>, mountpoint: std::path::PathBuf) -> PyResult<RawWcfs> {
        let w = py
            .detach(|| wcfs_linux::Wcfs::open(&mountpoint))
            .map_err(|e| py_err(py, e, false))?;
        Ok(RawWcfs { w })
    }

    fn head_at(&self, py: Python<'_>) -> PyResult<u64> {
        let r = py.detach(|| self.w.head_at());
        r.map(|t| t.0).map_err(|e| py_err(py, e, false))
    }

    fn connect(&self, py: Python<'_>, at: u64) -> PyResult<RawConn> {
        let r = py.detach(|| self.w.connect(Tid(at)));
        let c = r.map_err(|e| py_err(py, e, false))?;
        let mountpoint = self.w.mountpoint().to_path_buf();
        Ok(RawConn { c, mountpoint })
    }

    fn open_watch(&self, py: Python<'_>) -> PyResult<RawWatchLink> {
        let r = py.detach(|| self.w.open_watch());
        let l = r.map_err(|e| py_err(py, e, false))?;
        Ok(RawWatchLink { l })
    }
}

#[pyclass(module = "wcfs_rs._wendelin", name = "Conn", frozen)]
pub(crate) struct RawConn {
    c: wcfs_linux::Conn,
    mountpoint: std::path::PathBuf,
}

impl RawConn {
    fn err(&self, py: Python<'_>, e: wcfs_linux::Error) -> PyErr {
        let down = self.c.down_reason().is_some();
        py_err(py, e, down)
    }
}

#[pymethods]
impl RawConn {
    fn at(&self) -> u64 {
        self.c.at().0
    }

    fn id(&self) -> u64 {
        self.c.id()
    }

    fn open(&self, py: Python<'_>, oid: u64) -> PyResult<RawFileH> {
        let r = py.detach(|| self.c.open(Oid(oid)));
        let f = r.map_err(|e| self.err(py, e))?;
        Ok(RawFileH { f })
    }

    /// Raises what `open(oid)` would if the connection is down (for a file
    /// the layer has open already, and hands out again without a call).
    fn check_open(&self, py: Python<'_>, oid: u64) -> PyResult<()> {
        if self.c.down_reason().is_none() {
            return Ok(());
        }
        let e = wcfs_linux::Error {
            context: Context::conn(&self.mountpoint, self.c.id(), self.c.at())
                .op(format!("open f<{}>", Oid(oid))),
            kind: ErrorKind::Core(wcfs_core::Error::ConnClosed),
        };
        Err(py_err(py, e, true))
    }

    fn resync(&self, py: Python<'_>, at: u64) -> PyResult<()> {
        let r = py.detach(|| self.c.resync(Tid(at)));
        r.map_err(|e| self.err(py, e))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| self.c.close());
        r.map_err(|e| self.err(py, e))
    }
}

#[pyclass(module = "wcfs_rs._wendelin", name = "FileH", frozen)]
pub(crate) struct RawFileH {
    f: wcfs_linux::FileH,
}

#[pymethods]
impl RawFileH {
    #[getter]
    fn blksize(&self) -> u64 {
        self.f.blksize()
    }

    /// `{blk: rev}` of the pins in force.
    fn pinned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (blk, rev) in self.f.pinned() {
            d.set_item(blk, rev.0)?;
        }
        Ok(d)
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| self.f.close());
        r.map_err(|e| py_err(py, e, false))
    }
}

/// A mapping, made by `Mapping(fileh, blk_start, blk_len)`; subclassable
/// (`wcfs_rs.wendelin.PyMapping` is its subclass), and a buffer exporter:
/// `memoryview(m)` lends its memory read-only, counted nowhere.
#[pyclass(module = "wcfs_rs._wendelin", name = "Mapping", frozen, subclass)]
pub(crate) struct RawMapping {
    m: wcfs_linux::Mapping,
}

#[pymethods]
impl RawMapping {
    /// Maps blocks `[blk_start, blk_start + blk_len)` of `fileh`.
    #[new]
    fn new(py: Python<'_>, fileh: &RawFileH, blk_start: u64, blk_len: u64) -> PyResult<RawMapping> {
        let r = py.detach(|| fileh.f.mmap(blk_start, blk_len));
        let m = r.map_err(|e| py_err(py, e, false))?;
        Ok(RawMapping { m })
    }

    #[getter]
    fn blk_start(&self) -> u64 {
        self.m.blk_start()
    }

    #[getter]
    fn blk_stop(&self) -> u64 {
        self.m.blk_stop()
    }

    /// The buffer of `memoryview(m)`: the mapping's range, read-only,
    /// counted nowhere: the view keeps this object (so the mapping) alive,
    /// never blocks `unmap`, and reading it once the view ended faults
    /// (SIGSEGV); after `unmap` it reads whatever the process maps there
    /// later, as in `_wcfs`.
    ///
    /// # Safety
    ///
    /// Called by Python with a view to fill (the buffer protocol).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "the memory of a mapping is read-only",
            ));
        }
        let m = &slf.get().m;
        let len = isize::try_from(m.len())
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("mapping too long"))?;
        // SAFETY: `view` is Python's to fill; `[addr, addr + len)` is this
        // mapping's range, lent read-only; `PyBuffer_FillInfo` takes a
        // reference to `slf` for `view.obj`, keeping the mapping alive
        // while the buffer lives. Whether its pages still show the data is
        // the caller's business (the `_wcfs` contract: reads fault after).
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(view, slf.as_ptr(), m.addr() as *mut c_void, len, 1, flags)
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn unmap(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| self.m.unmap());
        r.map_err(|e| py_err(py, e, false))
    }
}

/// The raw watch link: deadlines as seconds from now (`None`: no bound).
#[pyclass(module = "wcfs_rs._wendelin", name = "WatchLink", frozen)]
pub(crate) struct RawWatchLink {
    l: wcfs_linux::WatchLink,
}

fn deadline(timeout: Option<f64>) -> Option<Instant> {
    timeout.map(|t| {
        Instant::now() + Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::MAX / 4)
    })
}

fn link_err(py: Python<'_>, e: wcfs_linux::Error) -> PyErr {
    py_err(py, e, false)
}

#[pymethods]
impl RawWatchLink {
    /// Sends `req`; returns its stream, for `wait_reply`.
    fn start_req(&self, py: Python<'_>, req: &str) -> PyResult<u64> {
        let r = py.detach(|| self.l.start_req(req));
        r.map_err(|e| link_err(py, e))
    }

    #[pyo3(signature = (stream, timeout = None))]
    fn wait_reply(&self, py: Python<'_>, stream: u64, timeout: Option<f64>) -> PyResult<String> {
        let d = deadline(timeout);
        let r = py.detach(|| self.l.wait_reply(stream, d));
        r.map_err(|e| link_err(py, e))
    }

    fn abandon_req(&self, stream: u64) {
        self.l.abandon_req(stream)
    }

    /// `(stream, oid, blk, at or None for head, msg)`, or `None` at EOF.
    #[pyo3(signature = (timeout = None))]
    #[allow(clippy::type_complexity)]
    fn recv_req(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<Option<(u64, u64, u64, Option<u64>, String)>> {
        let d = deadline(timeout);
        let r = py.detach(|| self.l.recv_req(d));
        let req = r.map_err(|e| link_err(py, e))?;
        Ok(req.map(|r| {
            let at = match r.rev {
                wcfs_core::wire::Rev::Head => None,
                wcfs_core::wire::Rev::At(t) => Some(t.0),
            };
            (r.stream, r.oid.0, r.blk, at, r.msg)
        }))
    }

    fn reply_req(&self, py: Python<'_>, stream: u64, reply: &str) -> PyResult<()> {
        let r = py.detach(|| self.l.reply_req(stream, reply));
        r.map_err(|e| link_err(py, e))
    }

    fn write_raw(&self, py: Python<'_>, pkt: &Bound<'_, PyBytes>) -> PyResult<()> {
        let pkt = pkt.as_bytes().to_vec();
        let r = py.detach(|| self.l.write_raw(&pkt));
        r.map_err(|e| link_err(py, e))
    }

    fn close_write(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| self.l.close_write());
        r.map_err(|e| link_err(py, e))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| self.l.close());
        r.map_err(|e| link_err(py, e))
    }

    fn fatals(&self) -> Vec<String> {
        self.l.fatals()
    }

    #[pyo3(signature = (timeout = None))]
    fn wait_ended(&self, py: Python<'_>, timeout: Option<f64>) -> bool {
        let d = deadline(timeout);
        py.detach(|| self.l.wait_ended(d))
    }
}

/// Builds `wcfs_rs._wendelin` and, over it, `wcfs_rs.wendelin` (the Python
/// source `wendelin.py`, compiled in), and adds both to `m` and `sys.modules`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let raw = PyModule::new(py, "_wendelin")?;
    raw.add("Timeout", class_type_of(py, Kind::Timeout)?)?;
    raw.add("Error", py.get_type::<crate::errors::Error>())?;
    raw.add_class::<RawWcfs>()?;
    raw.add_class::<RawConn>()?;
    raw.add_class::<RawFileH>()?;
    raw.add_class::<RawMapping>()?;
    raw.add_class::<RawWatchLink>()?;
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item("wcfs_rs._wendelin", &raw)?;
    m.add("_wendelin", &raw)?;
    let code = std::ffi::CString::new(include_str!("wendelin.py"))?;
    let layer = PyModule::from_code(py, &code, c"wcfs_rs/wendelin.py", c"wcfs_rs.wendelin")?;
    modules.set_item("wcfs_rs.wendelin", &layer)?;
    m.add("wendelin", layer)?;
    Ok(())
}
