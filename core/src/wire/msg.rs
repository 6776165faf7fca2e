//! The messages of the link and their frames: parsed from untrusted bytes
//! into plain values, encoded back to the same canonical bytes.

use core::fmt;

use super::names::{parse_at, parse_blk, parse_dec, parse_hex16, parse_rev};
use super::out::SliceWriter;
use super::{Oid, Rev, StreamId, Tid, MAX_LINE};

/// One message, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    /// `watch <oid> @<at>` (client): start watching, or move the watch to `at`.
    Watch {
        /// The bigfile.
        oid: Oid,
        /// The revision the client's view is at.
        at: Tid,
    },
    /// `watch <oid> -` (client): stop watching.
    Unwatch {
        /// The bigfile.
        oid: Oid,
    },
    /// `bye` (client): the client closes the link; no reply.
    Bye,
    /// `ok` (server): the request succeeded.
    Ok,
    /// `error <text>` (server): the request failed; the link stays up.
    Error(&'a str),
    /// `error: <text>` (server, stream 0): fatal; the server closes the link.
    Fatal(&'a str),
    /// `pin <oid> #<blk> @<rev>` (server): make `blk` show `rev`.
    Pin {
        /// The bigfile.
        oid: Oid,
        /// The block (at most [`MAX_BLK`](super::MAX_BLK)).
        blk: u64,
        /// What the block shows from now on.
        rev: Rev,
    },
    /// `ack` (client): the pin is in force.
    Ack,
    /// `nak: <text>` (client): the client failed to pin.
    Nak(&'a str),
}

/// One line of the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The stream the line belongs to.
    pub stream: StreamId,
    /// What it says.
    pub msg: Msg<'a>,
}

/// What was wrong with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The line is longer than [`MAX_LINE`].
    TooLong,
    /// The link ended in the middle of a line.
    EofInLine,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line holds a control character (including `\r`).
    ControlChar,
    /// The line has no `<stream> ` prefix, or the stream id is not a canonical decimal u64.
    BadStream,
    /// An id that must be exactly 16 lower-case hex digits is not.
    NotHex16,
    /// A pin's block has no `#`.
    MissingHash,
    /// A block number is negative.
    NegativeBlk,
    /// A block number is not a canonical decimal or overflows i64.
    BadBlk,
    /// A revision has no `@`, or is neither `head` nor hex16.
    BadRev,
    /// The message keyword is not one of the protocol's.
    UnknownMessage,
    /// A message has fields missing.
    MissingField,
    /// A message has text after its last field.
    TrailingGarbage,
    /// An output buffer is too small for the encoded line.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::TooLong => "line too long",
            WireError::EofInLine => "unexpected EOF in the middle of a line",
            WireError::InvalidUtf8 => "line is not valid UTF-8",
            WireError::ControlChar => "control character in line",
            WireError::BadStream => "invalid stream id",
            WireError::NotHex16 => "id is not 16 lower-case hex digits",
            WireError::MissingHash => "block number without '#'",
            WireError::NegativeBlk => "negative block number",
            WireError::BadBlk => "invalid block number",
            WireError::BadRev => "invalid revision",
            WireError::UnknownMessage => "unknown message",
            WireError::MissingField => "missing field",
            WireError::TrailingGarbage => "trailing garbage",
            WireError::BufferTooSmall => "output buffer too small",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}

/// Splits off the next space-separated field; `None` when `s` is exhausted.
fn field<'a>(s: &mut &'a [u8]) -> Option<&'a [u8]> {
    if s.is_empty() {
        return None;
    }
    let (f, rest) = match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (&s[..], &s[s.len()..]),
    };
    *s = rest;
    Some(f)
}

/// Whether every byte is printable ASCII (what every line but an error text is).
fn printable_ascii(b: &[u8]) -> bool {
    b.iter().all(|&c| c.wrapping_sub(0x20) < 0x5f)
}

/// Checks that a line (newline excluded) is UTF-8 without control characters.
pub fn check_text(line: &[u8]) -> Result<&str, WireError> {
    let s = core::str::from_utf8(line).map_err(|_| WireError::InvalidUtf8)?;
    if !printable_ascii(line) && s.chars().any(char::is_control) {
        return Err(WireError::ControlChar);
    }
    Ok(s)
}

/// Free text of a line already checked by [`check_text`].
fn text_of(b: &[u8]) -> Result<&str, WireError> {
    core::str::from_utf8(b).map_err(|_| WireError::InvalidUtf8)
}

