//! The one table from an error's [`Kind`] to its faces outside Rust: the C
//! ABI's result code and the Python exception class.
//!
//! The C ABI (`wcfs-capi`) and the Python binding (`wcfs_rs`) look an error
//! up here by [`Error::kind`](crate::Error::kind) and by nothing else: no
//! error is classified by its text. The README's error table is this one.

use core::ffi::CStr;

use wcfs_core::Kind;

/// A Python exception class of `wcfs_rs` (all derive from `wcfs_rs.Error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PyClass {
    /// `wcfs_rs.Error`.
    Error,
    /// `wcfs_rs.ConnDownError`.
    ConnDown,
    /// `wcfs_rs.GoingBackError` (a `ConnDownError`).
    GoingBack,
    /// `wcfs_rs.FileClosedError`.
    FileClosed,
    /// `wcfs_rs.MappingClosedError` (also a `ValueError`).
    MappingClosed,
    /// `wcfs_rs.NotMountedError`.
    NotMounted,
    /// `wcfs_rs.BadZurlError`.
    BadZurl,
    /// `wcfs_rs.UntrustedError`.
    Untrusted,
    /// `wcfs_rs.ServerStartError`.
    ServerStart,
    /// `wcfs_rs.DeadlineError` (also Python's `TimeoutError`).
    Timeout,
}

impl PyClass {
    /// The class's name in the `wcfs_rs` module.
    pub const fn name(self) -> &'static str {
        match self {
            PyClass::Error => "Error",
            PyClass::ConnDown => "ConnDownError",
            PyClass::GoingBack => "GoingBackError",
            PyClass::FileClosed => "FileClosedError",
            PyClass::MappingClosed => "MappingClosedError",
            PyClass::NotMounted => "NotMountedError",
            PyClass::BadZurl => "BadZurlError",
            PyClass::Untrusted => "UntrustedError",
            PyClass::ServerStart => "ServerStartError",
            PyClass::Timeout => "DeadlineError",
        }
    }

    /// The class of an error raised by a call whose connection is closed
    /// or down once it returns: what the caller must learn is that the
    /// connection is gone (`ConnDownError`), unless the class already says
    /// more (`GoingBackError` is one) or is about something else than the
    /// connection (setup, a mapping the caller unmapped).
    pub const fn when_down(self) -> PyClass {
        match self {
            PyClass::Error | PyClass::FileClosed => PyClass::ConnDown,
            other => other,
        }
    }
}

/// How one kind of error shows outside Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Foreign {
    /// The kind.
    pub kind: Kind,
    /// The C ABI's result code (`wcfs_result` in `wcfs.h`).
    pub c_code: i32,
    /// The result code's name in `wcfs.h`.
    pub c_name: &'static CStr,
    /// The Python exception class.
    pub py: PyClass,
}

const fn row(kind: Kind, c_code: i32, c_name: &'static CStr, py: PyClass) -> Foreign {
    Foreign {
        kind,
        c_code,
        c_name,
        py,
    }
}

/// The table, one row per [`Kind`], in the order of [`Kind::ALL`].
pub const TABLE: [Foreign; Kind::ALL.len()] = [
    row(
        Kind::ConnClosed,
        7,
        c"WCFS_ERR_CONN_CLOSED",
        PyClass::ConnDown,
    ),
    row(
        Kind::FileClosed,
        8,
        c"WCFS_ERR_FILE_CLOSED",
        PyClass::FileClosed,
    ),
    row(
        Kind::MappingClosed,
        9,
        c"WCFS_ERR_NO_SUCH_MAPPING",
        PyClass::MappingClosed,
    ),
    row(Kind::BadRange, 10, c"WCFS_ERR_BAD_RANGE", PyClass::Error),
    row(
        Kind::BadAddress,
        16,
        c"WCFS_ERR_BAD_ADDRESS",
        PyClass::Error,
    ),
    row(
        Kind::GoingBack,
        11,
        c"WCFS_ERR_GOING_BACK",
        PyClass::GoingBack,
    ),
    row(Kind::InvalidArg, 2, c"WCFS_ERR_INVALID_ARG", PyClass::Error),
    row(Kind::Protocol, 13, c"WCFS_ERR_PROTOCOL", PyClass::Error),
    row(Kind::Link, 12, c"WCFS_ERR_LINK", PyClass::Error),
    row(Kind::Timeout, 21, c"WCFS_ERR_TIMEOUT", PyClass::Timeout),
    row(Kind::Os, 14, c"WCFS_ERR_OS", PyClass::Error),
    row(Kind::Io, 6, c"WCFS_ERR_IO", PyClass::Error),
    row(
        Kind::NotMounted,
        4,
        c"WCFS_ERR_NOT_MOUNTED",
        PyClass::NotMounted,
    ),
    row(
        Kind::ZurlMismatch,
        5,
        c"WCFS_ERR_ZURL_MISMATCH",
        PyClass::NotMounted,
    ),
    row(Kind::BadZurl, 17, c"WCFS_ERR_BAD_ZURL", PyClass::BadZurl),
    row(
        Kind::Untrusted,
        18,
        c"WCFS_ERR_UNTRUSTED",
        PyClass::Untrusted,
    ),
    row(
        Kind::ServerStart,
        19,
        c"WCFS_ERR_SERVER_START",
        PyClass::ServerStart,
    ),
    row(Kind::Bug, 20, c"WCFS_ERR_BUG", PyClass::Error),
];

/// How `kind` shows outside Rust.
pub const fn foreign(kind: Kind) -> &'static Foreign {
    &TABLE[kind as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_kind_in_order_with_distinct_codes() {
        for (k, r) in Kind::ALL.iter().zip(TABLE.iter()) {
            assert_eq!(*k, r.kind);
            assert_eq!(foreign(*k), r);
            assert!(r.c_name.to_str().unwrap().starts_with("WCFS_ERR_"));
        }
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.c_code, b.c_code, "{:?} and {:?}", a.c_name, b.c_name);
            }
        }
    }
}
