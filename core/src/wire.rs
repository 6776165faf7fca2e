//! The watch link's wire format: one message per line, `<stream> <msg>\n`.
//!
//! Untrusted bytes enter only through [`Frame::parse`] (and the [`Framer`]
//! that cuts a byte stream into lines); they leave only through
//! [`Frame::encode`]. Parsing borrows the input and never allocates; encoding
//! writes into a caller buffer. Every valid line re-encodes to the same bytes
//! (the parser accepts exactly the canonical form).

use core::fmt;

/// Longest line, newline excluded, that the framer accepts.
///
/// Comfortably above every real server message (the longest, the
/// `file epoch detected` error, is about 140 bytes) and small enough that a
/// misbehaving server cannot make us buffer much.
pub const MAX_LINE: usize = 1024;

/// Longest line we ever send ourselves (a `nak: <text>` is truncated to fit).
pub const MAX_OUT_LINE: usize = 128;

/// ZODB object id of a bigfile. Hex16 on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Oid(pub u64);

/// ZODB transaction id (a revision). Hex16 on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Tid(pub u64);

/// What a block should show: the latest data, or the data as of a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Rev {
    /// `@head`: the block shows `head/bigfile/<oid>` again (an unpin).
    Head,
    /// `@<tid>`: the block shows `@<tid>/bigfile/<oid>`.
    At(Tid),
}

/// Largest block number the wire admits: `#<blk>` is a non-negative i64.
pub const MAX_BLK: u64 = i64::MAX as u64;

/// A stream id: odd for client requests, even for server requests, 0 for fatal messages.
pub type StreamId = u64;

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
        /// The block (at most [`MAX_BLK`]).
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

/// Value of each byte as a lower-case hex digit; 0x80 for any other byte.
const HEX: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn parse_hex16(b: &[u8]) -> Result<u64, WireError> {
    let b: &[u8; 16] = b.try_into().map_err(|_| WireError::NotHex16)?;
    let (mut v, mut bad) = (0u64, 0u8);
    for &c in b {
        let d = HEX[usize::from(c)];
        bad |= d;
        v = (v << 4) | u64::from(d & 0xf);
    }
    if bad & 0x80 != 0 {
        return Err(WireError::NotHex16);
    }
    Ok(v)
}

/// Canonical decimal: digits only, no leading zero unless the number is 0.
fn parse_dec(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Parses a stream number (canonical decimal: digits, no leading zero).
pub fn parse_stream(b: &[u8]) -> Option<StreamId> {
    parse_dec(b)
}

impl Oid {
    /// Parses 16 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Oid, WireError> {
        parse_hex16(s.as_bytes()).map(Oid)
    }
}

impl Tid {
    /// Parses 16 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Tid, WireError> {
        parse_hex16(s.as_bytes()).map(Tid)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for Rev {
    /// Without the `@`: `head` or the hex16 tid.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rev::Head => f.write_str("head"),
            Rev::At(t) => t.fmt(f),
        }
    }
}

fn parse_at(b: &[u8]) -> Result<Tid, WireError> {
    let t = b.strip_prefix(b"@").ok_or(WireError::BadRev)?;
    parse_hex16(t).map(Tid)
}

fn parse_rev(b: &[u8]) -> Result<Rev, WireError> {
    let r = b.strip_prefix(b"@").ok_or(WireError::BadRev)?;
    if r == b"head" {
        return Ok(Rev::Head);
    }
    parse_hex16(r)
        .map(|t| Rev::At(Tid(t)))
        .map_err(|_| WireError::BadRev)
}

fn parse_blk(b: &[u8]) -> Result<u64, WireError> {
    let b = b.strip_prefix(b"#").ok_or(WireError::MissingHash)?;
    if let Some(neg) = b.strip_prefix(b"-") {
        return match parse_dec(neg) {
            Some(_) => Err(WireError::NegativeBlk),
            None => Err(WireError::BadBlk),
        };
    }
    match parse_dec(b) {
        Some(v) if v <= MAX_BLK => Ok(v),
        _ => Err(WireError::BadBlk),
    }
}

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

struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Write what fits instead of failing.
    truncate: bool,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = if s.len() <= room {
            s.len()
        } else if self.truncate {
            room
        } else {
            return Err(fmt::Error);
        };
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A line we send, encoded, `\n` included. Fixed capacity: sending never allocates.
///
/// Invariant: the bytes are one whole line of at most [`MAX_OUT_LINE`]
/// bytes ending in its only `\n`, and `kind` says what it encodes.
#[derive(Clone, PartialEq, Eq)]
pub struct OutLine {
    buf: [u8; MAX_OUT_LINE],
    len: u16,
    /// What the line says, kept so that counting replies needs no parsing.
    kind: OutKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutKind {
    Ack,
    Nak,
    Other,
}

impl OutLine {
    /// Encodes `frame`; a `nak`/`error` text is cut (at a char boundary) to fit.
    pub fn new(frame: &Frame<'_>) -> OutLine {
        let mut l = OutLine {
            buf: [0; MAX_OUT_LINE],
            len: 0,
            kind: match frame.msg {
                Msg::Ack => OutKind::Ack,
                Msg::Nak(_) => OutKind::Nak,
                _ => OutKind::Other,
            },
        };
        match frame.encode(&mut l.buf) {
            Ok(n) => l.len = n as u16,
            Err(_) => {
                // Only free text can overflow: keep the head of the line and end it.
                let mut w = SliceWriter {
                    buf: &mut l.buf[..MAX_OUT_LINE - 1],
                    len: 0,
                    truncate: true,
                };
                let _ = fmt::write(&mut w, format_args!("{frame}"));
                let mut n = w.len;
                while core::str::from_utf8(&l.buf[..n]).is_err() {
                    n -= 1;
                }
                l.buf[n] = b'\n';
                l.len = (n + 1) as u16;
            }
        }
        l
    }

    /// `<stream> ack\n` (the pin path: [`Frame::encode`] writes an ack
    /// without `core::fmt`).
    pub fn ack(stream: StreamId) -> OutLine {
        OutLine::new(&Frame {
            stream,
            msg: Msg::Ack,
        })
    }

    /// The encoded bytes, `\n` included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Whether this line is an `ack` (of a pin).
    pub fn is_ack(&self) -> bool {
        self.kind == OutKind::Ack
    }

    /// Whether this line is a `nak`.
    pub fn is_nak(&self) -> bool {
        self.kind == OutKind::Nak
    }
}

impl fmt::Debug for OutLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}",
            core::str::from_utf8(self.as_bytes()).unwrap_or("<bin>")
        )
    }
}

/// Cuts a byte stream, fed in chunks of any size, into lines.
///
/// Invariant: `len <= MAX_LINE`; once a line was too long the framer stays
/// failed (the link is down anyway), so it never buffers more than `MAX_LINE`.
pub struct Framer {
    buf: [u8; MAX_LINE],
    len: usize,
    /// The last call returned a complete line that still sits in `buf`.
    delivered: bool,
    failed: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    /// An empty framer.
    pub const fn new() -> Framer {
        Framer {
            buf: [0; MAX_LINE],
            len: 0,
            delivered: false,
            failed: false,
        }
    }

    /// Consumes bytes from `input` up to and including the next `\n`, and
    /// returns that line without its `\n`. `None` when `input` ran out first
    /// (the partial line is kept for the next call).
    pub fn next_line(&mut self, input: &mut &[u8]) -> Option<Result<&[u8], WireError>> {
        if self.failed {
            return Some(Err(WireError::TooLong));
        }
        if self.delivered {
            self.delivered = false;
            self.len = 0;
        }
        if input.is_empty() {
            return None;
        }
        let (take, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (input.len(), false),
        };
        if self.len + take > MAX_LINE {
            self.failed = true;
            return Some(Err(WireError::TooLong));
        }
        self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
        self.len += take;
        *input = &input[take + usize::from(complete)..];
        if !complete {
            return None;
        }
        self.delivered = true;
        Some(Ok(&self.buf[..self.len]))
    }

