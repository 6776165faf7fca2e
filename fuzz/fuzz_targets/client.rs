//! Arbitrary API calls and server input (structured, so valid pins and
//! replies are common, plus raw bytes and EOF) against the whole client
//! state machine on the mock OS. After every step: the core's own checks,
//! a down connection has only faulting memory, and every live mapping shows
//! exactly one source for each of its bytes.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, ConnState, Errno, FileId, MapId, OpId, OpOk, OsOp, Stat};
use wcfs_mock::user_op::{pick, UserOp};
use wcfs_mock::{Harness, Mem, Path, StatTable};

const BS: u64 = 16;

const REVS: [Tid; 3] = [Tid(0x10), Tid(0x20), Tid(0x30)];

/// A user call (the same [`UserOp`] the simulation draws) or server input.
#[derive(Arbitrary, Debug)]
enum Op {
    User(UserOp),
    /// A reply to the n-th request the client sent and that awaits one.
    Reply { which: u8, ok: bool },
    Pin { oid: u8, blk: u8, rev: u8, stream: u8 },
    HugePin { stream: u8 },
    Raw(Vec<u8>),
    Eof,
    /// From now on the OS refuses the operation `op` (an index into
    /// `OsOp::ALL`) in `percent` % of calls, with `ENOMEM`.
    OsFails { op: u8, percent: u8 },
}

fn store() -> StatTable {
    let mut st = StatTable { head: Tid(0x30), ..Default::default() };
    for oid in 1..=3u64 {
        st.files.insert(Path::Head(Oid(oid)), Stat { size: 4 * BS, blksize: BS });
        for (i, r) in REVS.iter().enumerate() {
            st.files.insert(Path::Rev(Oid(oid), *r), Stat { size: (i as u64 + 1) * BS, blksize: BS });
        }
    }
    st
}

