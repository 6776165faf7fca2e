//! What a call did: the result codes, from the one error table for errors
//! of the client; the thread's last error text; the panic boundary.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use wcfs_linux::foreign::{foreign, TABLE};
use wcfs_linux::Kind;

use wcfs_result::*;

/// What a call did: `WCFS_OK`, or why it failed (the text: `wcfs_last_error`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wcfs_result {
    /// The call did what it says.
    WCFS_OK = 0,
    /// A pointer the call needs was NULL.
    WCFS_ERR_NULL = 1,
    /// An argument is malformed (a string not UTF-8, a length that overflows).
    WCFS_ERR_INVALID_ARG = 2,
    /// The library panicked (a bug); the text says where.
    WCFS_ERR_PANIC = 3,
    /// No WCFS is mounted for this database (`wcfs_join`).
    WCFS_ERR_NOT_MOUNTED = 4,
    /// The mountpoint serves another database (`wcfs_join`).
    WCFS_ERR_ZURL_MISMATCH = 5,
    /// The OS refused (opening the mountpoint, reading `head/at`, ...).
    WCFS_ERR_IO = 6,
    /// The connection is closed or down.
    WCFS_ERR_CONN_CLOSED = 7,
    /// The file handle was closed.
    WCFS_ERR_FILE_CLOSED = 8,
    /// The mapping was unmapped.
    WCFS_ERR_NO_SUCH_MAPPING = 9,
    /// A block range out of the file's addressable range or the mapping.
    WCFS_ERR_BAD_RANGE = 10,
    /// `resync` to an older revision: forbidden, and the connection is down.
    WCFS_ERR_GOING_BACK = 11,
    /// The watch link broke.
    WCFS_ERR_LINK = 12,
    /// The server misbehaved or refused (its text in the error).
    WCFS_ERR_PROTOCOL = 13,
    /// A syscall the connection made failed.
    WCFS_ERR_OS = 14,
    /// The caller's buffer is too small (the call says how much it needs).
    WCFS_ERR_BUFFER_TOO_SMALL = 15,
    /// A caller's range (`wcfs_file_mmap_at`) misaligned, of the wrong
    /// length, or overlapping a mapping of the connection; left untouched.
    WCFS_ERR_BAD_ADDRESS = 16,
    /// The zurl has no normal form, so names no mountpoint (`wcfs_join`).
    WCFS_ERR_BAD_ZURL = 17,
    /// What is mounted there is not a WCFS serving this database, or is
    /// mounted by a user that is neither root nor the caller (`wcfs_join`).
    WCFS_ERR_UNTRUSTED = 18,
    /// Starting a server failed: none known (`$WCFS_SERVER`), it could not
    /// be spawned, it exited, or it did not answer in time (`wcfs_join`).
    WCFS_ERR_SERVER_START = 19,
    /// A bug of the library (a broken internal contract); the text says which.
    WCFS_ERR_BUG = 20,
    /// The server did not answer, or end the link, before the deadline.
    WCFS_ERR_TIMEOUT = 21,
}

impl wcfs_result {
    /// Every result code, in the order of their values.
    pub(crate) const ALL: [wcfs_result; 22] = [
        WCFS_OK,
        WCFS_ERR_NULL,
        WCFS_ERR_INVALID_ARG,
        WCFS_ERR_PANIC,
        WCFS_ERR_NOT_MOUNTED,
        WCFS_ERR_ZURL_MISMATCH,
        WCFS_ERR_IO,
        WCFS_ERR_CONN_CLOSED,
        WCFS_ERR_FILE_CLOSED,
        WCFS_ERR_NO_SUCH_MAPPING,
        WCFS_ERR_BAD_RANGE,
        WCFS_ERR_GOING_BACK,
        WCFS_ERR_LINK,
        WCFS_ERR_PROTOCOL,
        WCFS_ERR_OS,
        WCFS_ERR_BUFFER_TOO_SMALL,
        WCFS_ERR_BAD_ADDRESS,
        WCFS_ERR_BAD_ZURL,
        WCFS_ERR_UNTRUSTED,
        WCFS_ERR_SERVER_START,
        WCFS_ERR_BUG,
        WCFS_ERR_TIMEOUT,
    ];

