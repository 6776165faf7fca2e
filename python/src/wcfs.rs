//! `WCFS`, `join` and `mountpoint_for`: a mounted server, found or started.

use std::sync::Arc;

use pyo3::prelude::*;

use wcfs_linux::{Kind, Tid};

use crate::args::id_arg;
use crate::conn::PyConn;
use crate::errors::{exc, not_mounted, py_err};
use crate::handle::{Handle, Track};

// ---- the classes ----

/// A mounted WCFS server. `WCFS(mountpoint)` or `wcfs_rs.join(zurl)`.
#[pyclass(module = "wcfs_rs", name = "WCFS", frozen)]
pub(crate) struct PyWcfs {
    pub(crate) w: wcfs_linux::Wcfs,
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
        self.connect_with(py, at, None, None)
    }

    /// `connect` with tunables: `rev_cache`, the `@rev` files kept open
    /// (1..=16, default 8), and `max_pins_per_file`, the most pins in force
    /// per file before the connection goes down (default 2**22). `None`:
    /// the default.
    #[pyo3(signature = (at, *, rev_cache=None, max_pins_per_file=None))]
    fn connect_with<'py>(
        &self,
        py: Python<'py>,
        at: &Bound<'_, PyAny>,
        rev_cache: Option<usize>,
        max_pins_per_file: Option<usize>,
    ) -> PyResult<Bound<'py, PyConn>> {
        let at = Tid(id_arg(at, "at")?);
        let d = wcfs_linux::Config::default();
        let cfg = wcfs_linux::Config {
            rev_cache: rev_cache.unwrap_or(d.rev_cache),
            max_pins_per_file: max_pins_per_file.unwrap_or(d.max_pins_per_file),
            ..d
        };
        let conn = py
            .detach(|| self.w.connect_with(at, cfg))
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
pub(crate) fn join(
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
pub(crate) fn mountpoint_for(py: Python<'_>, zurl: &str) -> PyResult<String> {
    wcfs_linux::mountpoint_for(zurl)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| {
            let ctx = format!("wcfs: mountpoint for {zurl}");
            exc(py, Kind::BadZurl, false, format!("{ctx}: {e}"), ctx)
        })
}
