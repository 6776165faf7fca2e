//! The error of the public API: what went wrong, with the context chain
//! `wcfs <mnt>: conn<N> @<at>: open f<oid>: ...`.

use std::fmt;
use std::path::Path;

use wcfs_core::link::LinkError;
use wcfs_core::rawlink::RawError;
use wcfs_core::wire::StreamId;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::Kind;

/// Where an error happened: `wcfs <mnt>: conn<N> @<at>: f<oid>: <op>`.
///
/// Built outside in: each link is appended to the one that names its
/// container, so the chain always reads from the mount down.
#[derive(Clone, Debug, Default)]
pub struct Context(String);

impl Context {
    /// `wcfs <mnt>`.
    pub fn wcfs(mnt: &Path) -> Context {
        Context(format!("wcfs {}", mnt.display()))
    }

    /// `wcfs <mnt>: conn<id> @<at>`.
    pub fn conn(mnt: &Path, id: u64, at: Tid) -> Context {
        Context(format!("wcfs {}: conn{id} @{at}", mnt.display()))
    }

    /// `wcfs <mnt>: join <zurl>`.
    pub fn join(mnt: &Path, zurl: &str) -> Context {
        Context(format!("wcfs {}: join {zurl}", mnt.display()))
    }

    /// This context, then `f<oid>`.
    pub fn file(self, oid: Oid) -> Context {
        Context(format!("{}: f<{oid}>", self.0))
    }

    /// This context, then the operation that failed.
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
        /// What we were doing.
        what: &'static str,
        /// What the OS said.
        err: std::io::Error,
    },
    /// A raw watch link refused or failed (`WatchLink`).
    Watch(WatchError),
    /// No WCFS is mounted for this database.
    NotMounted {
        /// The database's zurl.
        zurl: String,
    },
    /// The mountpoint serves another database.
    ZurlMismatch {
        /// The zurl asked for (normalized).
        want: String,
        /// The zurl the mounted server serves.
        got: String,
    },
    /// The zurl has no normal form, so no mountpoint.
    BadZurl(wcfs_core::zurl::ZurlError),
    /// What is mounted there is not a WCFS (mount table: type, source).
    NotWcfs {
        /// The mount's filesystem type.
        fstype: String,
        /// The mount's source.
        source: String,
    },
    /// Mounted by a user that is neither root nor us: not trusted to feed
    /// our mappings.
    Untrusted {
        /// The uid that mounted it.
        owner: u32,
        /// Our uid.
        me: u32,
    },
    /// Autostart: the OS refused a step of starting the server (preparing
    /// the mountpoint, spawning, waiting for it).
    Start {
        /// The step.
        what: &'static str,
        /// What the OS said.
        err: std::io::Error,
    },
    /// Autostart is wanted but no wcfs executable is known.
    NoServerExecutable,
    /// The autostarted server exited before its filesystem answered.
    ServerExited {
        /// The server executable.
        server: String,
        /// How it exited.
        status: std::process::ExitStatus,
    },
    /// The autostarted server did not answer in time.
    ServerTimeout {
        /// The server executable.
        server: String,
        /// How long we waited.
        after: std::time::Duration,
    },
    /// An environment variable holds a value we do not understand.
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
}

/// An error with its context chain.
#[derive(Debug)]
pub struct Error {
    /// Where it happened.
    pub context: Context,
    /// What happened.
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

    pub(crate) fn start(context: Context, what: &'static str, err: std::io::Error) -> Error {
        Error {
            context,
            kind: ErrorKind::Start { what, err },
        }
    }

