//! Arguments as Python passes them: oids and tids as ints, hex or p64.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// An oid or tid as Python passes it: an int, 16 hex digits, or ZODB's
/// 8-byte big-endian form (`ZODB.utils.p64`).
pub(crate) fn id_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
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
