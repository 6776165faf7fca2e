//! Go's formatting of durations and strings, as the real server's error
//! texts print them.

use std::fmt::Write as _;

use wcfs_core::wire::Tid;

/// Nanoseconds since 1900 of a ZODB tid: high 32 bits count minutes, the
/// low 32 bits a fraction of the minute.
pub(crate) fn tid_ns(t: Tid) -> u128 {
    let minutes = u128::from(t.0 >> 32);
    let frac = u128::from(t.0 & 0xffff_ffff);
    minutes * 60_000_000_000 + (frac * 60_000_000_000 + (1 << 31)) / (1 << 32)
}

/// A duration as Go prints it: `14ns`, `1.5µs`, `3.2ms`, `2.5s`, `1m2.5s`, `1h0m0s`.
pub fn go_duration(ns: u128) -> String {
    fn frac(v: u128, unit: u128) -> String {
        let whole = v / unit;
        let mut rest = format!("{:0width$}", v % unit, width = unit.to_string().len() - 1);
        while rest.ends_with('0') {
            rest.pop();
        }
        if rest.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{rest}")
        }
    }
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", frac(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", frac(n, 1_000_000)),
        n => {
            let (h, m) = (n / 3_600_000_000_000, n / 60_000_000_000 % 60);
            let s = frac(n % 60_000_000_000, 1_000_000_000);
            if h > 0 {
                format!("{h}h{m}m{s}s")
            } else if m > 0 {
                format!("{m}m{s}s")
            } else {
                format!("{s}s")
            }
        }
    }
}

/// A string quoted as Go's `%q` does.
pub fn go_quote(b: &[u8]) -> String {
    let mut s = String::from("\"");
    let text = String::from_utf8_lossy(b);
    let valid = std::str::from_utf8(b).is_ok();
    if !valid {
        for &c in b {
            match c {
                b'"' => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                b'\n' => s.push_str("\\n"),
                b'\t' => s.push_str("\\t"),
                b'\r' => s.push_str("\\r"),
                0x20..=0x7e => s.push(c as char),
                _ => {
                    let _ = write!(s, "\\x{c:02x}");
                }
            }
        }
    } else {
        for c in text.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\t' => s.push_str("\\t"),
                '\r' => s.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(s, "\\x{:02x}", c as u32);
                }
                c => s.push(c),
            }
        }
    }
    s.push('"');
    s
}