fuzz_target!(|ops: Vec<Op>| {
    let cfg = Config { page_size: 1, rev_cache: 2, max_pins_per_file: 64 };
    let mut h = Harness::new(Tid(0x20), cfg, store());
    let mut ops_live: Vec<OpId> = Vec::new();
    let mut files: Vec<FileId> = Vec::new();
    let mut maps: Vec<MapId> = Vec::new();
    let mut requests: Vec<u64> = Vec::new();
    for op in ops.into_iter().take(200) {
        match op {
            Op::User(UserOp::Read { map, blk }) => {
                // A live block reads; one of a down connection or a faulting
                // mapping faults (a dirty block is the user's: never checked).
                if let Some(m) = pick(&maps, map).and_then(|m| h.conn.mapping(m)) {
                    let down = !matches!(h.conn.state(), ConnState::Up | ConnState::Closing);
                    let blk = m.blk_start + u64::from(blk) % m.blk_len.max(1);
                    if m.addr != 0 && m.blk_len > 0 && !m.dirty.contains(&blk) {
                        let mut buf = [0u8; BS as usize];
                        let r = h.be.read(m.blk_addr(blk), &mut buf, |_, _, d| d.fill(1));
                        // (An exposed view: the OS refused both ways to fault it.)
                        if !m.exposed {
                            assert_eq!(r.is_ok(), !down && !m.faulting, "read of #{blk}: {r:?}");
                        }
                    }
                }
            }
            Op::User(UserOp::Open { oid }) => {
                if let Ok(op) = h.conn.open(Oid(u64::from(oid % 4))) {
                    ops_live.push(op);
                }
            }
            Op::User(UserOp::Mmap { file, start, len }) => {
                if let Some(f) = pick(&files, file) {
                    if let Ok(op) = h.conn.mmap(f, u64::from(start % 8), u64::from(len % 6)) {
                        ops_live.push(op);
                    }
                }
            }
            Op::User(UserOp::MmapAt { file, start, len, over }) => {
                if let Some(f) = pick(&files, file) {
                    let n = usize::from(len % 6) * BS as usize;
                    let placed = over.and_then(|m| pick(&maps, m >> 1)).and_then(|m| h.conn.mapping(m)).map(|m| m.addr).filter(|&a| a != 0);
                    let addr = placed.unwrap_or_else(|| h.be.reserve(n.max(1)));
                    if let Ok(op) = h.conn.mmap_at(f, u64::from(start % 8), u64::from(len % 6), addr, n) {
                        assert!(placed.is_none(), "mmap_at over a live mapping accepted");
                        ops_live.push(op);
                    }
                }
            }
            Op::User(UserOp::Unmap { map }) => {
                if let Some(m) = pick(&maps, map) {
                    let _ = h.conn.unmap(m);
                }
            }
            Op::User(UserOp::Dirty { map, blk, page }) => {
                if let Some(m) = pick(&maps, map) {
                    let blk = u64::from(blk % 12);
                    let marked = h.conn.mark_dirty(m, blk).is_ok();
                    // The ordering contract: mark dirty, then lay the page (over a live block only).
                    let at = h.conn.mapping(m).filter(|m| m.addr != 0 && !m.faulting && blk >= m.blk_start && blk < m.blk_stop()).map(|m| m.blk_addr(blk));
                    if let (true, Some(tag), Some(addr)) = (marked, page, at) {
                        if h.be.at(addr).is_some_and(|w| w != Mem::Fault) {
                            h.be.lay_private(addr, BS as usize, tag).expect("lay a private page over a live block");
                        }
                    }
                }
            }
            Op::User(UserOp::Remap { map, blk }) => {
                if let Some(m) = pick(&maps, map) {
                    if let Ok(op) = h.conn.remap_blk(m, u64::from(blk % 12)) {
                        ops_live.push(op);
                    }
                }
            }
            Op::User(UserOp::Resync { to }) => {
                if let Ok(op) = h.conn.resync(REVS[usize::from(to) % 3]) {
                    ops_live.push(op);
                }
            }
            Op::User(UserOp::CloseFile { file }) => {
                if let Some(f) = pick(&files, file) {
                    if let Ok(op) = h.conn.close_file(f) {
                        ops_live.push(op);
                    }
                }
            }
            Op::User(UserOp::Close) => {
                if let Ok(op) = h.conn.close() {
                    ops_live.push(op);
                }
            }
            Op::User(UserOp::Fork) => h.conn.fork_child(),
            Op::Reply { which, ok } => {
                if let Some(s) = pick(&requests, which) {
                    requests.retain(|&r| r != s);
                    h.recv(&format!("{s} {}", if ok { "ok" } else { "error refused" }));
                }
            }
            Op::Pin { oid, blk, rev, stream } => {
                let rev = match rev % 4 {
                    3 => "head".to_string(),
                    r => REVS[usize::from(r)].to_string(),
                };
                h.recv(&format!("{} pin {} #{} @{rev}", 2 * (u64::from(stream) + 1), Oid(u64::from(oid % 4)), blk % 12));
            }
            Op::HugePin { stream } => h.recv(&format!("{} pin {} #9223372036854775807 @head", 2 * (u64::from(stream) + 1), Oid(1))),
            Op::Raw(b) => h.recv_bytes(&b),
            Op::Eof => h.eof(),
            Op::OsFails { op, percent } => {
                let op = OsOp::ALL[usize::from(op) % OsOp::ALL.len()];
                h.be.set_fail_chance(op, percent % 101, Errno(12));
            }
        }
        h.drain();
        // Requests the client sent that await a reply.
        for l in h.sent() {
            let mut it = l.splitn(2, ' ');
            if let (Some(s), Some(m)) = (it.next(), it.next()) {
                if m.starts_with("watch ") {
                    requests.push(s.parse().unwrap());
                }
            }
        }
        // Poll every op; keep the results.
        ops_live.retain(|&op| match h.poll(op) {
            None => true,
            Some(Ok(OpOk::Opened(f))) => {
                files.push(f);
                false
            }
            Some(Ok(OpOk::Mapped(m))) => {
                maps.push(m);
                false
            }
            Some(_) => false,
        });
        maps.retain(|&m| h.conn.mapping(m).is_some());
        // Checks (Harness::drain already ran check_invariants).
        let down = !matches!(h.conn.state(), ConnState::Up | ConnState::Closing);
        for (_, m) in h.conn.mappings() {
            if m.addr == 0 {
                continue;
            }
            let regions = h.be.regions(m.addr, m.len_bytes());
            if m.exposed {
                assert!(m.faulting && h.be.injected_ops().contains(&OsOp::Protect), "exposed, yet no mprotect was refused");
            } else if down || m.faulting {
                assert!(
                    regions.iter().all(|r| matches!(r.2, None | Some(wcfs_mock::Mem::Fault))),
                    "a mapping of a closed or down connection is readable"
                );
            } else {
                assert!(regions.iter().all(|r| r.2.is_some()), "a live mapping has a hole");
            }
        }
    }
});
