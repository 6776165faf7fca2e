//! Database URLs (zurls) in the form that picks a WCFS mountpoint.
//!
//! Clients of one database share one WCFS server, found at a mountpoint
//! named after the zurl. Two zurls of one database may differ in what only
//! a client cares about (credentials, client options, the order of the NEO
//! masters); [`normalize`] removes those differences, so that every client
//! of the database names the same mountpoint.
//!
//! Rules, by scheme (compared case-insensitively):
//! * `file`, `zeo`, `demo`: unchanged.
//! * `neo`, `neos` (`neo[s]://<cluster>@<master>,<master>[/path]?<query>`):
//!   - `ca`, `cert`, `key` are removed from the query; if any of them had a
//!     non-empty value, the scheme becomes `neos`;
//!   - the client-only options `compress`, `read-only`, `logfile`,
//!     `cache-size` are removed;
//!   - the rest of the query is re-encoded (`application/x-www-form-urlencoded`)
//!     with its keys sorted, a repeated key keeping all its values in order;
//!     a field without `=` is a key with an empty value;
//!   - in the netloc, the part up to and including the last `@` (the cluster
//!     name) is kept, and the comma-separated masters after it are sorted.
//! * anything else: [`ZurlError::Scheme`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Why a zurl cannot be normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZurlError {
    /// No rule for this scheme (`""` when the zurl has none).
    Scheme(String),
}

