//! The error of the public API: what went wrong, with the context chain
//! `wcfs <mnt>: conn<N> @<at>: open f<oid>: ...`.

use std::fmt;
use std::path::Path;

use wcfs_core::wire::{Oid, Tid};

/// Where an error happened: `wcfs <mnt>: conn<N> @<at>: f<oid>: <op>`.
#[derive(Clone, Debug, Default)]
pub struct Context(String);

impl Context {
    pub fn wcfs(mnt: &Path) -> Context {
        Context(format!("wcfs {}", mnt.display()))
    }

    pub fn conn(mnt: &Path, id: u64, at: Tid) -> Context {
        Context(format!("wcfs {}: conn{id} @{at}", mnt.display()))
    }

    pub fn file(self, oid: Oid) -> Context {
        Context(format!("{}: f<{oid}>", self.0))
    }

    pub fn op(self, op: impl fmt::Display) -> Context {
        Context(format!("{}: {op}", self.0))
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What went wrong.
#[derive(Debug)]
pub enum ErrorKind {
    /// The protocol core refused or failed (see its error for the cause).
    Core(wcfs_core::Error),
    /// The OS refused.
    Io {
        what: &'static str,
        err: std::io::Error,
    },
    /// No WCFS is mounted for this database.
    NotMounted { zurl: String },
    /// The mountpoint serves another database.
    ZurlMismatch { want: String, got: String },
}

/// An error with its context chain.
#[derive(Debug)]
pub struct Error {
    pub context: Context,
    pub kind: ErrorKind,
}

impl Error {
    pub(crate) fn core(context: Context, e: wcfs_core::Error) -> Error {
        Error {
            context,
            kind: ErrorKind::Core(e),
        }
    }

    pub(crate) fn io(
        context: Context,
        what: &'static str,
        err: impl Into<std::io::Error>,
    ) -> Error {
        Error {
            context,
            kind: ErrorKind::Io {
                what,
                err: err.into(),
            },
        }
    }

    pub(crate) fn not_mounted(mnt: &Path, zurl: &str) -> Error {
        Error {
            context: Context::wcfs(mnt),
            kind: ErrorKind::NotMounted { zurl: zurl.into() },
        }
    }

    pub(crate) fn or_not_mounted(self, zurl: &str) -> Error {
        match self.kind {
            ErrorKind::Io { .. } => Error {
                context: self.context,
                kind: ErrorKind::NotMounted { zurl: zurl.into() },
            },
            _ => self,
        }
    }

    pub(crate) fn zurl_mismatch(mnt: &Path, want: &str, got: &str) -> Error {
        Error {
            context: Context::wcfs(mnt),
            kind: ErrorKind::ZurlMismatch {
                want: want.into(),
                got: got.into(),
            },
        }
    }

    /// The core's error, when the core is where it failed.
    pub fn core_error(&self) -> Option<&wcfs_core::Error> {
        match &self.kind {
            ErrorKind::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.context)?;
        match &self.kind {
            ErrorKind::Core(e) => write!(f, "{e}"),
            ErrorKind::Io { what, err } => write!(f, "{what}: {err}"),
            ErrorKind::NotMounted { zurl } => write!(f, "no wcfs server mounted for {zurl}"),
            ErrorKind::ZurlMismatch { want, got } => {
                write!(f, "mounted wcfs serves {got:?}, not {want:?}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Core(e) => Some(e),
            ErrorKind::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}
