//! Cutting the link's byte stream into lines, bounded.

use super::{WireError, MAX_LINE};

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
