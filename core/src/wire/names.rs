//! What the wire names: bigfiles (oids), revisions (tids, `@head`), blocks
//! and streams; their hex16 and decimal forms, parsed strictly.

use core::fmt;

use super::WireError;

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

pub(super) fn parse_hex16(b: &[u8]) -> Result<u64, WireError> {
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
pub(super) fn parse_dec(b: &[u8]) -> Option<u64> {
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

pub(super) fn parse_at(b: &[u8]) -> Result<Tid, WireError> {
    let t = b.strip_prefix(b"@").ok_or(WireError::BadRev)?;
    parse_hex16(t).map(Tid)
}

pub(super) fn parse_rev(b: &[u8]) -> Result<Rev, WireError> {
    let r = b.strip_prefix(b"@").ok_or(WireError::BadRev)?;
    if r == b"head" {
        return Ok(Rev::Head);
    }
    parse_hex16(r)
        .map(|t| Rev::At(Tid(t)))
        .map_err(|_| WireError::BadRev)
}

pub(super) fn parse_blk(b: &[u8]) -> Result<u64, WireError> {
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