    /// The names of the codes that belong to the C boundary itself, not to
    /// an error kind (those are named by `wcfs_linux::foreign::TABLE`).
    pub(crate) const BOUNDARY: [(wcfs_result, &'static CStr); 4] = [
        (WCFS_OK, c"WCFS_OK"),
        (WCFS_ERR_NULL, c"WCFS_ERR_NULL"),
        (WCFS_ERR_PANIC, c"WCFS_ERR_PANIC"),
        (WCFS_ERR_BUFFER_TOO_SMALL, c"WCFS_ERR_BUFFER_TOO_SMALL"),
    ];

    /// The code of an error of `kind`, as the table says.
    pub(crate) fn of(kind: Kind) -> wcfs_result {
        wcfs_result::ALL[foreign(kind).c_code as usize]
    }

    /// The code's name in `wcfs.h`.
    pub(crate) fn name(code: c_int) -> Option<&'static CStr> {
        let kinds = TABLE.iter().map(|r| (r.c_code, r.c_name));
        let boundary = wcfs_result::BOUNDARY.iter().map(|&(c, n)| (c as c_int, n));
        boundary
            .chain(kinds)
            .find(|&(c, _)| c == code)
            .map(|(_, n)| n)
    }
}

// ---- errors and the panic boundary ----

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A failed call: its code and the text kept for `wcfs_last_error`.
pub(crate) struct Failure {
    code: wcfs_result,
    text: String,
}

impl Failure {
    pub(crate) fn new(code: wcfs_result, text: impl Into<String>) -> Failure {
        Failure {
            code,
            text: text.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(WCFS_ERR_NULL, format!("wcfs: {what} is NULL"))
    }
}

impl From<wcfs_linux::Error> for Failure {
    fn from(e: wcfs_linux::Error) -> Failure {
        Failure::new(wcfs_result::of(e.kind()), e.to_string())
    }
}

pub(crate) fn set_last_error(text: String) {
    LAST_ERROR.with(|l| *l.borrow_mut() = text);
}

pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("wcfs: panic in the library: {msg}")
}

/// Runs `f` as one exported call: a failure or a panic becomes a result
/// code and the thread's last error; nothing unwinds into C.
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> wcfs_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => WCFS_OK,
        Ok(Err(fail)) => {
            set_last_error(fail.text);
            fail.code
        }
        Err(p) => {
            set_last_error(panic_text(&*p));
            WCFS_ERR_PANIC
        }
    }
}

/// Runs a getter: `default` for a NULL handle or a panic.
pub(crate) fn getter<H, T>(h: *const H, default: T, f: impl FnOnce(&H) -> T) -> T {
    // SAFETY: the caller passes NULL or a live handle of type H (the
    // header's conventions); a shared reference is all the getters need.
    let Some(h) = (unsafe { h.as_ref() }) else {
        return default;
    };
    catch_unwind(AssertUnwindSafe(|| f(h))).unwrap_or(default)
}

/// Copies `text` NUL-terminated into `buf[..len]`, cut at a character
/// boundary when too long; returns the full length (without the NUL).
///
/// # Safety
///
/// `buf` is NULL (then `len` must be 0) or writable for `len` bytes.
pub(crate) unsafe fn copy_text(text: &str, buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let mut n = text.len().min(len - 1);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `buf` is writable for `len > n` bytes per the contract;
        // `text` is a distinct Rust string.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len()
}

/// The name of a result code (`"WCFS_ERR_GOING_BACK"`), a static string;
/// `"WCFS_UNKNOWN"` for a value that is no code.
#[no_mangle]
pub extern "C" fn wcfs_result_name(result: c_int) -> *const c_char {
    let s = wcfs_result::name(result).unwrap_or(c"WCFS_UNKNOWN");
    s.as_ptr()
}

/// Copies the text of the last error of this thread into `buf`; see the header.
///
/// # Safety
///
/// `buf` is NULL (with `len == 0`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn wcfs_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        LAST_ERROR.with(|l| {
            // SAFETY: per the function's contract.
            unsafe { copy_text(&l.borrow(), buf, len) }
        })
    }))
    .unwrap_or(0)
}
