//! The long operations (open, mmap, resync, close) as steps: what each
//! does when it starts and with the OS's answers to its actions. Their
//! table (ids, order, results, awaited replies) is `optable.rs`.

use alloc::vec::Vec;

use super::optable::{Op, OpKind};
use super::{reserve_pins, Conn, ConnState, Error, OpOk};
use crate::action::{Action, Fd, OsOp, Outcome, Src, Stat};
use crate::bugs::{self, Bug};
use crate::file::FileState;
use crate::ids::{FileId, MapId, OpId, Tok};
use crate::stats::Event;
use crate::wire::{Oid, Tid};

impl Conn {
    pub(super) fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn new_op(&mut self, kind: OpKind) -> OpId {
        let op = OpId(self.fresh());
        self.ops.insert(op, kind);
        op
    }

    pub(super) fn done_op(&mut self, r: Result<OpOk, Error>) -> OpId {
        let op = self.new_op(OpKind::Remap);
        self.started(op);
        self.finish(op, r);
        op
    }

    pub(super) fn op_mut(&mut self, op: OpId) -> &mut Op {
        self.ops.get_mut(op).expect("live op")
    }

    pub(super) fn started(&mut self, op: OpId) {
        self.op_mut(op).started = true;
    }

    pub(super) fn finish(&mut self, op: OpId, r: Result<OpOk, Error>) {
        let ok = r.is_ok();
        match self.ops.finish(op, r) {
            // A mapping nobody will get a handle on: release it (or give a
            // caller's range back reserved). One not placed yet is released
            // when the OS answers (`on_mapped`).
            Some(OpKind::Mmap { map }) if !ok => {
                let _ = self.unmap(map);
            }
            Some(OpKind::Resync { .. }) if ok => self.count(Event::resyncs, 1),
            _ => {}
        }
    }

    pub(super) fn is_live(&self, op: OpId) -> bool {
        self.ops.is_live(op)
    }

    pub(super) fn fail_ops(&mut self, e: &Error) {
        let live: Vec<OpId> = self.ops.unfinished().collect();
        for op in live {
            self.finish(op, Err(e.clone()));
        }
    }

    /// When op `op` may start: see `Ops::can_start`.
    pub(super) fn can_start(&self, op: OpId) -> bool {
        self.ops
            .can_start(op, |f| self.files.get(&f).map(|f| f.oid))
    }

    pub(super) fn check_up(&self) -> Result<(), Error> {
        match self.state {
            ConnState::Up => Ok(()),
            _ => Err(Error::ConnClosed),
        }
    }

    pub(super) fn reading(&self) -> bool {
        matches!(self.state, ConnState::Up | ConnState::Closing)
    }

    pub(super) fn start(&mut self, op: OpId) {
        self.started(op);
        if self.state != ConnState::Up {
            return self.finish(op, Err(Error::ConnClosed));
        }
        match self.ops[op].kind {
            OpKind::Open { oid, .. } => {
                if let Some(fid) = self.files.of_oid(oid) {
                    let f = self.files.get_mut(&fid).expect("indexed file");
                    debug_assert_eq!(f.state, FileState::Open);
                    f.count += 1;
                    return self.finish(op, Ok(OpOk::Opened(fid)));
                }
                let fid = FileId(self.fresh());
                self.files.open(fid, oid);
                self.op_mut(op).kind = OpKind::Open {
                    oid,
                    file: Some(fid),
                };
                self.actions.push_back(Action::OpenHead {
                    tok: Tok::Op(op),
                    oid,
                });
            }
            OpKind::CloseFile { file } => {
                let Some(f) = self.files.get_mut(&file) else {
                    return self.finish(op, Err(Error::FileClosed));
                };
                if f.count > 1 {
                    f.count -= 1;
                    return self.finish(op, Ok(OpOk::Done));
                }
                f.state = FileState::Closing;
                let oid = f.oid;
                self.fault_file_maps(file);
                match self.link.unwatch(oid) {
                    Ok((stream, line)) => {
                        self.actions.push_back(Action::Send(line));
                        self.ops.await_reply(stream, op);
                    }
                    Err(e) => self.go_down(Error::Link(e)),
                }
            }
            OpKind::Resync { at, .. } => {
                self.actions.push_back(Action::WaitHeadAt {
                    tok: Tok::Op(op),
                    at,
                });
            }
            OpKind::Mmap { .. } | OpKind::Remap | OpKind::CloseConn => {}
        }
    }

