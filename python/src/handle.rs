//! Export tracking and the base class `Handle` that `Conn`, `FileH` and
//! `Mapping` share.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::PyClassInitializer;

// ---- export tracking ----

/// One node of the tree connection -> files -> mappings: whether the
/// caller closed it, and how many buffers its mapping lends (mappings only).
/// Read and changed with the GIL held.
pub(crate) struct Track {
    pub(crate) closed: AtomicBool,
    pub(crate) exports: AtomicUsize,
    pub(crate) parent: Option<Arc<Track>>,
    pub(crate) children: Mutex<Vec<Weak<Track>>>,
}

impl Track {
    pub(crate) fn new(parent: Option<&Arc<Track>>) -> Arc<Track> {
        let t = Arc::new(Track {
            closed: AtomicBool::new(false),
            exports: AtomicUsize::new(0),
            parent: parent.cloned(),
            children: Mutex::new(Vec::new()),
        });
        if let Some(p) = parent {
            let mut ch = p.children.lock().unwrap_or_else(|e| e.into_inner());
            ch.retain(|c| c.strong_count() > 0);
            ch.push(Arc::downgrade(&t));
        }
        t
    }

    /// Buffers lent by this node and everything under it.
    fn live_exports(&self) -> usize {
        let ch = self.children.lock().unwrap_or_else(|e| e.into_inner());
        self.exports.load(Ordering::Acquire)
            + ch.iter()
                .filter_map(Weak::upgrade)
                .map(|c| c.live_exports())
                .sum::<usize>()
    }

    /// Closed by the caller, here or above.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.parent.as_ref().is_some_and(|p| p.is_closed())
    }

    /// Marks the node closed unless buffers are lent under it.
    fn begin_close(&self, what: &str) -> PyResult<()> {
        let n = self.live_exports();
        if n > 0 {
            return Err(PyBufferError::new_err(format!(
                "cannot {what}: {n} exported buffer(s) of its memory exist"
            )));
        }
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

// ---- the handles: what Conn, FileH and Mapping share ----

// `close()`, `closed` and the `with` statement, written once. `Handle`
// holds the handle's node of the `Track` tree; the subclass holds its Rust
// handle and says how to release it (`Releases`).

/// The base class of `Conn`, `FileH` and `Mapping` (not made directly):
/// `close()`, `closed` and the `with` statement work the same on each.
#[pyclass(module = "wcfs_rs", name = "Handle", subclass, frozen)]
pub(crate) struct Handle {
    pub(crate) track: Arc<Track>,
    /// `close()` of the subclass: [`close_as`] for it.
    pub(crate) close: fn(&Bound<'_, Handle>) -> PyResult<()>,
    /// Whether `closed` counts the parent's close too: a file handle of a
    /// closed connection is closed; a mapping stays open until unmapped
    /// (it holds its memory until then).
    pub(crate) closed_with_parent: bool,
}

/// A subclass of [`Handle`]: the Rust handle that `close()` releases.
pub(crate) trait Releases:
    pyo3::PyClass<BaseType = Handle, Frozen = pyo3::pyclass::boolean_struct::True> + Sync
{
    /// What closing it is called in the `BufferError` that refuses it.
    const CLOSING: &'static str;
    /// [`Handle::closed_with_parent`].
    const CLOSED_WITH_PARENT: bool;
    /// Releases the Rust handle (the GIL released), once.
    fn release(slf: &Bound<'_, Self>) -> PyResult<()>;
}

impl Handle {
    /// The base of a `T` whose node is `track`.
    pub(crate) fn new<T: Releases>(track: Arc<Track>) -> PyClassInitializer<Handle> {
        PyClassInitializer::from(Handle {
            track,
            close: close_as::<T>,
            closed_with_parent: T::CLOSED_WITH_PARENT,
        })
    }
}

/// `close()` of a `T`: nothing if closed already; refused while buffers
/// are lent under it; else marked closed (with the GIL, so no export slips
/// in) and released.
pub(crate) fn close_as<T: Releases>(h: &Bound<'_, Handle>) -> PyResult<()> {
    let track = &h.get().track;
    if track.closed.load(Ordering::Acquire) {
        return Ok(());
    }
    track.begin_close(T::CLOSING)?;
    T::release(h.cast::<T>()?)
}

#[pymethods]
impl Handle {
    /// Closes the handle: a connection's files and mappings, a file's
    /// mappings stop working; a mapping is unmapped (the same as
    /// `Mapping.unmap()`). Raises `BufferError` while a buffer lent from
    /// its memory (or from a mapping under it) lives. Closing again does
    /// nothing.
    pub(crate) fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        (slf.get().close)(slf)
    }

    /// Whether `close()` was called: on this handle, or, for a file handle,
    /// on its connection (a mapping is closed by its own `close()` or
    /// `unmap()` only).
    #[getter]
    fn closed(&self) -> bool {
        if self.closed_with_parent {
            self.track.is_closed()
        } else {
            self.track.closed.load(Ordering::Acquire)
        }
    }

    /// Returns itself (closed on leaving the `with` block).
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the handle.
    #[pyo3(signature = (*_exc))]
    fn __exit__(slf: &Bound<'_, Self>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        Self::close(slf)?;
        Ok(false)
    }
}
