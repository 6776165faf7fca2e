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

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use pyo3::exceptions::{PyBufferError, PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use pyo3::{create_exception, ffi};

use wcfs_linux::{ErrorKind, Oid, Tid};
mod stats;

create_exception!(
    wcfs_rs,
    Error,
    PyException,
    "Any error of the WCFS client. `str(e)` is the Rust error with its context chain \
     (`wcfs <mnt>: conn<N> @<at>: f<oid>: <op>: <cause>`); `e.context` is the context part."
);
create_exception!(
    wcfs_rs,
    ConnDownError,
    Error,
    "The connection is closed or down (closed by the caller, a server error, a broken \
     link, going back in time): every mapping of it faults from now on."
);
create_exception!(
    wcfs_rs,
    GoingBackError,
    ConnDownError,
    "`resync` to a revision before the connection's: forbidden, and it brings the \
     connection down."
);
create_exception!(
    wcfs_rs,
    FileClosedError,
    Error,
    "The file handle was closed."
);
create_exception!(
    wcfs_rs,
    NotMountedError,
    Error,
    "No WCFS server is mounted there (and `join` was not to start one), or it \
     serves another database."
);
create_exception!(
    wcfs_rs,
    BadZurlError,
    Error,
    "`join`/`mountpoint_for`: the zurl has no normal form (a scheme other than file, \
     zeo, demo, neo, neos), so it names no mountpoint."
);
create_exception!(
    wcfs_rs,
    UntrustedError,
    Error,
    "`join` refuses what is mounted at the database's mountpoint: a mount by a user \
     that is neither root nor the caller, or a filesystem that is not a wcfs."
);
create_exception!(
    wcfs_rs,
    ServerStartError,
    Error,
    "`join` could not start a server: none known (`server=` or `$WCFS_SERVER`), it \
     could not be spawned, it exited first, or it did not answer in time."
);

/// The Python exception for a client error: its class by what callers
/// branch on, its text the Rust error's, `context` its context chain.
/// `down` tells whether the connection the call was on is closed or down now.
fn py_err(py: Python<'_>, e: wcfs_linux::Error, down: bool) -> PyErr {
    use wcfs_core::Error as CE;
    let msg = e.to_string();
    let err = match &e.kind {
        ErrorKind::NotMounted { .. } | ErrorKind::ZurlMismatch { .. } => {
            NotMountedError::new_err(msg)
        }
        ErrorKind::BadZurl(_) => BadZurlError::new_err(msg),
        ErrorKind::Untrusted { .. } | ErrorKind::NotWcfs { .. } => UntrustedError::new_err(msg),
        ErrorKind::NoServerExecutable
        | ErrorKind::ServerExited { .. }
        | ErrorKind::ServerTimeout { .. } => ServerStartError::new_err(msg),
        ErrorKind::Io { what, .. } if what.starts_with("autostart") => {
            ServerStartError::new_err(msg)
        }
        ErrorKind::Core(CE::GoingBack { .. }) => GoingBackError::new_err(msg),
        // A file of a closed connection is closed too: the connection is
        // what the caller must learn about.
        ErrorKind::Core(CE::ConnClosed) => ConnDownError::new_err(msg),
        _ if down => ConnDownError::new_err(msg),
        ErrorKind::Core(CE::FileClosed) => FileClosedError::new_err(msg),
        _ => Error::new_err(msg),
    };
    let _ = err.value(py).setattr("context", e.context.to_string());
    err
}

/// An oid or tid as Python passes it: an int, 16 hex digits, or ZODB's
/// 8-byte big-endian form (`ZODB.utils.p64`).
fn id_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let b = b.as_bytes();
        return <[u8; 8]>::try_from(b).map(u64::from_be_bytes).map_err(|_| {
            PyValueError::new_err(format!("{what}: {} bytes, want 8 (p64)", b.len()))
        });
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?;
        if s.len() != 16 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(PyValueError::new_err(format!(
                "{what}: {s:?} is not 16 hex digits"
            )));
        }
        return u64::from_str_radix(s, 16).map_err(|e| PyValueError::new_err(e.to_string()));
    }
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{what}: bool is not an id")));
    }
    if obj.is_instance_of::<pyo3::types::PyInt>() {
        return obj.extract::<u64>().map_err(|_| {
            PyValueError::new_err(format!("{what}: {obj} is out of range [0, 2**64)"))
        });
    }
    Err(PyTypeError::new_err(format!(
        "{what}: want int, 16 hex digits or 8 bytes, got {}",
        obj.get_type().name()?
    )))
}

// ---- export tracking ----

