//! Shared by the end-to-end tests: a server, data helpers, fault probes.
#![allow(dead_code)]

use wcfs_core::wire::{Oid, Tid};
use wcfs_linux::{sys, Mapping};
use wcfs_testkit::model::{ModelConfig, PinRevChoice};
use wcfs_testkit::server::ServerProcess;
pub use wcfs_testkit::server::WcfsServer;

pub const F: Oid = Oid(1);
pub const G: Oid = Oid(2);

pub fn bs() -> u64 {
    sys::page_size() as u64
}

pub fn cfg() -> ModelConfig {
    ModelConfig {
        blksize: bs(),
        history: u64::MAX / 2,
        pin_rev: PinRevChoice::Exact,
        zurl: "test://e2e".into(),
        pintimeout_secs: 10.0,
    }
}

/// The server in a process of its own (see `ServerProcess` for why); the
/// tests see it through [`WcfsServer`] only.
pub fn server() -> impl WcfsServer {
    ServerProcess::start_temp(cfg()).expect("start the test server")
}

pub fn change(oid: Oid, blk: u64, tag: &str) -> (Oid, u64, Vec<u8>) {
    (oid, blk, tag.as_bytes().to_vec())
}

/// Commits blocks 0..4 of `F` tagged "a0".."a3"; returns the revision.
pub fn four_blocks(srv: &impl WcfsServer) -> Tid {
    srv.commit(&[
        change(F, 0, "a0"),
        change(F, 1, "a1"),
        change(F, 2, "a2"),
        change(F, 3, "a3"),
    ])
}

/// The tag at the start of block `blk` of a mapping ("" for zeros).
pub fn tag(m: &Mapping, blk: u64) -> String {
    let mut buf = [0u8; 8];
    m.read(((blk - m.blk_start()) * bs()) as usize, &mut buf)
        .unwrap_or_else(|e| panic!("read #{blk}: {e}"));
    String::from_utf8_lossy(&buf)
        .trim_end_matches('\0')
        .to_string()
}

pub fn tags(m: &Mapping, blks: std::ops::Range<u64>) -> Vec<String> {
    blks.map(|b| tag(m, b)).collect()
}

/// Whether touching block `blk` of the mapping faults (probed in a child).
pub fn faults(m: &Mapping, blk: u64) -> bool {
    sys::probe_read(m.addr() as usize + ((blk - m.blk_start()) * bs()) as usize).is_err()
}

pub fn pinned(v: Vec<(u64, Tid)>) -> Vec<(u64, Tid)> {
    v
}
