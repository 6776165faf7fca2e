//! The user: one function per operation a user of the API can make.

use wcfs_core::wire::Tid;
use wcfs_core::{Error, FileId, MapId, OpOk, OsOp};
use wcfs_mock::user_op::{pick, UserOp, UserOpKind};
use wcfs_mock::Mem;

use super::{Check, OpKind, World, MAX_BLKS};

impl World {
    // ---- the user: one function per operation ----

    /// Whether operation `k` is one the user of client `i` can make now.
    pub(super) fn can(&self, i: usize, k: UserOpKind) -> bool {
        let c = self.clients[i].as_ref().expect("client");
        let (up, idle) = (c.up(), c.op.is_none());
        let (files, maps) = (!c.files.is_empty(), !c.maps.is_empty());
        match k {
            UserOpKind::Read | UserOpKind::Unmap | UserOpKind::Dirty | UserOpKind::Remap => maps,
            UserOpKind::Open | UserOpKind::Resync => up && idle,
            UserOpKind::Mmap | UserOpKind::MmapAt => files,
            UserOpKind::CloseFile => up && idle && files,
            UserOpKind::Close => idle,
            UserOpKind::Fork => true,
        }
    }

    /// The user of client `i` makes one call, drawn with the run's weights
    /// among those it can make now; a step where it can only close or fork
    /// does nothing (those end the client, and would end every new one).
    pub(super) fn user(&mut self, i: usize) -> Check {
        let can: Vec<(UserOpKind, u32)> = self
            .swarm
            .ops
            .iter()
            .map(|&(k, w)| (k, if self.can(i, k) { w } else { 0 }))
            .collect();
        if can
            .iter()
            .all(|&(k, w)| w == 0 || matches!(k, UserOpKind::Close | UserOpKind::Fork))
        {
            return Ok(());
        }
        let Some(kind) = self.rng.weighted(&can) else {
            return Ok(());
        };
        let op = self.draw(kind);
        self.apply(i, op)
    }

    /// Operands for an operation of kind `k`, from the seed.
    pub(super) fn draw(&mut self, k: UserOpKind) -> UserOp {
        let r = &mut self.rng;
        match k {
            UserOpKind::Read => UserOp::Read {
                map: r.byte(),
                blk: r.byte(),
            },
            UserOpKind::Open => UserOp::Open { oid: r.byte() },
            UserOpKind::Mmap => UserOp::Mmap {
                file: r.byte(),
                start: r.byte(),
                len: r.byte(),
            },
            UserOpKind::MmapAt => UserOp::MmapAt {
                file: r.byte(),
                start: r.byte(),
                len: r.byte(),
                over: r.chance(20).then(|| r.byte()),
            },
            UserOpKind::Unmap => UserOp::Unmap { map: r.byte() },
            UserOpKind::Dirty => UserOp::Dirty {
                map: r.byte(),
                blk: r.byte(),
                page: r.chance(50).then(|| b'a' + r.below(26) as u8),
            },
            UserOpKind::Remap => UserOp::Remap {
                map: r.byte(),
                blk: r.byte(),
            },
            UserOpKind::Resync => UserOp::Resync { to: r.byte() },
            UserOpKind::CloseFile => UserOp::CloseFile { file: r.byte() },
            UserOpKind::Close => UserOp::Close,
            UserOpKind::Fork => UserOp::Fork,
        }
    }

    /// Performs `op` for the user of client `i` and checks its outcome.
    pub(super) fn apply(&mut self, i: usize, op: UserOp) -> Check {
        match op {
            UserOp::Read { map, blk } => self.op_read(i, map, blk),
            UserOp::Open { oid } => self.op_open(i, oid),
            UserOp::Mmap { file, start, len } => self.op_mmap(i, file, start, len, None),
            UserOp::MmapAt {
                file,
                start,
                len,
                over,
            } => self.op_mmap(i, file, start, len, Some(over)),
            UserOp::Unmap { map } => self.op_unmap(i, map),
            UserOp::Dirty { map, blk, page } => self.op_dirty(i, map, blk, page),
            UserOp::Remap { map, blk } => self.op_remap(i, map, blk),
            UserOp::Resync { to } => self.op_resync(i, to),
            UserOp::CloseFile { file } => self.op_close_file(i, file),
            UserOp::Close => self.op_close(i),
            UserOp::Fork => self.op_fork(i),
        }
    }

