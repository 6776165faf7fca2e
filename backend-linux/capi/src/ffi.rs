//! Pointers from C: handles, out-pointers, strings; handles given out and
//! freed.

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::result::wcfs_result::WCFS_ERR_INVALID_ARG;
use crate::result::Failure;

/// The handle behind `h`, or `WCFS_ERR_NULL`.
///
/// # Safety
///
/// `h` is NULL or a live handle given out by this library, not freed yet.
pub(crate) unsafe fn handle<'a, H>(h: *const H, what: &str) -> Result<&'a H, Failure> {
    // SAFETY: per the function's contract.
    unsafe { h.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// Stores a new handle into `*out` (checked non-NULL by `out_ptr`).
pub(crate) fn give<H>(out: &mut *mut H, h: H) {
    *out = Box::into_raw(Box::new(h));
}

/// The out-pointer `out`, cleared to NULL, or `WCFS_ERR_NULL`.
///
/// # Safety
///
/// `out` is NULL or valid for writing one pointer.
pub(crate) unsafe fn out_ptr<'a, H>(out: *mut *mut H) -> Result<&'a mut *mut H, Failure> {
    // SAFETY: per the function's contract.
    let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
    *out = std::ptr::null_mut();
    Ok(out)
}

/// A NUL-terminated string argument.
///
/// # Safety
///
/// `s` is NULL or a NUL-terminated string readable for the call.
pub(crate) unsafe fn c_str<'a>(s: *const c_char, what: &str) -> Result<&'a CStr, Failure> {
    if s.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the function's contract.
    Ok(unsafe { CStr::from_ptr(s) })
}

/// Frees a handle given out by this library.
///
/// # Safety
///
/// `h` is NULL or a handle of type H given out by this library, freed once.
pub(crate) unsafe fn free<H>(h: *mut H) {
    if h.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the function's contract: from `Box::into_raw`, not freed yet.
        drop(unsafe { Box::from_raw(h) })
    }));
}

/// A UTF-8 string argument.
///
/// # Safety
///
/// As for [`c_str`].
pub(crate) unsafe fn utf8<'a>(s: *const c_char, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: per the function's contract.
    unsafe { c_str(s, what) }?
        .to_str()
        .map_err(|_| Failure::new(WCFS_ERR_INVALID_ARG, format!("wcfs: {what} is not UTF-8")))
}
