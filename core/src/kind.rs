//! What kind of failure an error is: one small set for every face of the
//! client (Rust, C, Python), sorted by whose fault it is.
//!
//! Every error of the client, the core's [`Error`](crate::Error) and the
//! Linux backend's alike, has exactly one [`Kind`]. The C ABI's result code
//! and the Python exception class of an error are looked up by its kind in
//! one table (`wcfs_linux::foreign`), never read off its text.

use core::fmt;

/// Whose fault a failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// The caller asked for something impossible now (a closed handle, a
    /// range out of bounds, going back in history).
    Caller,
    /// The server broke the protocol, refused a request, or the watch link
    /// broke.
    Server,
    /// The OS refused.
    Os,
    /// Finding, trusting or starting the database's server (`join`).
    Setup,
    /// A bug: of the driver of the core (the drain contract, an op that
    /// does not exist), or of the core itself.
    Bug,
}

/// What went wrong, as a caller branches on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The connection is closed or down.
    ConnClosed,
    /// The file handle was closed.
    FileClosed,
    /// The mapping was unmapped.
    MappingClosed,
    /// A block or byte range outside the file's addressable range or the
    /// mapping.
    BadRange,
    /// A caller's range for a mapping at its own address: null, off a page
    /// boundary, of the wrong length, or overlapping a mapping.
    BadAddress,
    /// `resync` to a revision before the connection's.
    GoingBack,
    /// An argument or setting the client does not understand.
    InvalidArg,
    /// The server broke the protocol or refused a request (a malformed or
    /// unexpected line, a pin the connection must refuse, `error ...`, a
    /// head file that is not what it must be).
    Protocol,
    /// The watch link broke (EOF, a read or write error).
    Link,
    /// The server did not answer, or end the link, before the deadline.
    Timeout,
    /// The OS refused an operation the core asked for (mmap, mprotect, ...).
    Os,
    /// The OS refused I/O the backend does around the core (opening the
    /// mount, reading `head/at`, preparing a mountpoint).
    Io,
    /// No WCFS server is mounted for the database.
    NotMounted,
    /// The mounted server serves another database.
    ZurlMismatch,
    /// The zurl has no normal form, so it names no mountpoint.
    BadZurl,
    /// What is mounted there is not trusted: not a WCFS, or mounted by
    /// another user.
    Untrusted,
    /// A server could not be started (none known, spawn failed, it exited
    /// or did not answer).
    ServerStart,
    /// A bug of the driver or of the client.
    Bug,
}

impl Kind {
    /// Every kind, in the order of this enum.
    pub const ALL: [Kind; 18] = [
        Kind::ConnClosed,
        Kind::FileClosed,
        Kind::MappingClosed,
        Kind::BadRange,
        Kind::BadAddress,
        Kind::GoingBack,
        Kind::InvalidArg,
        Kind::Protocol,
        Kind::Link,
        Kind::Timeout,
        Kind::Os,
        Kind::Io,
        Kind::NotMounted,
        Kind::ZurlMismatch,
        Kind::BadZurl,
        Kind::Untrusted,
        Kind::ServerStart,
        Kind::Bug,
    ];

    /// Whose fault it is.
    pub const fn domain(self) -> Domain {
        match self {
            Kind::ConnClosed
            | Kind::FileClosed
            | Kind::MappingClosed
            | Kind::BadRange
            | Kind::BadAddress
            | Kind::GoingBack
            | Kind::InvalidArg => Domain::Caller,
            Kind::Protocol | Kind::Link | Kind::Timeout => Domain::Server,
            Kind::Os | Kind::Io => Domain::Os,
            Kind::NotMounted
            | Kind::ZurlMismatch
            | Kind::BadZurl
            | Kind::Untrusted
            | Kind::ServerStart => Domain::Setup,
            Kind::Bug => Domain::Bug,
        }
    }

    /// The kind's name, as in this enum.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::ConnClosed => "ConnClosed",
            Kind::FileClosed => "FileClosed",
            Kind::MappingClosed => "MappingClosed",
            Kind::BadRange => "BadRange",
            Kind::BadAddress => "BadAddress",
            Kind::GoingBack => "GoingBack",
            Kind::InvalidArg => "InvalidArg",
            Kind::Protocol => "Protocol",
            Kind::Link => "Link",
            Kind::Timeout => "Timeout",
            Kind::Os => "Os",
            Kind::Io => "Io",
            Kind::NotMounted => "NotMounted",
            Kind::ZurlMismatch => "ZurlMismatch",
            Kind::BadZurl => "BadZurl",
            Kind::Untrusted => "Untrusted",
            Kind::ServerStart => "ServerStart",
            Kind::Bug => "Bug",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_each_kind_once_in_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k} out of place");
        }
    }
}