    /// A mapping of client `i` and one of its blocks, chosen by operands.
    pub(super) fn map_blk(&self, i: usize, map: u8, blk: u8) -> Option<(MapId, u64)> {
        let c = self.clients[i].as_ref().expect("client");
        let id = pick(&c.maps, map)?;
        let m = c.h.conn.mapping(id)?;
        (m.blk_len > 0).then(|| (id, m.blk_start + u64::from(blk) % m.blk_len))
    }

    pub(super) fn op_read(&mut self, i: usize, map: u8, blk: u8) -> Check {
        let Some((map, blk)) = self.map_blk(i, map, blk) else {
            return Ok(());
        };
        self.log(format!("client {i} Read map {} #{blk}", map.0));
        self.read(i, map, blk)
    }

    pub(super) fn op_open(&mut self, i: usize, oid: u8) -> Check {
        let oid = pick(&self.oids, oid).expect("oids");
        let exists = {
            let m = self.model.borrow();
            m.size(oid, m.head()).is_some()
        };
        if !exists {
            return Ok(());
        }
        let op = self
            .client(i)
            .h
            .conn
            .open(oid)
            .map_err(|e| format!("open: {e}"))?;
        self.client(i).op = Some((op, OpKind::Open(oid)));
        self.log(format!("client {i} Open f<{oid}>"));
        self.poll_op(i)
    }

    /// `mmap`, or `mmap_at` into a range the user reserved when `at` is
    /// given (first trying over a live mapping when it says so).
    pub(super) fn op_mmap(
        &mut self,
        i: usize,
        file: u8,
        start: u8,
        len: u8,
        at: Option<Option<u8>>,
    ) -> Check {
        let Some((f, _)) = pick(&self.client(i).files, file) else {
            return Ok(());
        };
        let start = u64::from(start) % (MAX_BLKS + 2);
        let len = 1 + u64::from(len) % 4;
        let range = match at {
            Some(over) => {
                if let Some(over) = over {
                    self.refused_overlap(i, f, start, len, over)?;
                }
                Some(self.reservation(i, (len * self.blksize) as usize))
            }
            None => None,
        };
        let r = match range {
            Some((addr, n)) => self.client(i).h.conn.mmap_at(f, start, len, addr, n),
            None => self.client(i).h.conn.mmap(f, start, len),
        };
        match r {
            Ok(op) => {
                let r = self.client(i).h.poll(op);
                self.collect(i)?;
                match r {
                    Some(Ok(OpOk::Mapped(m))) => {
                        self.client(i).maps.push(m);
                        let (name, at) = match range {
                            Some(range) => {
                                self.client(i).owned.insert(m, range);
                                self.report.fixed_maps += 1;
                                ("MmapAt", format!(" at {:#x}", range.0))
                            }
                            None => ("Mmap", String::new()),
                        };
                        self.log(format!(
                            "client {i} {name} #{start}+{len}{at} -> map {}",
                            m.0
                        ));
                        Ok(())
                    }
                    // A failed OS call (its own mmap, or one that took
                    // the connection down) fails the op.
                    Some(Err(
                        e @ (Error::Os { .. }
                        | Error::Link(_)
                        | Error::ConnClosed
                        | Error::FileClosed),
                    )) if self.client(i).h.be.injected() > 0 => {
                        if let Some(range) = range {
                            self.client(i).spare.push(range);
                        }
                        self.log(format!("client {i} mmap -> {e:?}"));
                        Ok(())
                    }
                    r => Err(format!("client {i}: mmap did not complete: {r:?}")),
                }
            }
            Err(Error::FileClosed) | Err(Error::ConnClosed) => {
                if let Some(range) = range {
                    self.client(i).spare.push(range);
                }
                Ok(())
            }
            Err(e) => Err(format!("client {i}: mmap: {e}")),
        }
    }