    pub(super) fn on_head_opened(&mut self, op: OpId, outcome: Outcome) {
        let file = match self.ops.live(op) {
            Some(Op {
                kind: OpKind::Open { file: Some(f), .. },
                ..
            }) => *f,
            _ => return self.close_unused(outcome),
        };
        let (fd, st) = match outcome {
            Outcome::Opened(fd, st) => (fd, st),
            Outcome::Failed(errno) => {
                self.forget_file(file);
                return self.finish(
                    op,
                    Err(Error::Os {
                        call: OsOp::OpenHead,
                        errno,
                    }),
                );
            }
            other => return self.bad_completion(OsOp::OpenHead, other),
        };
        let bad = if st.blksize == 0 || st.blksize % self.cfg.page_size as u64 != 0 {
            Some(Error::BadBlksize(st.blksize))
        } else if st.size % st.blksize != 0 {
            Some(Error::BadSize {
                size: st.size,
                blksize: st.blksize,
            })
        } else {
            None
        };
        if let Some(e) = bad {
            self.actions.push_back(Action::Close(fd));
            self.forget_file(file);
            return self.finish(op, Err(e));
        }
        let at = self.at;
        let max_pins = self.cfg.max_pins_per_file;
        let f = self.files.get_mut(&file).expect("opening file");
        f.fd = Some(fd);
        f.blksize = st.blksize;
        f.size = st.size;
        reserve_pins(f, max_pins);
        let oid = f.oid;
        match self.link.watch(oid, at) {
            Ok((stream, line)) => {
                self.files.get_mut(&file).expect("opening file").watched = true;
                self.actions.push_back(Action::Send(line));
                self.ops.await_reply(stream, op);
            }
            Err(e) => self.go_down(Error::Link(e)),
        }
    }

    pub(super) fn on_head_at(&mut self, op: OpId, outcome: Outcome) {
        let OpKind::Resync { at, .. } = self.ops.get(op).map_or(&OpKind::CloseConn, |o| &o.kind)
        else {
            return;
        };
        let at = *at;
        if !self.is_live(op) {
            return;
        }
        let head = match outcome {
            Outcome::HeadAt(h) => h,
            Outcome::Failed(errno) => {
                return self.finish(
                    op,
                    Err(Error::Os {
                        call: OsOp::WaitHeadAt,
                        errno,
                    }),
                )
            }
            other => return self.bad_completion(OsOp::WaitHeadAt, other),
        };
        if head < at {
            return self.finish(op, Err(Error::HeadBehind { head, at }));
        }
        // One stat at a time: a step queues at most one blocking action.
        let mut fds: Vec<Fd> = self.files.values().filter_map(|f| f.fd).collect();
        fds.sort_unstable_by(|a, b| b.cmp(a)); // popped last first: in fd order
        if let OpKind::Resync { stats, .. } = &mut self.op_mut(op).kind {
            *stats = fds.len();
        }
        self.op_mut(op).stat_fds = fds;
        self.next_stat(op);
    }

    pub(super) fn next_stat(&mut self, op: OpId) {
        match self.op_mut(op).stat_fds.pop() {
            Some(fd) => self.actions.push_back(Action::StatHead {
                tok: Tok::Op(op),
                fd,
            }),
            None => self.resync_step(op),
        }
    }

    pub(super) fn on_stat(&mut self, op: OpId, fd: Fd, outcome: Outcome) {
        if !self.is_live(op) {
            return;
        }
        let st = match outcome {
            Outcome::Stat(st) => st,
            Outcome::Failed(errno) => {
                return self.go_down(Error::Os {
                    call: OsOp::StatHead,
                    errno,
                })
            }
            other => return self.bad_completion(OsOp::StatHead, other),
        };
        if let OpKind::Resync { stats, .. } = &mut self.op_mut(op).kind {
            *stats -= 1;
        }
        let Some((fid, f)) = self.files.iter_mut().find(|(_, f)| f.fd == Some(fd)) else {
            return self.next_stat(op);
        };
        if st.blksize != f.blksize {
            return self.go_down(Error::HeadChanged {
                size: st.size,
                blksize: st.blksize,
            });
        }
        if st.size % st.blksize != 0 {
            return self.go_down(Error::BadSize {
                size: st.size,
                blksize: st.blksize,
            });
        }
        let (old, new) = (f.nblk(), st.size / st.blksize);
        f.size = st.size;
        reserve_pins(f, self.cfg.max_pins_per_file);
        if new != old {
            // Head grew: blocks [old, new) showed zeros, head covers them
            // now. Head shrank (its last blocks were deleted): blocks
            // [new, old) showed head, which faults there now; they show
            // zeros. Pinned and dirty blocks keep their own source.
            let maps: Vec<(u64, MapId)> = f.maps.iter().copied().collect();
            let mut todo = Vec::new();
            for (_, mid) in maps {
                self.map_range(fid, mid, old.min(new), old.max(new), &mut todo);
            }
            self.op_mut(op).todo.extend(todo);
        }
        self.run_todo(op);
    }