/// One node of the tree connection -> files -> mappings: whether the
/// caller closed it, and how many buffers its mapping lends (mappings only).
/// Read and changed with the GIL held.
struct Track {
    closed: AtomicBool,
    exports: AtomicUsize,
    parent: Option<Arc<Track>>,
    children: Mutex<Vec<Weak<Track>>>,
}

impl Track {
    fn new(parent: Option<&Arc<Track>>) -> Arc<Track> {
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
    fn is_closed(&self) -> bool {
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
struct Handle {
    track: Arc<Track>,
    /// `close()` of the subclass: [`close_as`] for it.
    close: fn(&Bound<'_, Handle>) -> PyResult<()>,
    /// Whether `closed` counts the parent's close too: a file handle of a
    /// closed connection is closed; a mapping stays open until unmapped
    /// (it holds its memory until then).
    closed_with_parent: bool,
}

/// A subclass of [`Handle`]: the Rust handle that `close()` releases.
trait Releases:
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
    fn new<T: Releases>(track: Arc<Track>) -> PyClassInitializer<Handle> {
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
fn close_as<T: Releases>(h: &Bound<'_, Handle>) -> PyResult<()> {
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
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
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

// ---- the classes ----

/// A mounted WCFS server. `WCFS(mountpoint)` or `wcfs_rs.join(zurl)`.
#[pyclass(module = "wcfs_rs", name = "WCFS", frozen)]
struct PyWcfs {
    w: wcfs_linux::Wcfs,
}

/// `NotMountedError` for a failure to open or read a mountpoint.
fn not_mounted(py: Python<'_>, e: &wcfs_linux::Error, note: &str) -> PyErr {
    let err = NotMountedError::new_err(format!("{e}{note}"));
    let _ = err.value(py).setattr("context", e.context.to_string());
    err
}

#[pymethods]
impl PyWcfs {
    /// The WCFS server mounted at `mountpoint`.
    ///
    /// Raises `NotMountedError` if no WCFS is mounted there.
    #[new]
    fn new(py: Python<'_>, mountpoint: std::path::PathBuf) -> PyResult<PyWcfs> {
        let w = py
            .detach(|| wcfs_linux::Wcfs::open(&mountpoint))
            .map_err(|e| not_mounted(py, &e, ""))?;
        // A directory that is not a WCFS mount opens fine: read head/at once.
        py.detach(|| w.head_at())
            .map_err(|e| not_mounted(py, &e, " (not a wcfs mount?)"))?;
        Ok(PyWcfs { w })
    }

    /// The mountpoint.
    #[getter]
    fn mountpoint(&self) -> String {
        self.w.mountpoint().to_string_lossy().into_owned()
    }

    /// The latest revision (`head/at`), as an int.
    fn head_at(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.w.head_at())
            .map(|t| t.0)
            .map_err(|e| py_err(py, e, false))
    }

    /// A connection viewing the database as of revision `at` (int, 16 hex
    /// digits or 8 bytes). Waits until the server has `at`.
    fn connect<'py>(&self, py: Python<'py>, at: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyConn>> {
        let at = Tid(id_arg(at, "at")?);
        let conn = py
            .detach(|| self.w.connect(at))
            .map_err(|e| py_err(py, e, false))?;
        let conn = PyConn {
            conn,
            mnt: Arc::new(self.w.mountpoint().to_path_buf()),
        };
        Bound::new(
            py,
            Handle::new::<PyConn>(Track::new(None)).add_subclass(conn),
        )
    }

    /// The Rust handle's description.
    fn __repr__(&self) -> String {
        format!("<wcfs_rs.WCFS {}>", self.w.mountpoint().display())
    }
}

/// The WCFS server of database `zurl`, where wendelin.core mounts it
/// (`mountpoint_for(zurl)`: `/dev/shm/wcfs/<sha1 of the normalized zurl>`),
/// accepted if its mount is a wcfs of root or of this user serving that
/// database; the same server for the same database within a process.
///
/// When nothing is mounted there a server is started,
/// `<server> [options] -autoexit <zurl> <mountpoint>`, and awaited:
/// `autostart` True/False, or None for `$WENDELIN_CORE_WCFS_AUTOSTART`
/// (`yes`, the default, or `no`); `server` the executable, None for
/// `$WCFS_SERVER`; `options` extra options after
/// `$WENDELIN_CORE_WCFS_OPTIONS`; `base` another directory of mountpoints.
///
/// Raises `BadZurlError`, `NotMountedError` (nothing mounted and no
/// autostart, or a server of another database), `UntrustedError`,
/// `ServerStartError`.
#[pyfunction]
#[pyo3(signature = (zurl, *, autostart=None, server=None, options=None, base=None))]
fn join(
    py: Python<'_>,
    zurl: &str,
    autostart: Option<bool>,
    server: Option<std::path::PathBuf>,
    options: Option<Vec<String>>,
    base: Option<std::path::PathBuf>,
) -> PyResult<PyWcfs> {
    let mut o = wcfs_linux::JoinOptions {
        autostart: match autostart {
            None => wcfs_linux::Autostart::FromEnv,
            Some(true) => wcfs_linux::Autostart::Yes,
            Some(false) => wcfs_linux::Autostart::No,
        },
        server,
        options: options.unwrap_or_default(),
        ..wcfs_linux::JoinOptions::default()
    };
    if let Some(b) = base {
        o.base = b;
    }
    let w = py
        .detach(|| wcfs_linux::Wcfs::join_with(zurl, &o))
        .map_err(|e| py_err(py, e, false))?;
    Ok(PyWcfs { w })
}

/// Where `join(zurl)` looks for the server of `zurl`:
/// `/dev/shm/wcfs/<sha1 hex of the normalized zurl>`. Nothing is looked up
/// or created. Raises `BadZurlError` for a zurl with no normal form.
#[pyfunction]
fn mountpoint_for(zurl: &str) -> PyResult<String> {
    wcfs_linux::mountpoint_for(zurl)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| BadZurlError::new_err(format!("wcfs: mountpoint for {zurl}: {e}")))
}

/// A view of the database as of `at`: files opened through it show their
/// data as of that revision, whatever is committed later.
#[pyclass(module = "wcfs_rs", name = "Conn", extends = Handle, frozen)]
struct PyConn {
    conn: wcfs_linux::Conn,
    mnt: Arc<std::path::PathBuf>,
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

/// One open bigfile of a connection.
#[pyclass(module = "wcfs_rs", name = "FileH", extends = Handle, frozen)]
struct PyFileH {
    f: wcfs_linux::FileH,
    conn: wcfs_linux::Conn,
    mnt: Arc<std::path::PathBuf>,
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

/// Blocks `[blk_start, blk_stop)` of a file in memory, as of the
/// connection's `at`. Lends its memory read-only and without copying
/// (`memoryview(m)`, `numpy.frombuffer(m, dtype=...)`).
#[pyclass(module = "wcfs_rs", name = "Mapping", extends = Handle, frozen)]
struct PyMapping {
    m: wcfs_linux::Mapping,
    conn: wcfs_linux::Conn,
    mnt: Arc<std::path::PathBuf>,
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
static FORMAT_B: &[u8; 2] = b"B\0";

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
        let (cls, why): (fn(String) -> PyErr, String) = if track.closed.load(Ordering::Acquire) {
            (|m| PyValueError::new_err(m), "mapping unmapped".into())
        } else if track.is_closed() {
            let conn_closed = track
                .parent
                .as_ref()
                .and_then(|f| f.parent.as_ref())
                .is_some_and(|c| c.is_closed());
            if conn_closed {
                (|m| ConnDownError::new_err(m), "connection closed".into())
            } else {
                (
                    |m| FileClosedError::new_err(m),
                    "file already closed".into(),
                )
            }
        } else if self.m.is_faulting() {
            let why = match self.conn.down_reason() {
                Some(r) => format!("connection down ({r}): the memory faults"),
                None => "file or connection closed: the memory faults".into(),
            };
            (|m| ConnDownError::new_err(m), why)
        } else {
            return Ok(());
        };
        let ctx = ctx();
        let e = cls(format!("{ctx}: {why}"));
        let _ = e.value(py).setattr("context", ctx);
        Err(e)
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
fn _rust_mmap_read(
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

/// The WCFS client: isolated, revision-exact views of ZODB bigfiles
/// served by WCFS, with zero-copy NumPy access.
#[pymodule]
fn wcfs_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConnDownError", py.get_type::<ConnDownError>())?;
    m.add("GoingBackError", py.get_type::<GoingBackError>())?;
    m.add("FileClosedError", py.get_type::<FileClosedError>())?;
    m.add("NotMountedError", py.get_type::<NotMountedError>())?;
    m.add("BadZurlError", py.get_type::<BadZurlError>())?;
    m.add("UntrustedError", py.get_type::<UntrustedError>())?;
    m.add("ServerStartError", py.get_type::<ServerStartError>())?;
    m.add_class::<PyWcfs>()?;
    m.add_class::<Handle>()?;
    m.add_class::<PyConn>()?;
    m.add_class::<PyFileH>()?;
    m.add_class::<PyMapping>()?;
    m.add_function(wrap_pyfunction!(join, m)?)?;
    m.add_function(wrap_pyfunction!(mountpoint_for, m)?)?;
    m.add_function(wrap_pyfunction!(_rust_mmap_read, m)?)?;
    stats::register(m)
}