    pub(super) fn op_unmap(&mut self, i: usize, map: u8) -> Check {
        let c = self.client(i);
        if c.maps.is_empty() {
            return Ok(());
        }
        let map = c.maps.swap_remove(usize::from(map) % c.maps.len());
        c.dirty.retain(|k, _| k.0 != map);
        c.h.conn.unmap(map).map_err(|e| format!("unmap: {e}"))?;
        let injected = c.h.be.injected();
        c.h.drain();
        self.log(format!("client {i} Unmap map {}", map.0));
        self.collect(i)?;
        let c = self.client(i);
        if let Some((addr, len)) = c.owned.remove(&map) {
            // The user's range is left reserved, inaccessible, unless the
            // OS refused both ways to make it so (and it stays reserved).
            let regions = c.h.be.regions(addr, len);
            let refused = c.h.be.injected_ops()[injected..]
                .windows(2)
                .any(|w| w == [OsOp::MapFixed, OsOp::Protect]);
            let faults = regions == [(addr, addr + len, Some(Mem::Fault))];
            if refused && !faults && regions.iter().all(|r| r.2.is_some()) {
                self.log(format!("client {i}: caller's range {addr:#x} exposed"));
                return Ok(());
            }
            if regions != [(addr, addr + len, Some(Mem::Fault))] {
                return Err(format!(
                    "a caller's range stays reserved after unmap: client {i}: {addr:#x}+{len:#x} is {regions:?}"
                ));
            }
            c.spare.push((addr, len));
        }
        Ok(())
    }

    /// The ordering contract: mark dirty, then lay the page (only over a
    /// live block: a faulting one faults on the write).
    pub(super) fn op_dirty(&mut self, i: usize, map: u8, blk: u8, page: Option<u8>) -> Check {
        let Some((map, blk)) = self.map_blk(i, map, blk) else {
            return Ok(());
        };
        let bs = self.blksize as usize;
        let c = self.client(i);
        c.h.conn.mark_dirty(map, blk).map_err(|e| e.to_string())?;
        let m = c.h.conn.mapping(map).expect("mapping");
        let (addr, page) = (m.blk_addr(blk), page.filter(|_| !m.faulting));
        if let Some(tag) = page {
            c.h.be
                .lay_private(addr, bs, tag)
                .map_err(|e| format!("client {i}: lay a private page: {e:?}"))?;
        }
        let mem = c.h.be.at(addr);
        c.dirty.insert((map, blk), mem);
        self.log(format!(
            "client {i} Dirty map {} #{blk}{}",
            map.0,
            if page.is_some() {
                " (private page)"
            } else {
                ""
            }
        ));
        Ok(())
    }

    pub(super) fn op_remap(&mut self, i: usize, map: u8, blk: u8) -> Check {
        let Some((map, blk)) = self.map_blk(i, map, blk) else {
            return Ok(());
        };
        let c = self.client(i);
        c.dirty.remove(&(map, blk));
        let op = c.h.conn.remap_blk(map, blk).map_err(|e| e.to_string())?;
        let r = c.h.poll(op);
        self.collect(i)?;
        self.log(format!("client {i} Remap map {} #{blk} -> {r:?}", map.0));
        Ok(())
    }

    /// Forward to head (even `to`) or to a revision between the
    /// connection's and head.
    pub(super) fn op_resync(&mut self, i: usize, to: u8) -> Check {
        let (at, head) = (self.client(i).h.conn.at(), self.model.borrow().head());
        let to = if to.is_multiple_of(2) {
            head
        } else {
            let revs: Vec<Tid> = self
                .model
                .borrow()
                .revs()
                .into_iter()
                .filter(|&r| r >= at && r <= head)
                .collect();
            pick(&revs, to / 2).unwrap_or(at)
        };
        self.log(format!("client {i} Resync @{at} -> @{to}"));
        self.resync(i, to)
    }

    /// Starts a resync of client `i` to `to`; going back is refused.
    pub(super) fn resync(&mut self, i: usize, to: Tid) -> Check {
        let at = self.client(i).h.conn.at();
        match self.client(i).h.conn.resync(to) {
            Ok(op) => {
                self.client(i).op = Some((op, OpKind::Resync(to)));
                self.poll_op(i)
            }
            Err(Error::GoingBack { .. }) if to < at => {
                self.client(i).h.drain();
                self.collect(i)
            }
            Err(e) => Err(format!("resync: {e}")),
        }
    }

