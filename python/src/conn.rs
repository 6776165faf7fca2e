//! `Conn`: a view of the database as of a revision.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use wcfs_linux::{Oid, Tid};

use crate::args::id_arg;
use crate::errors::py_err;
use crate::file::PyFileH;
use crate::handle::{Handle, Releases, Track};

/// A view of the database as of `at`: files opened through it show their
/// data as of that revision, whatever is committed later.
#[pyclass(module = "wcfs_rs", name = "Conn", extends = Handle, frozen)]
pub(crate) struct PyConn {
    pub(crate) conn: wcfs_linux::Conn,
    pub(crate) mnt: Arc<std::path::PathBuf>,
}

impl PyConn {
    fn err(&self, py: Python<'_>, e: wcfs_linux::Error) -> PyErr {
        let down = self.conn.down_reason().is_some();
        py_err(py, e, down)
    }
}

impl Releases for PyConn {
    const CLOSING: &'static str = "close the connection";
    const CLOSED_WITH_PARENT: bool = true;
    fn release(slf: &Bound<'_, Self>) -> PyResult<()> {
        let (py, me) = (slf.py(), slf.get());
        py.detach(|| me.conn.close()).map_err(|e| me.err(py, e))
    }
}

#[pymethods]
impl PyConn {
    /// The revision this connection views, as an int.
    /// The connection's number within its WCFS (`conn<N>` in error contexts).
    #[getter]
    fn id(&self) -> u64 {
        self.conn.id()
    }

    #[getter]
    fn at(&self) -> u64 {
        self.conn.at().0
    }

    /// Why the connection is down (the Rust error's text), or None.
    #[getter]
    fn down_reason(&self) -> Option<String> {
        self.conn.down_reason().map(|e| e.to_string())
    }

    /// The connection's statistics since it was made, read without
    /// stopping its pin thread, as a dict: `pins`, `unpins` (pins applied),
    /// `acks`, `naks` (replies sent), `rev_opens`, `rev_hits` (`@rev` files
    /// opened, and pins that found theirs open), `remaps` (blocks remapped
    /// one by one), `resyncs`, and `pin_time_ns`: `PIN_TIME_BUCKETS` counts
    /// of pins handled (pin read to ack written) in log-linear buckets of
    /// ns, see `pin_time_bucket_end` and `pin_time_quantile` (stats.rs).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.conn.stats();
        let d = PyDict::new(py);
        d.set_item("pins", s.pins)?;
        d.set_item("unpins", s.unpins)?;
        d.set_item("acks", s.acks)?;
        d.set_item("naks", s.naks)?;
        d.set_item("rev_opens", s.rev_opens)?;
        d.set_item("rev_hits", s.rev_hits)?;
        d.set_item("remaps", s.remaps)?;
        d.set_item("resyncs", s.resyncs)?;
        d.set_item("dirty_kept", s.dirty_kept)?;
        d.set_item("pin_time_ns", s.pin_time_ns.to_vec())?;
        Ok(d)
    }

    /// Opens bigfile `oid` (int, 16 hex digits or 8 bytes). Each call gives
    /// a handle of its own; closing one leaves the others working.
    fn open<'py>(slf: &Bound<'py, Self>, oid: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyFileH>> {
        let (py, me) = (slf.py(), slf.get());
        let oid = Oid(id_arg(oid, "oid")?);
        let f = py.detach(|| me.conn.open(oid)).map_err(|e| me.err(py, e))?;
        let track = Track::new(Some(&slf.as_super().get().track));
        let fileh = PyFileH {
            f,
            conn: me.conn.clone(),
            mnt: me.mnt.clone(),
        };
        Bound::new(py, Handle::new::<PyFileH>(track).add_subclass(fileh))
    }

    /// Moves the view forward to revision `at`: every mapping (and every
    /// buffer lent from one) shows the data as of `at` from now on. Going
    /// back raises `GoingBackError` and brings the connection down.
    fn resync(&self, py: Python<'_>, at: &Bound<'_, PyAny>) -> PyResult<()> {
        let at = Tid(id_arg(at, "at")?);
        py.detach(|| self.conn.resync(at))
            .map_err(|e| self.err(py, e))
    }

    /// The Rust handle's description.
    fn __repr__(&self) -> String {
        format!("<wcfs_rs.Conn {:?}>", self.conn)
    }
}