    /// Makes blocks `[lo, hi)` (clipped to the mapping) show their sources:
    /// head in one stretch between dirty blocks, pinned blocks queued to `todo`.
    pub(super) fn map_range(
        &mut self,
        fid: FileId,
        mid: MapId,
        lo: u64,
        hi: u64,
        todo: &mut Vec<(MapId, u64)>,
    ) {
        let (Some(f), Some(m)) = (self.files.get(&fid), self.maps.get(mid)) else {
            return;
        };
        if m.faulting || m.addr == 0 {
            return;
        }
        let (lo, hi) = (lo.max(m.blk_start), hi.min(m.blk_stop()));
        if m.vm.is_some() {
            // Each block is asked to the VM first (`run_todo`).
            todo.extend((lo..hi).filter(|&b| m.remappable(b)).map(|b| (mid, b)));
            return;
        }
        let mut b = lo;
        while b < hi {
            if !m.remappable(b) || f.pinned.contains_key(&b) {
                if m.remappable(b) {
                    todo.push((mid, b));
                }
                b += 1;
                continue;
            }
            let mut e = b + 1;
            while e < hi && m.remappable(e) && !f.pinned.contains_key(&e) {
                e += 1;
            }
            let src = f.unpinned_src(b);
            let e = f.head_stop(b, e);
            self.actions.push_back(Action::MapFixed {
                addr: m.blk_addr(b),
                len: ((e - b) * m.blksize) as usize,
                src,
            });
            b = e;
        }
    }

    /// Resync after its stats and remaps: watch every file at the new `at`.
    pub(super) fn resync_step(&mut self, op: OpId) {
        let Some(Op {
            kind: OpKind::Resync { at, stats, replies },
            todo,
            ..
        }) = self.ops.live(op)
        else {
            return;
        };
        if *stats > 0 || !todo.is_empty() || *replies > 0 {
            return;
        }
        debug_assert!(self.ops[op].stat_fds.is_empty());
        let at = *at;
        self.at = at;
        self.close_revs();
        // In oid order: the same requests in the same order for the same
        // files (the map's order changes from one instance to the next).
        let mut oids: Vec<Oid> = self.files.values().map(|f| f.oid).collect();
        oids.sort_unstable();
        let mut n = 0;
        for oid in oids {
            match self.link.watch(oid, at) {
                Ok((stream, line)) => {
                    self.actions.push_back(Action::Send(line));
                    self.ops.await_reply(stream, op);
                    n += 1;
                }
                Err(e) => return self.go_down(Error::Link(e)),
            }
        }
        if n == 0 {
            return self.finish(op, Ok(OpOk::Done));
        }
        if let OpKind::Resync { replies, .. } = &mut self.op_mut(op).kind {
            *replies = n;
        }
    }

    pub(super) fn on_mapped(&mut self, op: OpId, action: &Action, outcome: Outcome) {
        let map = match self.ops.live(op) {
            Some(Op {
                kind: OpKind::Mmap { map },
                ..
            }) => *map,
            _ => {
                if let (Outcome::Mapped(addr), Action::MapNew { len, .. }) = (outcome, action) {
                    self.actions.push_back(Action::Unmap { addr, len: *len });
                }
                return;
            }
        };
        let addr = match outcome {
            Outcome::Mapped(a) => a,
            Outcome::Failed(errno) => {
                self.maps.remove(map);
                return self.finish(
                    op,
                    Err(Error::Os {
                        call: OsOp::MapNew,
                        errno,
                    }),
                );
            }
            other => return self.bad_completion(OsOp::MapNew, other),
        };
        self.maps.get_mut(map).expect("new mapping").addr = addr;
        self.placed(op, map);
    }

    /// The mapping `op` makes is in place, showing head: index it, show
    /// zeros past head's end, remap its pinned blocks.
    pub(super) fn placed(&mut self, op: OpId, map: MapId) {
        let m = &self.maps[map];
        let (fid, start, stop) = (m.file, m.blk_start, m.blk_stop());
        let f = self.files.get_mut(&fid).expect("mapped file");
        f.add_map(start, stop - start, map);
        reserve_pins(f, self.cfg.max_pins_per_file);
        // The new mapping shows head throughout; past head's end it shows zeros.
        let a = match f.unpinned_src(start) {
            Src::Zeros => start,
            Src::File { .. } | Src::Fault => f.head_stop(start, stop),
        };
        if a < stop && !bugs::on(Bug::NoZerosPastEnd) {
            let m = &self.maps[map];
            self.actions.push_back(Action::MapFixed {
                addr: m.blk_addr(a),
                len: ((stop - a) * m.blksize) as usize,
                src: Src::Zeros,
            });
        }
        let mut todo: Vec<(MapId, u64)> = self.files[&fid]
            .pinned_in(start, stop)
            .into_iter()
            .rev()
            .map(|b| (map, b))
            .collect();
        self.op_mut(op).todo.append(&mut todo);
        self.run_todo(op);
    }

