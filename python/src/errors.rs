//! The exceptions of `wcfs_rs`, and the one way an error becomes one: its
//! [`Kind`] looked up in `wcfs_linux::foreign`'s table (never its text).

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use wcfs_linux::foreign::{foreign, PyClass};
use wcfs_linux::Kind;

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

const TIMEOUT_DOC: &str = "The server did not answer, or end the link, before the deadline. \
     Also Python's `TimeoutError`.";

/// `DeadlineError(Error, builtins.TimeoutError)`, made once like
/// `MappingClosedError`.
static TIMEOUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const MAPPING_CLOSED_DOC: &str = "The mapping was unmapped. Also a `ValueError`, as for a \
     closed file object.";

/// `MappingClosedError(Error, ValueError)`: two bases, which
/// `create_exception!` cannot give, so made once by calling `type`.
static MAPPING_CLOSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// An exception class of `wcfs_rs` that is also the builtin `also`, made
/// once into `cell` by calling `type`.
fn two_based<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    doc: &str,
    also: Bound<'py, PyType>,
) -> PyResult<&'py Bound<'py, PyType>> {
    let t = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let bases = PyTuple::new(py, [py.get_type::<Error>(), also])?;
        let ns = PyDict::new(py);
        ns.set_item("__doc__", doc)?;
        ns.set_item("__module__", "wcfs_rs")?;
        let t = py.get_type::<PyType>().call1((name, bases, ns))?;
        Ok(t.cast_into::<PyType>()?.unbind())
    })?;
    Ok(t.bind(py))
}

/// The exception type of `class`.
fn class_type(py: Python<'_>, class: PyClass) -> PyResult<Bound<'_, PyType>> {
    Ok(match class {
        PyClass::Error => py.get_type::<Error>(),
        PyClass::ConnDown => py.get_type::<ConnDownError>(),
        PyClass::GoingBack => py.get_type::<GoingBackError>(),
        PyClass::FileClosed => py.get_type::<FileClosedError>(),
        PyClass::MappingClosed => two_based(
            py,
            &MAPPING_CLOSED,
            "MappingClosedError",
            MAPPING_CLOSED_DOC,
            py.get_type::<PyValueError>(),
        )?
        .clone(),
        PyClass::Timeout => two_based(
            py,
            &TIMEOUT,
            "DeadlineError",
            TIMEOUT_DOC,
            py.get_type::<PyTimeoutError>(),
        )?
        .clone(),
        PyClass::NotMounted => py.get_type::<NotMountedError>(),
        PyClass::BadZurl => py.get_type::<BadZurlError>(),
        PyClass::Untrusted => py.get_type::<UntrustedError>(),
        PyClass::ServerStart => py.get_type::<ServerStartError>(),
    })
}

/// The exception type errors of `kind` raise (the connection up).
pub(crate) fn class_type_of(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    class_type(py, class_of(kind, false))
}

/// The class an error of `kind` raises; `down`: the connection the call
/// was on is closed or down now ([`PyClass::when_down`]).
pub(crate) fn class_of(kind: Kind, down: bool) -> PyClass {
    let class = foreign(kind).py;
    if down {
        class.when_down()
    } else {
        class
    }
}

/// The exception for an error of `kind` with text `msg` and context chain
/// `context` (as `e.context`).
pub(crate) fn exc(py: Python<'_>, kind: Kind, down: bool, msg: String, context: String) -> PyErr {
    let err = match class_type(py, class_of(kind, down)) {
        Ok(t) => PyErr::from_type(t, msg),
        Err(e) => return e,
    };
    if let Err(e) = err.value(py).setattr("context", context) {
        return e;
    }
    err
}

/// The Python exception for a client error: its class from the table by
/// its kind, its text the Rust error's, `context` its context chain.
/// `down` tells whether the connection the call was on is closed or down now.
pub(crate) fn py_err(py: Python<'_>, e: wcfs_linux::Error, down: bool) -> PyErr {
    exc(py, e.kind(), down, e.to_string(), e.context.to_string())
}

/// The exception for a `WCFS(mountpoint)` that finds no WCFS there: the
/// mountpoint did not open, or `head/at` did not read. Its kind is
/// [`Kind::NotMounted`], whatever the OS said; `note` follows the text.
pub(crate) fn not_mounted(py: Python<'_>, e: &wcfs_linux::Error, note: &str) -> PyErr {
    let msg = format!("{e}{note}");
    exc(py, Kind::NotMounted, false, msg, e.context.to_string())
}

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for class in [
        PyClass::Error,
        PyClass::ConnDown,
        PyClass::GoingBack,
        PyClass::FileClosed,
        PyClass::MappingClosed,
        PyClass::NotMounted,
        PyClass::BadZurl,
        PyClass::Untrusted,
        PyClass::ServerStart,
        PyClass::Timeout,
    ] {
        m.add(class.name(), class_type(py, class)?)?;
    }
    Ok(())
}

/// A row of `_error_table()`.
type TableRow = (String, Py<PyType>, Py<PyType>);

/// `_error_table()`: the table as Python sees it, one `(kind name, class,
/// class when the connection is down)` per kind, for the test that walks
/// every kind.
#[pyfunction]
pub(crate) fn _error_table(py: Python<'_>) -> PyResult<Vec<TableRow>> {
    Kind::ALL
        .iter()
        .map(|&k| {
            let up = class_type(py, class_of(k, false))?.unbind();
            let down = class_type(py, class_of(k, true))?.unbind();
            Ok((k.name().to_string(), up, down))
        })
        .collect()
}