    /// What kind of failure this is: what the C ABI's result code and the
    /// Python exception class are looked up by (see [`crate::foreign`]).
    pub fn kind(&self) -> Kind {
        match &self.kind {
            ErrorKind::Core(e) => e.kind(),
            ErrorKind::Io { .. } => Kind::Io,
            ErrorKind::Watch(e) => e.kind(),
            ErrorKind::NotMounted { .. } => Kind::NotMounted,
            ErrorKind::ZurlMismatch { .. } => Kind::ZurlMismatch,
            ErrorKind::BadZurl(_) => Kind::BadZurl,
            ErrorKind::NotWcfs { .. } | ErrorKind::Untrusted { .. } => Kind::Untrusted,
            ErrorKind::Start { .. }
            | ErrorKind::NoServerExecutable
            | ErrorKind::ServerExited { .. }
            | ErrorKind::ServerTimeout { .. } => Kind::ServerStart,
            ErrorKind::BadEnv { .. } => Kind::InvalidArg,
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
            ErrorKind::Start { what, err } => write!(f, "autostart: {what}: {err}"),
            ErrorKind::Watch(e) => write!(f, "{e}"),
            ErrorKind::NotMounted { zurl } => write!(f, "no wcfs server mounted for {zurl}"),
            ErrorKind::ZurlMismatch { want, got } => {
                write!(f, "mounted wcfs serves {got:?}, not {want:?}")
            }
            ErrorKind::BadZurl(e) => write!(f, "{e}"),
            ErrorKind::NotWcfs { fstype, source } => write!(
                f,
                "mounted filesystem is not a wcfs (type {fstype:?}, source {source:?})"
            ),
            ErrorKind::Untrusted { owner, me } => write!(
                f,
                "refusing the wcfs mounted there by uid {owner} (neither root nor uid {me})"
            ),
            ErrorKind::NoServerExecutable => write!(
                f,
                "no wcfs server mounted, and none to start: give JoinOptions::server or set $WCFS_SERVER \
                 (or $WENDELIN_CORE_WCFS_AUTOSTART=no)"
            ),
            ErrorKind::ServerExited { server, status } => write!(
                f,
                "autostart: {server} exited with {status} before its filesystem answered"
            ),
            ErrorKind::ServerTimeout { server, after } => write!(
                f,
                "autostart: {server} did not answer within {after:?}"
            ),
            ErrorKind::BadEnv { var, value } => write!(f, "${var}={value:?}: not understood"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Core(e) => Some(e),
            ErrorKind::Io { err, .. } | ErrorKind::Start { err, .. } => Some(err),
            ErrorKind::BadZurl(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a call on a [`WatchLink`](crate::WatchLink) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// The core's word: the link is down (and why), or the caller's text or
    /// stream was refused (the link stays as it was).
    Link(RawError),
    /// The deadline passed before the server answered.
    DeadlinePassed,
    /// The link was used in a fork child of the process that opened it: a
    /// child says nothing on its parent's link.
    ForkChild,
    /// `close` waited `LINK_END_WAIT` for the server to end the link, in vain.
    NoEnd,
    /// No request of ours waits for a reply on this stream (never sent,
    /// answered and taken, or given up).
    NoSuchRequest(StreamId),
}

impl WatchError {
    /// What kind of failure this is (see [`Kind`]).
    pub fn kind(&self) -> Kind {
        match self {
            WatchError::Link(RawError::Down(LinkError::Closed)) | WatchError::ForkChild => {
                Kind::ConnClosed
            }
            WatchError::Link(RawError::Down(_)) => Kind::Link,
            WatchError::Link(RawError::BadText(_) | RawError::NotPending(_))
            | WatchError::NoSuchRequest(_) => Kind::InvalidArg,
            WatchError::DeadlinePassed | WatchError::NoEnd => Kind::Timeout,
        }
    }
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Link(e) => write!(f, "{e}"),
            WatchError::DeadlinePassed => f.write_str("deadline passed"),
            WatchError::ForkChild => f.write_str("link of the parent process (fork child)"),
            WatchError::NoEnd => f.write_str("the server did not end the link"),
            WatchError::NoSuchRequest(s) => write!(f, "{s}: no request of ours waits there"),
        }
    }
}
