//! The watch link's wire format: one message per line, `<stream> <msg>\n`.
//!
//! Untrusted bytes enter only through [`Frame::parse`] (and the [`Framer`]
//! that cuts a byte stream into lines); they leave only through
//! [`Frame::encode`]. Parsing borrows the input and never allocates; encoding
//! writes into a caller buffer. Every valid line re-encodes to the same bytes
//! (the parser accepts exactly the canonical form).

/// Longest line, newline excluded, that the framer accepts.
///
/// Comfortably above every real server message (the longest, the
/// `file epoch detected` error, is about 140 bytes) and small enough that a
/// misbehaving server cannot make us buffer much.
pub const MAX_LINE: usize = 1024;

/// Longest line we ever send ourselves (a `nak: <text>` is truncated to fit).
pub const MAX_OUT_LINE: usize = 128;

mod framer;
mod msg;
mod names;
mod out;
#[cfg(test)]
mod tests;

pub use framer::Framer;
pub use msg::{check_text, Frame, Msg, WireError};
pub use names::{parse_stream, Oid, Rev, StreamId, Tid, MAX_BLK};
pub use out::OutLine;
