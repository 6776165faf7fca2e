//! The control protocol of `wcfs-testserver`: commands on its stdin,
//! answers on its stdout (see the binary's doc for the commands).

use std::fmt::Write as _;
use std::io;

use wcfs_core::wire::{Oid, Tid};

use super::in_process::TestServer;
use super::WcfsServer;
use crate::model::{Change, CommitError};

/// Serves the control commands of `wcfs-testserver` (see its doc) read
/// from `input`, answering on `output`, until `quit` or EOF; then unmounts.
pub fn serve(srv: TestServer, input: impl io::BufRead, mut output: impl io::Write) {
    let hex = |s: &str| -> Option<Vec<u8>> {
        (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect()
    };
    let committed = |r: Result<Tid, CommitError>| match r {
        Ok(at) => format!("ok {at}"),
        Err(e) => format!("error commit refused: {e:?}"),
    };
    let _ = writeln!(output, "ready {}", srv.head());
    let _ = output.flush();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let mut w = line.split(' ');
        let reply = match w.next() {
            Some("head") => format!("ok {}", srv.head()),
            Some("commit") => {
                let (oid, blk) = (
                    w.next().and_then(|o| Oid::parse(o).ok()),
                    w.next().and_then(|b| b.parse().ok()),
                );
                let text: Vec<&str> = w.collect();
                match (oid, blk) {
                    (Some(oid), Some(blk)) => format!(
                        "ok {}",
                        srv.commit(&[(oid, blk, text.join(" ").into_bytes())])
                    ),
                    _ => "error usage: commit <oid-hex16> <blk> <text>".into(),
                }
            }
            Some("commitx") => {
                let parts: Vec<&str> = w.collect();
                let changes: Option<Vec<_>> = parts
                    .chunks(3)
                    .map(|c| {
                        let (oid, blk) = (Oid::parse(c.first()?).ok()?, c.get(1)?.parse().ok()?);
                        Some(match *c.get(2)? {
                            "-" => Change::DeleteFrom(oid, blk),
                            data => Change::Write(oid, blk, hex(data)?),
                        })
                    })
                    .collect();
                match changes {
                    Some(ch) if !ch.is_empty() => committed(srv.try_commit_changes(&ch)),
                    _ => "error usage: commitx <oid> <blk> <hex>|- ...".into(),
                }
            }
            Some("delete") => {
                let (oid, blk) = (
                    w.next().and_then(|o| Oid::parse(o).ok()),
                    w.next().and_then(|b| b.parse().ok()),
                );
                match (oid, blk, w.next()) {
                    (Some(oid), Some(blk), None) => {
                        committed(srv.try_commit_changes(&[Change::DeleteFrom(oid, blk)]))
                    }
                    _ => "error usage: delete <oid-hex16> <blk>".into(),
                }
            }
            Some("failures") => {
                let mut r = String::new();
                let f = srv.failures();
                let _ = write!(r, "ok {}", f.len());
                for (link, why) in f {
                    let _ = write!(r, "\t{link} {why}");
                }
                r
            }
            Some("stats") => {
                let (n, median, p99) = srv.pin_rtt_stats();
                format!("ok {n} {median} {p99}")
            }
            Some("quit") => break,
            // For the tests of how a server process ends.
            Some("panic") => panic!("wcfs test server: panic asked for on the control channel"),
            _ => "error unknown command".into(),
        };
        let _ = writeln!(output, "{reply}");
        let _ = output.flush();
    }
    srv.unmount();
}

/// The `commitx` command committing `changes`: `<oid> <blk> <hex>` for a
/// write, `<oid> <blk> -` for a deletion from `blk` on. Data is never
/// empty on the wire (an empty write would read as a usage error).
pub(super) fn commitx_line(changes: &[Change]) -> String {
    let mut cmd = String::from("commitx");
    for c in changes {
        match c {
            Change::Write(oid, blk, data) => {
                let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                let _ = write!(
                    cmd,
                    " {oid} {blk} {}",
                    if hex.is_empty() { "00".into() } else { hex }
                );
            }
            Change::DeleteFrom(oid, blk) => {
                let _ = write!(cmd, " {oid} {blk} -");
            }
        }
    }
    cmd
}
