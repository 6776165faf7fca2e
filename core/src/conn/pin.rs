//! What the server says on the watch link: replies to our requests, and
//! pins, decided and applied here (the remap actions of a `pin` line and
//! its ack).

use super::{Conn, ConnState, Error, OpKind, OpOk, PinReq};
use crate::action::Action;
use crate::bugs::{self, Bug};
use crate::file::FileState;
use crate::ids::Tok;
use crate::link::{text, Incoming};
use crate::stats::Event;
use crate::wire::{Rev, StreamId};

impl Conn {
    pub(super) fn handle_line(&mut self, line: &[u8]) {
        match self.link.recv(line) {
            Err(e) => self.go_down(Error::Link(e)),
            Ok(Incoming::Reply { stream, result }) => self.on_reply(stream, result),
            Ok(Incoming::Pin {
                stream,
                oid,
                blk,
                rev,
            }) => self.on_pin(PinReq {
                stream,
                oid,
                blk,
                rev,
            }),
        }
    }

    pub(super) fn on_reply(&mut self, stream: StreamId, result: Result<(), &str>) {
        let Some(op) = self.ops.take_waiter(stream) else {
            return; // its op already failed
        };
        let result = result.map_err(|t| Error::Server(text(t)));
        match self.ops[op].kind {
            OpKind::Open {
                file: Some(fid), ..
            } => match result {
                Ok(()) => {
                    let f = self.files.get_mut(&fid).expect("opening file");
                    f.state = FileState::Open;
                    f.count = 1;
                    self.finish(op, Ok(OpOk::Opened(fid)));
                }
                Err(e) => {
                    self.close_file_now(fid);
                    self.finish(op, Err(e));
                }
            },
            OpKind::CloseFile { file } => {
                self.close_file_now(file);
                self.finish(op, result.map(|()| OpOk::Done));
            }
            OpKind::Resync { .. } => match result {
                Ok(()) => {
                    let OpKind::Resync { replies, .. } = &mut self.op_mut(op).kind else {
                        unreachable!()
                    };
                    *replies -= 1;
                    if *replies == 0 {
                        self.finish(op, Ok(OpOk::Done));
                    }
                }
                Err(e) => self.go_down(e),
            },
            _ => {}
        }
    }

    pub(super) fn on_pin(&mut self, req: PinReq) {
        self.decide_pin(req, true)
    }

    /// Checks a pin and applies it once its `@rev` file is open; `fresh`
    /// when it just arrived (a pin decided again after waiting for a VM's
    /// lock counts no second cache hit).
    pub(super) fn decide_pin(&mut self, req: PinReq, fresh: bool) {
        if self.state == ConnState::Closing {
            // After `bye` every view is gone: nothing to remap.
            return self.pin_done(req.stream);
        }
        let Some(f) = self
            .files
            .of_oid(req.oid)
            .and_then(|id| self.files.get(&id))
        else {
            return self.go_down(Error::UnexpectedPin(req.oid));
        };
        if !f.watched {
            return self.go_down(Error::UnexpectedPin(req.oid));
        }
        let end = req
            .blk
            .checked_add(1)
            .and_then(|b| b.checked_mul(f.blksize))
            .filter(|&e| e <= i64::MAX as u64 && e <= usize::MAX as u64);
        if end.is_none() {
            return self.go_down(Error::PinOutOfRange {
                oid: req.oid,
                blk: req.blk,
            });
        }
        if let Rev::At(rev) = req.rev {
            if rev > self.at {
                return self.go_down(Error::PinAfterAt {
                    oid: req.oid,
                    blk: req.blk,
                    rev,
                });
            }
            if !self.revs.has(req.oid, rev) {
                self.stalled = Some(req);
                self.actions.push_back(Action::OpenRev {
                    tok: Tok::Pin,
                    oid: req.oid,
                    rev,
                });
                return;
            }
            if fresh {
                self.count(Event::rev_hits, 1);
            }
        }
        self.apply_pin(req);
    }

    /// Remaps the block in every mapping that shows it, records the pin, acks.
    /// Mappings that serve a VM are asked first (see `vm.rs`): the pin
    /// waits for their locks, then for their answers.
    pub(super) fn apply_pin(&mut self, req: PinReq) {
        if self.state != ConnState::Up {
            return self.pin_done(req.stream);
        }
        let Some(fid) = self.files.of_oid(req.oid) else {
            return self.go_down(Error::UnexpectedPin(req.oid));
        };
        if !self.pin_vms_ready(fid, req) {
            return;
        }
        let f = self.files.get_mut(&fid).expect("indexed file");
        match req.rev {
            Rev::Head => {
                f.pinned.remove(&req.blk);
            }
            Rev::At(rev) => {
                if f.pinned.len() >= self.cfg.max_pins_per_file && !f.pinned.contains_key(&req.blk)
                {
                    return self.go_down(Error::TooManyPins(req.oid));
                }
                f.pinned.insert(req.blk, rev);
            }
        }
        let f = &self.files[&fid];
        let src = match self.revs.block_src(f, req.blk) {
            Ok(src) => src,
            Err(_) => unreachable!("the pin's @rev file was just made present"),
        };
        let mut skip = bugs::on(Bug::SkipRemapOnPin) && matches!(req.rev, Rev::At(_));
        let mut remapped = 0;
        for (_, mid) in f.maps_covering(req.blk) {
            let m = &self.maps[mid];
            if m.contains(req.blk) && m.remappable(req.blk) {
                if let Some(vm) = m.vm {
                    // The VM decides whether its page stays: ask it.
                    self.actions.push_back(Action::VmDirty {
                        tok: Tok::Pin,
                        vm,
                        map: mid,
                        addr: m.blk_addr(req.blk),
                        blk: req.blk,
                    });
                    self.vm_pin.queries += 1;
                    continue;
                }
                if core::mem::take(&mut skip) {
                    continue;
                }
                self.actions.push_back(Action::MapFixed {
                    addr: m.blk_addr(req.blk),
                    len: m.blksize as usize,
                    src,
                });
                remapped += 1;
            }
        }
        self.count(Event::remaps, remapped);
        if self.pin_asks_vm(req) {
            return;
        }
        self.count_pin(req.rev);
        self.pin_done(req.stream);
    }

    pub(super) fn count_pin(&mut self, rev: Rev) {
        match rev {
            Rev::Head => self.count(Event::unpins, 1),
            Rev::At(_) => self.count(Event::pins, 1),
        }
    }

    pub(super) fn answer(&mut self, stream: StreamId) {
        match self.link.answer(stream, None) {
            Ok(line) => self.actions.push_back(Action::Send(line)),
            Err(e) => self.go_down(Error::Link(e)),
        }
    }
}
