//! Reading the pin handling time histogram of `Conn.stats()["pin_time_ns"]`:
//! its size, its buckets' ends, its quantiles (the core's, once).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use wcfs_linux::{ConnStats, PIN_TIME_BUCKETS};

/// The end (ns, exclusive) of bucket `i` of `pin_time_ns`, where bucket
/// `i + 1` starts (bucket 0 starts at 0); `None` for the last bucket, which
/// also counts everything longer.
#[pyfunction]
fn pin_time_bucket_end(i: usize) -> Option<u64> {
    match wcfs_core::pin_time_bucket_end(i) {
        u64::MAX => None,
        end => Some(end),
    }
}

/// An upper bound (ns) of the `q`-quantile of a `pin_time_ns` list (the end
/// of the bucket holding it, at most 6.25 % above the true time); `None`
/// when it counts nothing, or the quantile is in the last bucket.
#[pyfunction]
fn pin_time_quantile(pin_time_ns: Vec<u64>, q: f64) -> PyResult<Option<u64>> {
    let mut s = ConnStats::default();
    if pin_time_ns.len() != PIN_TIME_BUCKETS {
        return Err(PyValueError::new_err(format!(
            "pin_time_ns has {} counts, not {PIN_TIME_BUCKETS}",
            pin_time_ns.len()
        )));
    }
    s.pin_time_ns.copy_from_slice(&pin_time_ns);
    Ok(s.pin_time_quantile(q).filter(|&ns| ns != u64::MAX))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PIN_TIME_BUCKETS", PIN_TIME_BUCKETS)?;
    m.add_function(wrap_pyfunction!(pin_time_bucket_end, m)?)?;
    m.add_function(wrap_pyfunction!(pin_time_quantile, m)?)
}