impl<'a> Msg<'a> {
    /// Parses a message (the part of a line after `<stream> `).
    pub fn parse(s: &'a str) -> Result<Msg<'a>, WireError> {
        check_text(s.as_bytes())?;
        Msg::parse_checked(s.as_bytes())
    }

    /// Parses a message whose bytes passed [`check_text`].
    fn parse_checked(b: &'a [u8]) -> Result<Msg<'a>, WireError> {
        // Messages that carry free text first: the text may hold anything.
        if let Some(t) = b.strip_prefix(b"error: ") {
            return Ok(Msg::Fatal(text_of(t)?));
        }
        if let Some(t) = b.strip_prefix(b"error ") {
            return Ok(Msg::Error(text_of(t)?));
        }
        if let Some(t) = b.strip_prefix(b"nak: ") {
            return Ok(Msg::Nak(text_of(t)?));
        }
        // A trailing space would be swallowed by `field`: refuse it here, so
        // that only the canonical form parses.
        if b.last() == Some(&b' ') {
            return Err(WireError::TrailingGarbage);
        }
        let mut rest = b;
        let kw = field(&mut rest).ok_or(WireError::UnknownMessage)?;
        let msg = match kw {
            b"ok" => Msg::Ok,
            b"ack" => Msg::Ack,
            b"bye" => Msg::Bye,
            b"watch" => {
                let oid = Oid(parse_hex16(
                    field(&mut rest).ok_or(WireError::MissingField)?,
                )?);
                let at = field(&mut rest).ok_or(WireError::MissingField)?;
                if at == b"-" {
                    Msg::Unwatch { oid }
                } else {
                    Msg::Watch {
                        oid,
                        at: parse_at(at)?,
                    }
                }
            }
            b"pin" => {
                let oid = Oid(parse_hex16(
                    field(&mut rest).ok_or(WireError::MissingField)?,
                )?);
                let blk = parse_blk(field(&mut rest).ok_or(WireError::MissingField)?)?;
                let rev = parse_rev(field(&mut rest).ok_or(WireError::MissingField)?)?;
                Msg::Pin { oid, blk, rev }
            }
            _ => return Err(WireError::UnknownMessage),
        };
        if !rest.is_empty() {
            return Err(WireError::TrailingGarbage);
        }
        Ok(msg)
    }
}

impl<'a> Frame<'a> {
    /// Parses one line, without its `\n`.
    pub fn parse(line: &'a [u8]) -> Result<Frame<'a>, WireError> {
        if line.len() > MAX_LINE {
            return Err(WireError::TooLong);
        }
        if !printable_ascii(line) {
            check_text(line)?;
        }
        let sp = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or(WireError::BadStream)?;
        let stream = parse_dec(&line[..sp]).ok_or(WireError::BadStream)?;
        let msg = Msg::parse_checked(&line[sp + 1..])?;
        Ok(Frame { stream, msg })
    }

    /// Writes the line, `\n` included, into `out`; returns its length.
    /// An ack, the line of the pin path, is written without `core::fmt`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        if matches!(self.msg, Msg::Ack) {
            let mut digits = [0u8; 20];
            let mut n = 0;
            let mut v = self.stream;
            loop {
                digits[n] = b'0' + (v % 10) as u8;
                n += 1;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            let line = out.get_mut(..n + 5).ok_or(WireError::BufferTooSmall)?;
            for (o, d) in line.iter_mut().zip(digits[..n].iter().rev()) {
                *o = *d;
            }
            line[n..].copy_from_slice(b" ack\n");
            return Ok(n + 5);
        }
        let mut w = SliceWriter {
            buf: out,
            len: 0,
            truncate: false,
        };
        fmt::write(&mut w, format_args!("{self}\n")).map_err(|_| WireError::BufferTooSmall)?;
        Ok(w.len)
    }
}

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Watch { oid, at } => write!(f, "watch {oid} @{at}"),
            Msg::Unwatch { oid } => write!(f, "watch {oid} -"),
            Msg::Bye => f.write_str("bye"),
            Msg::Ok => f.write_str("ok"),
            Msg::Error(t) => write!(f, "error {t}"),
            Msg::Fatal(t) => write!(f, "error: {t}"),
            Msg::Pin { oid, blk, rev } => write!(f, "pin {oid} #{blk} @{rev}"),
            Msg::Ack => f.write_str("ack"),
            Msg::Nak(t) => write!(f, "nak: {t}"),
        }
    }
}

impl fmt::Display for Frame<'_> {
    /// The line without its `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.stream, self.msg)
    }
}