    /// The link ended: fine between lines, an error inside one.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.failed {
            Err(WireError::TooLong)
        } else if self.len > 0 && !self.delivered {
            Err(WireError::EofInLine)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn p(s: &str) -> Result<Frame<'_>, WireError> {
        Frame::parse(s.as_bytes())
    }

    const F1: Oid = Oid(1);

    /// Each valid line parses to the given frame and re-encodes to itself.
    macro_rules! valid {
        ($($name:ident: $line:expr => $stream:expr, $msg:expr;)*) => {$(
            #[test]
            fn $name() {
                let f = p($line).unwrap();
                assert_eq!(f, Frame { stream: $stream, msg: $msg });
                let mut buf = [0u8; MAX_LINE + 1];
                let n = f.encode(&mut buf).unwrap();
                assert_eq!(&buf[..n], [$line, "\n"].concat().as_bytes());
            }
        )*};
    }

    /// Each invalid line is refused with the given error.
    macro_rules! invalid {
        ($($name:ident: $line:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(Frame::parse(AsRef::<[u8]>::as_ref($line)), Err($err));
            }
        )*};
    }

    valid! {
        watch_at: "1 watch 0000000000000001 @040d3dfb3836f122" => 1, Msg::Watch { oid: F1, at: Tid(0x040d3dfb3836f122) };
        unwatch: "7 watch 0000000000000001 -" => 7, Msg::Unwatch { oid: F1 };
        bye: "11 bye" => 11, Msg::Bye;
        ok: "7 ok" => 7, Msg::Ok;
        ack: "2 ack" => 2, Msg::Ack;
        nak: "4 nak: cannot mmap: ENOMEM" => 4, Msg::Nak("cannot mmap: ENOMEM");
        pin_rev: "2 pin 0000000000000001 #2 @040d3dfb078a3c22" => 2, Msg::Pin { oid: F1, blk: 2, rev: Rev::At(Tid(0x040d3dfb078a3c22)) };
        pin_head: "8 pin 0000000000000001 #1 @head" => 8, Msg::Pin { oid: F1, blk: 1, rev: Rev::Head };
        pin_max_blk: "2 pin 0000000000000001 #9223372036854775807 @head" => 2, Msg::Pin { oid: F1, blk: MAX_BLK, rev: Rev::Head };
        stream_max: "18446744073709551615 ok" => u64::MAX, Msg::Ok;
        err_not_known: "1 error setup watch f<0000000000000001> @040d3dfb3836f122: file not yet known to wcfs or is not a ZBigFile"
            => 1, Msg::Error("setup watch f<0000000000000001> @040d3dfb3836f122: file not yet known to wcfs or is not a ZBigFile");
        err_back: "5 error setup watch f<0000000000000001> @040d3dfb3836f122: going back in history is forbidden"
            => 5, Msg::Error("setup watch f<0000000000000001> @040d3dfb3836f122: going back in history is forbidden");
        err_too_far: "3 error setup watch f<0000000000000001> @040d3dfb3836f121: too far away back from head/at (@040d3dfb3836f122); δt = 14ns"
            => 3, Msg::Error("setup watch f<0000000000000001> @040d3dfb3836f121: too far away back from head/at (@040d3dfb3836f122); δt = 14ns");
        err_epoch: "9 error setup watch f<0000000000000001> @040d3dfb3836f121: file epoch detected @040d3dfb3836f122 in between (at,head=@040d3dfb3836f123]"
            => 9, Msg::Error("setup watch f<0000000000000001> @040d3dfb3836f121: file epoch detected @040d3dfb3836f122 in between (at,head=@040d3dfb3836f123]");
        err_bad_oid: "1 error bad watch: invalid oid" => 1, Msg::Error("bad watch: invalid oid");
        err_bad_at: "1 error bad watch: invalid at" => 1, Msg::Error("bad watch: invalid at");
        err_not_watch: "1 error bad watch: not a watch request: \"hello\"" => 1, Msg::Error("bad watch: not a watch request: \"hello\"");
        fatal_frame: "0 error: invalid frame: \"hello\\n\"" => 0, Msg::Fatal("invalid frame: \"hello\\n\"");
        fatal_stream: "0 error: 2: reply on unexpected stream" => 0, Msg::Fatal("2: reply on unexpected stream");
        error_empty_text: "3 error " => 3, Msg::Error("");
    }

    invalid! {
        no_stream: "hello" => WireError::BadStream;
        empty: "" => WireError::BadStream;
        stream_not_number: "x ok" => WireError::BadStream;
        stream_leading_zero: "01 ok" => WireError::BadStream;
        stream_plus: "+1 ok" => WireError::BadStream;
        stream_overflow: "18446744073709551616 ok" => WireError::BadStream;
        unknown: "1 hello" => WireError::UnknownMessage;
        unknown_empty: "1 " => WireError::UnknownMessage;
        oid_short: "1 watch 01 @040d3dfb3836f122" => WireError::NotHex16;
        oid_upper: "1 watch 000000000000000A @040d3dfb3836f122" => WireError::NotHex16;
        oid_long: "1 watch 00000000000000001 @040d3dfb3836f122" => WireError::NotHex16;
        at_bad: "1 watch 0000000000000001 @zz" => WireError::NotHex16;
        at_no_at: "1 watch 0000000000000001 040d3dfb3836f122" => WireError::BadRev;
        watch_missing_at: "1 watch 0000000000000001" => WireError::MissingField;
        pin_no_hash: "2 pin 0000000000000001 3 @head" => WireError::MissingHash;
        pin_negative: "2 pin 0000000000000001 #-3 @head" => WireError::NegativeBlk;
        pin_overflow: "2 pin 0000000000000001 #9223372036854775808 @head" => WireError::BadBlk;
        pin_huge: "2 pin 0000000000000001 #99999999999999999999999 @head" => WireError::BadBlk;
        pin_blk_leading_zero: "2 pin 0000000000000001 #03 @head" => WireError::BadBlk;
        pin_blk_empty: "2 pin 0000000000000001 # @head" => WireError::BadBlk;
        pin_rev_bad: "2 pin 0000000000000001 #3 @HEAD" => WireError::BadRev;
        pin_rev_no_at: "2 pin 0000000000000001 #3 head" => WireError::BadRev;
        pin_missing_rev: "2 pin 0000000000000001 #3" => WireError::MissingField;
        trailing: "2 ack x" => WireError::TrailingGarbage;
        // Found by cargo-fuzz (wire_parse): a trailing space was accepted.
        trailing_space: "2 ack " => WireError::TrailingGarbage;
        trailing_space_pin: "2 pin 0000000000000001 #3 @head " => WireError::TrailingGarbage;
        trailing_space_watch: "1 watch 0000000000000001 - " => WireError::TrailingGarbage;
        trailing_pin: "2 pin 0000000000000001 #3 @head x" => WireError::TrailingGarbage;
        double_space: "2  ack" => WireError::UnknownMessage;
        cr: "2 ack\r" => WireError::ControlChar;
        tab_in_text: "1 error a\tb" => WireError::ControlChar;
        nul: "1 ok\0" => WireError::ControlChar;
        bad_utf8: b"1 error \xff\xfe" => WireError::InvalidUtf8;
        too_long: &[b'1'; MAX_LINE + 1][..] => WireError::TooLong;
    }

    #[test]
    fn outline_truncates_long_nak_at_char_boundary() {
        let text = "δ".repeat(400);
        let l = OutLine::new(&Frame {
            stream: 2,
            msg: Msg::Nak(&text),
        });
        let b = l.as_bytes();
        assert!(b.len() <= MAX_OUT_LINE);
        assert_eq!(b.last(), Some(&b'\n'));
        let f = Frame::parse(&b[..b.len() - 1]).unwrap();
        match f.msg {
            Msg::Nak(t) => assert!(t.chars().all(|c| c == 'δ') && !t.is_empty()),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn encode_reports_small_buffer() {
        let f = Frame {
            stream: 1,
            msg: Msg::Watch {
                oid: F1,
                at: Tid(5),
            },
        };
        assert_eq!(f.encode(&mut [0u8; 10]), Err(WireError::BufferTooSmall));
    }

    fn lines_of(framer: &mut Framer, mut input: &[u8], out: &mut Vec<Result<Vec<u8>, WireError>>) {
        while let Some(r) = framer.next_line(&mut input) {
            let stop = r.is_err();
            out.push(r.map(|l| l.to_vec()));
            if stop {
                return;
            }
        }
    }

    #[test]
    fn framer_one_byte_at_a_time() {
        let data = b"2 pin 0000000000000001 #2 @head\n1 ok\n\n3 error x";
        let mut fr = Framer::new();
        let mut got = Vec::new();
        for b in data.chunks(1) {
            lines_of(&mut fr, b, &mut got);
        }
        assert_eq!(
            got,
            [
                Ok(b"2 pin 0000000000000001 #2 @head".to_vec()),
                Ok(b"1 ok".to_vec()),
                Ok(b"".to_vec())
            ]
        );
        assert_eq!(fr.finish(), Err(WireError::EofInLine));
    }

    #[test]
    fn framer_eof_between_lines_is_fine() {
        let mut fr = Framer::new();
        let mut got = Vec::new();
        lines_of(&mut fr, b"1 ok\n", &mut got);
        assert_eq!(got.len(), 1);
        assert_eq!(fr.finish(), Ok(()));
        assert_eq!(Framer::new().finish(), Ok(()));
    }

    #[test]
    fn framer_refuses_long_line_without_buffering_it() {
        let mut fr = Framer::new();
        let mut got = Vec::new();
        let big = [b'a'; 600];
        lines_of(&mut fr, &big, &mut got);
        assert!(got.is_empty());
        lines_of(&mut fr, &big, &mut got);
        assert_eq!(got, [Err(WireError::TooLong)]);
        // stays failed
        let mut rest: &[u8] = b"1 ok\n";
        assert_eq!(fr.next_line(&mut rest), Some(Err(WireError::TooLong)));
        assert_eq!(fr.finish(), Err(WireError::TooLong));
    }

    #[test]
    fn framer_admits_line_of_max_len() {
        let mut line = [b'x'; MAX_LINE + 1];
        line[MAX_LINE] = b'\n';
        let mut fr = Framer::new();
        let mut got = Vec::new();
        lines_of(&mut fr, &line, &mut got);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().len(), MAX_LINE);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9 :<>@#();,.=δ\"-]{0,120}"
        }

        fn msg() -> impl Strategy<Value = (u8, u64, u64, u64, String)> {
            (0u8..9, any::<u64>(), any::<u64>(), 0..=MAX_BLK, text())
        }

        fn build(k: u8, a: u64, b: u64, blk: u64, t: &str) -> Msg<'_> {
            match k {
                0 => Msg::Watch {
                    oid: Oid(a),
                    at: Tid(b),
                },
                1 => Msg::Unwatch { oid: Oid(a) },
                2 => Msg::Bye,
                3 => Msg::Ok,
                4 => Msg::Error(t),
                5 => Msg::Fatal(t),
                6 => Msg::Pin {
                    oid: Oid(a),
                    blk,
                    rev: if b.is_multiple_of(2) {
                        Rev::Head
                    } else {
                        Rev::At(Tid(b))
                    },
                },
                7 => Msg::Ack,
                _ => Msg::Nak(t),
            }
        }

        proptest! {
            #[test]
            fn encode_parse_roundtrip(stream in any::<u64>(), (k, a, b, blk, t) in msg()) {
                let f = Frame { stream, msg: build(k, a, b, blk, &t) };
                let mut buf = [0u8; MAX_LINE + 1];
                let n = f.encode(&mut buf).unwrap();
                prop_assert_eq!(buf[n - 1], b'\n');
                let g = Frame::parse(&buf[..n - 1]).unwrap();
                prop_assert_eq!(g, f);
            }

            #[test]
            fn parse_encode_roundtrip(line in proptest::collection::vec(any::<u8>(), 0..80)) {
                if let Ok(f) = Frame::parse(&line) {
                    let mut buf = [0u8; MAX_LINE + 1];
                    let n = f.encode(&mut buf).unwrap();
                    prop_assert_eq!(&buf[..n - 1], &line[..]);
                }
            }

            #[test]
            fn framer_chunking_invariant(
                data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..3000),
                cuts in proptest::collection::vec(1usize..200, 0..40),
            ) {
                let mut whole = Vec::new();
                let mut f1 = Framer::new();
                lines_of(&mut f1, &data, &mut whole);
                let mut chunked = Vec::new();
                let mut f2 = Framer::new();
                let mut rest = &data[..];
                for c in cuts.iter().cycle() {
                    if rest.is_empty() || chunked.last().is_some_and(|r: &Result<_, _>| r.is_err()) {
                        break;
                    }
                    let (a, b) = rest.split_at((*c).min(rest.len()));
                    lines_of(&mut f2, a, &mut chunked);
                    rest = b;
                }
                if cuts.is_empty() {
                    lines_of(&mut f2, &data, &mut chunked);
                }
                prop_assert_eq!(whole, chunked);
                prop_assert_eq!(f1.finish(), f2.finish());
            }
        }
    }
}