    pub(super) fn op_close_file(&mut self, i: usize, file: u8) -> Check {
        let c = self.client(i);
        if c.files.is_empty() {
            return Ok(());
        }
        let (f, oid) = c.files.swap_remove(usize::from(file) % c.files.len());
        let op =
            c.h.conn
                .close_file(f)
                .map_err(|e| format!("close_file: {e}"))?;
        c.op = Some((op, OpKind::CloseFile(f)));
        self.log(format!("client {i} CloseFile f<{oid}>"));
        self.poll_op(i)
    }

    pub(super) fn op_close(&mut self, i: usize) -> Check {
        let op = self.client(i).h.conn.close();
        self.log(format!("client {i} Close -> {op:?}"));
        if let Ok(op) = op {
            self.client(i).op = Some((op, OpKind::Close));
            return self.poll_op(i);
        }
        Ok(())
    }

    /// The process forks: the child takes over every client of the
    /// process (the parent exits), and must add nothing to the link.
    pub(super) fn op_fork(&mut self, i: usize) -> Check {
        let p = self.client(i).proc_id;
        self.log(format!("process {p} Fork (by client {i})"));
        for j in self.live() {
            let c = self.client(j);
            if c.proc_id != p || c.forked {
                continue;
            }
            c.forked = true;
            c.op = None;
            c.h.conn.fork_child();
            c.h.drain();
            c.sent_at_fork = c.mock_calls();
            let link = c.link;
            c.link_closed = true;
            c.outbox.clear();
            c.inbox.clear();
            self.log(format!("client {j} forked"));
            self.model.borrow_mut().link_close(link);
            self.pump()?;
            self.collect(j)?;
            let c = self.clients[j].as_ref().expect("client");
            if c.h.conn.mappings().any(|(_, m)| !m.faulting) {
                return Err(format!("client {j}: fork child keeps a live mapping"));
            }
        }
        Ok(())
    }

    /// A range of `len` bytes the user reserved: a spare one of that
    /// length, else a fresh reservation.
    pub(super) fn reservation(&mut self, i: usize, len: usize) -> (usize, usize) {
        let c = self.client(i);
        match c.spare.iter().position(|r| r.1 == len) {
            Some(k) => c.spare.swap_remove(k),
            None => (c.h.be.reserve(len), len),
        }
    }

    /// Asks to map over live mapping `over >> 1` of the client (ending on
    /// its first byte, or starting on its last): refused (`AddressInUse`)
    /// with nothing performed.
    pub(super) fn refused_overlap(
        &mut self,
        i: usize,
        f: FileId,
        start: u64,
        len: u64,
        over: u8,
    ) -> Check {
        let bs = self.blksize as usize;
        let c = self.clients[i].as_ref().expect("client");
        let placed: Vec<(usize, usize)> = c
            .maps
            .iter()
            .filter_map(|id| c.h.conn.mapping(*id))
            .filter(|m| m.addr != 0)
            .map(|m| (m.addr, m.len_bytes()))
            .collect();
        let Some((addr, mlen)) = pick(&placed, over >> 1) else {
            return Ok(());
        };
        let want = len as usize * bs;
        let a = if over & 1 == 0 {
            (addr + 1).saturating_sub(want)
        } else {
            addr + mlen - 1
        };
        let c = self.client(i);
        // The address space refuses it too (`MAP_FIXED_NOREPLACE`).
        if c.h.be.reserve_at(a, want) != Err(wcfs_mock::EEXIST) {
            return Err(format!(
                "a map over a live mapping is refused: client {i}: reserving {a:#x}+{want:#x} was not"
            ));
        }
        let before = c.mock_calls();
        let r = c.h.conn.mmap_at(f, start, len, a, want);
        c.h.drain();
        let touched = c.mock_calls() != before;
        self.log(format!("client {i} MmapAt over map at {addr:#x}: {r:?}"));
        match r {
            Err(Error::AddressInUse { .. }) if !touched => Ok(()),
            Err(Error::FileClosed | Error::ConnClosed) => Ok(()),
            r => Err(format!(
                "a map over a live mapping is refused: client {i}: mmap_at {a:#x}+{want:#x}: {r:?} (touched: {touched})"
            )),
        }
    }
}
