//! A line we send: encoded once into a fixed buffer, never allocating.

use core::fmt;

use super::{Frame, Msg, StreamId, MAX_OUT_LINE};

/// Formats into a caller's buffer: `len` bytes written so far.
pub(super) struct SliceWriter<'b> {
    pub(super) buf: &'b mut [u8],
    pub(super) len: usize,
    /// Write what fits instead of failing.
    pub(super) truncate: bool,
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