    /// Remaps the op's queued blocks; stops at the first `@rev` file to open.
    pub(super) fn run_todo(&mut self, op: OpId) {
        let Some(o) = self.ops.get_mut(op) else {
            return;
        };
        let mut todo = core::mem::take(&mut o.todo);
        while let Some(&(mid, blk)) = todo.last() {
            let Some(m) = self.maps.get(mid) else {
                todo.pop();
                continue;
            };
            if !m.remappable(blk) {
                todo.pop();
                continue;
            }
            if self.op_asks_vm(op, mid, blk) {
                self.op_mut(op).todo = todo;
                return;
            }
            let m = &self.maps[mid];
            let (addr, len) = (m.blk_addr(blk), m.blksize as usize);
            let Some(f) = self.files.get(&m.file) else {
                todo.pop();
                continue;
            };
            match self.revs.block_src(f, blk) {
                Ok(src) => {
                    self.actions.push_back(Action::MapFixed { addr, len, src });
                    self.count(Event::remaps, 1);
                    todo.pop();
                    self.op_vm_used(mid, blk);
                }
                Err(rev) => {
                    let oid = f.oid;
                    self.actions.push_back(Action::OpenRev {
                        tok: Tok::Op(op),
                        oid,
                        rev,
                    });
                    self.op_mut(op).todo = todo;
                    return;
                }
            }
        }
        self.op_vm_done(op);
        match self.ops[op].kind {
            OpKind::Mmap { map } => self.finish(op, Ok(OpOk::Mapped(map))),
            OpKind::Remap => self.finish(op, Ok(OpOk::Done)),
            OpKind::Resync { .. } => self.next_stat(op),
            _ => {}
        }
    }

    pub(super) fn on_rev_opened(&mut self, tok: Tok, oid: Oid, rev: Tid, outcome: Outcome) {
        let failed = match outcome {
            Outcome::Opened(fd, st) => {
                self.count(Event::rev_opens, 1);
                self.cache_rev(oid, rev, fd, st);
                None
            }
            Outcome::Failed(errno) => Some(Error::Os {
                call: OsOp::OpenRev,
                errno,
            }),
            other => return self.bad_completion(OsOp::OpenRev, other),
        };
        let op = match tok {
            Tok::Op(op) => op,
            Tok::Pin => {
                let Some(req) = self.stalled.take() else {
                    return;
                };
                return match failed {
                    Some(e) => {
                        // Put it back so that go_down naks it.
                        self.stalled = Some(req);
                        self.go_down(e)
                    }
                    None => self.apply_pin(req),
                };
            }
        };
        if !self.is_live(op) {
            return;
        }
        match failed {
            None => self.run_todo(op),
            Some(e) => match self.ops[op].kind {
                OpKind::Mmap { map } => {
                    let _ = self.unmap(map);
                    self.finish(op, Err(e));
                }
                _ => self.go_down(e),
            },
        }
    }

    /// Keeps an `@rev` file just opened, while the connection reads its
    /// link; closes what that makes redundant.
    pub(super) fn cache_rev(&mut self, oid: Oid, rev: Tid, fd: Fd, st: Stat) {
        let close = if self.reading() {
            self.revs.insert(oid, rev, fd, st.size)
        } else {
            Some(fd)
        };
        if let Some(fd) = close {
            self.actions.push_back(Action::Close(fd));
        }
    }

    pub(super) fn close_revs(&mut self) {
        for fd in self.revs.take_all() {
            self.actions.push_back(Action::Close(fd));
        }
    }

    /// The driver handed back an outcome of another kind than `call`
    /// gives: its bug. The connection goes down (closing a file the
    /// outcome carried), never silently.
    pub(super) fn bad_completion(&mut self, call: OsOp, outcome: Outcome) {
        self.close_unused(outcome);
        self.go_down(Error::BadCompletion(call));
    }

    pub(super) fn close_unused(&mut self, outcome: Outcome) {
        if let Outcome::Opened(fd, _) = outcome {
            self.actions.push_back(Action::Close(fd));
        }
    }

    pub(super) fn forget_file(&mut self, fid: FileId) {
        self.files.forget(fid);
    }
}