impl fmt::Display for ZurlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZurlError::Scheme(s) => write!(f, "can't normalize zurl with scheme {s:?}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ZurlError {}

/// Query keys that carry credentials: removed; their presence means TLS.
const CREDENTIALS: [&str; 3] = ["ca", "cert", "key"];
/// Query keys that only change how a client talks to the database.
const CLIENT_ONLY: [&str; 4] = ["compress", "read-only", "logfile", "cache-size"];

/// The zurl that names the database `zurl` names, as every client of it
/// writes it (see the module doc for the rules).
pub fn normalize(zurl: &str) -> Result<String, ZurlError> {
    let scheme = scheme_of(zurl);
    match scheme.as_str() {
        "file" | "zeo" | "demo" => Ok(zurl.to_string()),
        "neo" | "neos" => Ok(normalize_neo(&scheme, &zurl[scheme.len() + 1..])),
        _ => Err(ZurlError::Scheme(scheme)),
    }
}

/// The scheme, lowercased: letters, then letters, digits, `+`, `-`, `.`,
/// up to `:`. Empty when there is none.
fn scheme_of(zurl: &str) -> String {
    let Some((s, _)) = zurl.split_once(':') else {
        return String::new();
    };
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if ok {
        s.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// `rest` is what follows `<scheme>:`.
fn normalize_neo(scheme: &str, rest: &str) -> String {
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (netloc, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        },
        None => ("", rest),
    };

    let mut tls = scheme == "neos";
    let mut fields: Vec<(String, String)> = Vec::new();
    for field in query.split('&').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        let (k, v) = (form_decode(k), form_decode(v));
        if CREDENTIALS.contains(&k.as_str()) {
            tls |= !v.is_empty();
            continue;
        }
        if CLIENT_ONLY.contains(&k.as_str()) {
            continue;
        }
        fields.push((k, v));
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated keys keep their order

    let (cluster, masters) = match netloc.rfind('@') {
        Some(i) => netloc.split_at(i + 1),
        None => ("", netloc),
    };
    let mut masters: Vec<&str> = masters.split(',').collect();
    masters.sort_unstable();

    let mut out = String::with_capacity(scheme.len() + rest.len() + query.len() + 8);
    out.push_str(if tls { "neos" } else { "neo" });
    out.push_str("://");
    out.push_str(cluster);
    out.push_str(&masters.join(","));
    out.push_str(path);
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        form_encode(&mut out, k);
        out.push('=');
        form_encode(&mut out, v);
    }
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Form decoding: `+` is a space, `%XX` a byte; a bad escape stays as is;
/// bytes that are not UTF-8 become U+FFFD.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Form encoding: letters, digits and `_.-~` as they are, space as `+`,
/// every other byte as `%XX`.
fn form_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s.as_bytes() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(c as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(c >> 4) as usize] as char);
                out.push(HEX[(c & 15) as usize] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&str, &str, &str)] = &[
            // file, zeo, demo: as given.
            ("file", "file:///srv/data.fs", "file:///srv/data.fs"),
            ("file kept byte for byte", "file:///a/../b?x=1&a=2", "file:///a/../b?x=1&a=2"),
            ("zeo", "zeo://db.example:8100?storage=2", "zeo://db.example:8100?storage=2"),
            ("zeo scheme case", "ZEO://db:1", "ZEO://db:1"),
            ("demo", "demo:(file:///a.fs)/(file:///b.fs)", "demo:(file:///a.fs)/(file:///b.fs)"),
            // neo: masters sorted, cluster kept.
            ("masters sorted", "neo://db@m2:2051,m1:2051,m10:1", "neo://db@m10:1,m1:2051,m2:2051"),
            ("one master", "neo://db@m1:2051", "neo://db@m1:2051"),
            ("no cluster name", "neo://m2,m1", "neo://m1,m2"),
            ("path kept", "neo://db@m2,m1/x", "neo://db@m1,m2/x"),
            // credentials: removed; non-empty ones mean neos.
            (
                "credentials make it neos",
                "neo://db@m1?ca=/c.crt&cert=/x.crt&key=/x.key",
                "neos://db@m1",
            ),
            ("only a key", "neo://db@m1?key=k", "neos://db@m1"),
            ("empty credentials", "neo://db@m1?ca=&cert=&key=", "neo://db@m1"),
            ("neos stays neos", "neos://db@m1?ca=/c", "neos://db@m1"),
            ("neos without credentials", "neos://db@m1", "neos://db@m1"),
            (
                "other credentials, other order: same",
                "neos://db@m2,m1?key=/b.key&cert=/b.crt&ca=/ca2&x=1",
                "neos://db@m1,m2?x=1",
            ),
            // client-only options removed.
            (
                "client options",
                "neo://db@m1?compress=true&read-only=true&logfile=/l&cache-size=1000",
                "neo://db@m1",
            ),
            // the rest sorted by key, repeated keys keep all values in order.
            ("sorted", "neo://db@m1?z=1&a=2&m=3", "neo://db@m1?a=2&m=3&z=1"),
            (
                "repeated key",
                "neo://db@m1?b=2&a=9&b=1&a=8",
                "neo://db@m1?a=9&a=8&b=2&b=1",
            ),
            ("blank value", "neo://db@m1?b&a=", "neo://db@m1?a=&b="),
            ("empty fields", "neo://db@m1?&&a=1&", "neo://db@m1?a=1"),
            // re-encoded.
            ("escapes", "neo://db@m1?x=a%20b+c&y=%2F%zz", "neo://db@m1?x=a+b+c&y=%2F%25zz"),
            ("scheme case", "NEO://db@m2,m1", "neo://db@m1,m2"),
            ("fragment kept", "neo://db@m1?a=1#f", "neo://db@m1?a=1#f"),
            (
                "everything",
                "neo://c@m3:1,m1:1,m2:1?logfile=/l&ca=/ca&read-only=true&dynamic_master_list=/d&cert=/c&key=/k",
                "neos://c@m1:1,m2:1,m3:1?dynamic_master_list=%2Fd",
            ),
        ];
        for (what, zurl, want) in ok {
            assert_eq!(normalize(zurl).as_deref(), Ok(*want), "{what}: {zurl}");
            // Normal forms are fixed points.
            assert_eq!(normalize(want).as_deref(), Ok(*want), "{what}: again");
        }
        let bad: &[(&str, &str)] = &[
            ("http://x", "http"),
            ("neo4j://x", "neo4j"),
            ("/srv/data.fs", ""),
            ("", ""),
            ("1neo://x", ""),
        ];
        for (zurl, scheme) in bad {
            let e = normalize(zurl).unwrap_err();
            assert_eq!(e, ZurlError::Scheme((*scheme).into()), "{zurl}");
        }
        assert_eq!(
            normalize("http://x").unwrap_err().to_string(),
            "can't normalize zurl with scheme \"http\""
        );
    }

    #[test]
    fn clients_of_one_cluster_agree() {
        let a =
            "neos://prod@10.0.0.2:2051,10.0.0.1:2051?ca=/a/ca&cert=/a/c&key=/a/k&compress=false";
        let b = "neo://prod@10.0.0.1:2051,10.0.0.2:2051?key=/b/k&cache-size=0";
        assert_eq!(normalize(a), normalize(b));
        let other = "neos://test@10.0.0.1:2051,10.0.0.2:2051?ca=/a/ca";
        assert_ne!(normalize(a), normalize(other));
    }
}
