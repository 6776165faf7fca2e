//! Mappings that serve a user-space virtual-memory manager (a "VM"), the
//! pull contract of the seed's `FileH::mmap(blk, len, VMA*)`.
//!
//! A VM lays private dirty pages over some blocks of a mapping it asked
//! for with [`Conn::mmap_vm`], and it alone knows which: it tells nobody
//! when it dirties a page. So before a pin replaces a block of such a
//! mapping, the core asks the VM, under the VM's own lock:
//!
//! 1. `Action::VmLock { vm }` (blocking: the driver performs it without the
//!    connection's lock, so a VM thread holding its lock can still call
//!    `remap_blk`/`unmap`). Several VMs are locked in ascending [`VmId`]
//!    order; a job that finds it needs a lower id than one it holds lets
//!    all go and starts again, so no two jobs wait for each other.
//! 2. `Action::VmDirty { map, addr, blk }` for each mapping of that VM
//!    over the block: `Outcome::Dirty(true)` leaves the page alone (the pin
//!    is recorded all the same, so a later `remap_blk` maps its revision),
//!    `Dirty(false)` queues the remap.
//! 3. The ack, then `Action::VmUnlock` for each lock held.
//!
//! The decision (which blocks, which mappings, what they show) stays
//! here; the VM only answers. A refused lock or query takes the
//! connection down like any other failed OS call: the pin is nak'ed.
//!
//! Two jobs may hold VM locks: the pin being applied (`Conn::vm_pin`, on
//! the thread reading the link) and the resync re-mapping a changed tail
//! of head (`Conn::vm_op`, on the resyncing user's thread). Each job's
//! locks are released by its own thread: by the step that ends the job,
//! or, when the connection goes down while the job's thread is out
//! performing a blocking action, by that action's completion.

use super::{Conn, Error, OpKind, PinReq};
use crate::action::{Action, Actions, Errno, OsOp, Outcome};
use crate::bugs::{self, Bug};
use crate::ids::{FileId, MapId, OpId, Tok, VmId};
use crate::stats::Event;
use crate::wire::StreamId;

/// Most distinct VMs one block's mappings may serve: a pin over more
/// takes the connection down (`VmLock` failing with `E2BIG`).
pub const MAX_VMS_PER_BLOCK: usize = 8;

/// VM locks one job holds, and where it is.
///
/// Invariants: `held` is sorted ascending and has no duplicates; `queries`
/// counts `VmDirty` actions queued and not completed; `out` is set while a
/// blocking action of the job was polled and not completed (its thread is
/// outside the core, still holding `held`).
#[derive(Debug, Default)]
pub(super) struct VmJob {
    held: heapless::Vec<VmId, MAX_VMS_PER_BLOCK>,
    out: bool,
    pub(super) queries: u32,
    /// The op served (resync), for `vm_op`.
    op: Option<OpId>,
    /// The op's block the VM just answered clean, to map now.
    clean: Option<(MapId, u64)>,
}

/// The VMs of mappings over `blk` of `fid` that a remap would touch,
/// sorted, without duplicates; `Err` past [`MAX_VMS_PER_BLOCK`].
type Needed = heapless::Vec<VmId, MAX_VMS_PER_BLOCK>;

impl Conn {
    /// Maps blocks `[blk_start, blk_start + blk_len)` of an open file over
    /// the caller's range `[addr, addr + len)`, as [`Conn::mmap_at`] does,
    /// as the base layer of the area of VM `vm` that lies there: from then
    /// on pins ask the VM (under its lock) whether it laid a dirty page
    /// over a block before replacing the block, and leave dirty ones alone
    /// (see the module doc). The VM calls [`Conn::remap_blk`] once it
    /// dropped a page and [`Conn::unmap`] when its area goes away;
    /// [`Conn::mark_dirty`] works here too.
    pub fn mmap_vm(
        &mut self,
        file: FileId,
        blk_start: u64,
        blk_len: u64,
        addr: usize,
        len: usize,
        vm: VmId,
    ) -> Result<OpId, Error> {
        self.place_at(file, blk_start, blk_len, addr, len, Some(vm))
    }

    /// The VMs a remap of `blk` in `fid` would touch.
    fn vms_over(&self, fid: FileId, blk: u64) -> Result<Needed, ()> {
        let mut v = Needed::new();
        for (_, mid) in self.files[&fid].maps_covering(blk) {
            let m = &self.maps[mid];
            if let Some(vm) = m.vm {
                if m.contains(blk) && m.remappable(blk) && !v.contains(&vm) {
                    v.push(vm).map_err(|_| ())?;
                }
            }
        }
        v.sort_unstable();
        Ok(v)
    }

    /// Whether the pin's job holds the locks of every VM over `req`'s
    /// block; if not, queues the next lock to take (the pin stalls).
    pub(super) fn pin_vms_ready(&mut self, fid: FileId, req: PinReq) -> bool {
        let needed = match self.vms_over(fid, req.blk) {
            Ok(v) => v,
            Err(()) => {
                self.stalled = Some(req);
                self.go_down(Error::Os {
                    call: OsOp::VmLock,
                    errno: Errno(7),
                });
                return false;
            }
        };
        if acquire(&mut self.vm_pin, &mut self.actions, Tok::Pin, &needed) {
            return true;
        }
        self.stalled = Some(req);
        false
    }

    /// Whether the pin waits for the VM's answers (then it is stalled).
    pub(super) fn pin_asks_vm(&mut self, req: PinReq) -> bool {
        if self.vm_pin.queries > 0 {
            self.stalled = Some(req);
            return true;
        }
        false
    }

    /// The pin is answered: ack (or, not up, a bare answer) and let go of
    /// the VM locks it took.
    pub(super) fn pin_done(&mut self, stream: StreamId) {
        self.answer(stream);
        release(&mut self.vm_pin, &mut self.actions);
    }

    /// `Some(vm)` when the op's todo entry `(mid, blk)` must first be
    /// asked to its VM (resync only: `remap_blk` comes from the VM itself,
    /// a new mapping has no dirty page yet); queues the lock or the query.
    /// `true`: wait for the answer.
    pub(super) fn op_asks_vm(&mut self, op: OpId, mid: MapId, blk: u64) -> bool {
        let m = &self.maps[mid];
        let Some(vm) = m.vm else { return false };
        if !matches!(self.ops[op].kind, OpKind::Resync { .. }) {
            return false;
        }
        if self.vm_op.clean == Some((mid, blk)) {
            return false;
        }
        let addr = m.blk_addr(blk);
        self.vm_op.op = Some(op);
        if !acquire(&mut self.vm_op, &mut self.actions, Tok::Op(op), &[vm]) {
            return true;
        }
        self.actions.push_back(Action::VmDirty {
            tok: Tok::Op(op),
            vm,
            map: mid,
            addr,
            blk,
        });
        self.vm_op.queries += 1;
        true
    }

    /// The op's block was mapped (or dropped): its answer is used up.
    pub(super) fn op_vm_used(&mut self, mid: MapId, blk: u64) {
        if self.vm_op.clean == Some((mid, blk)) {
            self.vm_op.clean = None;
        }
    }

    /// The op ran out of blocks: let go of its VM locks.
    pub(super) fn op_vm_done(&mut self, op: OpId) {
        if self.vm_op.op == Some(op) {
            release(&mut self.vm_op, &mut self.actions);
            self.vm_op.op = None;
        }
    }

    /// Marks the job of a blocking action just polled as out of the core.
    pub(super) fn vm_polled(&mut self, a: &Action) {
        if let Some(job) = self.job_of(a) {
            job.out = true;
        }
    }

    /// A blocking action came back: its job is in again; a lock it took
    /// is held; a job whose pin or op is gone meanwhile lets go of all.
    pub(super) fn vm_returned(&mut self, a: &Action, outcome: Outcome) {
        let alive = match *a {
            Action::VmLock { tok: Tok::Pin, .. } | Action::OpenRev { tok: Tok::Pin, .. } => {
                self.stalled.is_some() && self.reading()
            }
            Action::VmLock {
                tok: Tok::Op(op), ..
            }
            | Action::OpenRev {
                tok: Tok::Op(op), ..
            } => self.is_live(op),
            _ => return,
        };
        let actions = &mut self.actions;
        let Some(job) = job_of(&mut self.vm_pin, &mut self.vm_op, a) else {
            return;
        };
        job.out = false;
        if let (Action::VmLock { vm, .. }, Outcome::Done) = (a, outcome) {
            // Room: `acquire` asks only for what `Needed` holds.
            let _ = job.held.push(*vm);
            job.held.sort_unstable();
        }
        if !alive {
            release(job, actions);
            job.op = None;
        }
    }

    /// `VmLock` completed (after [`Conn::vm_returned`]).
    pub(super) fn on_vm_locked(&mut self, tok: Tok, outcome: Outcome) {
        if let Outcome::Failed(errno) = outcome {
            return self.go_down(Error::Os {
                call: OsOp::VmLock,
                errno,
            });
        }
        match tok {
            Tok::Pin => {
                // Everything may have changed meanwhile: decide again.
                if let Some(req) = self.stalled.take() {
                    self.decide_pin(req, false);
                }
            }
            Tok::Op(op) if self.is_live(op) => self.run_todo(op),
            Tok::Op(_) => {}
        }
    }

    /// `VmDirty` completed: keep the page or remap the block.
    pub(super) fn on_vm_dirty(&mut self, tok: Tok, mid: MapId, blk: u64, outcome: Outcome) {
        let pin = tok == Tok::Pin;
        let job = if pin {
            &mut self.vm_pin
        } else {
            &mut self.vm_op
        };
        job.queries = job.queries.saturating_sub(1);
        let dirty = match outcome {
            Outcome::Dirty(d) => d && !bugs::on(Bug::IgnoreVmDirty),
            Outcome::Failed(errno) => {
                return self.go_down(Error::Os {
                    call: OsOp::VmDirty,
                    errno,
                })
            }
            _ => return,
        };
        if dirty {
            self.count(Event::dirty_kept, 1);
        }
        if let Tok::Op(op) = tok {
            if !self.is_live(op) {
                return self.op_vm_done(op);
            }
            if dirty {
                self.op_mut(op).todo.pop();
            } else {
                self.vm_op.clean = Some((mid, blk));
            }
            return self.run_todo(op);
        }
        let Some(req) = self.stalled else { return };
        if !dirty {
            self.remap_now(mid, blk);
        }
        if self.vm_pin.queries == 0 {
            self.stalled = None;
            self.count_pin(req.rev);
            self.pin_done(req.stream);
        }
    }

    /// Maps `blk` of mapping `mid` per the pins in force, ahead of
    /// everything queued (the pin's ack comes after).
    fn remap_now(&mut self, mid: MapId, blk: u64) {
        let Some(m) = self.maps.get(mid) else { return };
        if !m.contains(blk) || !m.remappable(blk) {
            return;
        }
        let (addr, len) = (m.blk_addr(blk), m.blksize as usize);
        let Some(f) = self.files.get(&m.file) else {
            return;
        };
        match self.revs.block_src(f, blk) {
            Ok(src) => {
                self.actions.push_front(Action::MapFixed { addr, len, src });
                self.count(Event::remaps, 1);
            }
            // The pin's `@rev` file was made present before the query, in
            // this same step: it cannot be gone.
            Err(rev) => self.go_down(Error::PinAfterAt {
                oid: f.oid,
                blk,
                rev,
            }),
        }
    }

    /// The connection goes down: each job not out lets go of its locks
    /// now (its thread is the one going down); one out does when its
    /// blocking action comes back.
    pub(super) fn vm_down(&mut self) {
        for job in [&mut self.vm_pin, &mut self.vm_op] {
            job.queries = 0;
            job.clean = None;
            if !job.out {
                release(job, &mut self.actions);
                job.op = None;
            }
        }
    }

    /// A fork child: the locks are the parent's threads'; forget them.
    pub(super) fn vm_forget(&mut self) {
        self.vm_pin = VmJob::default();
        self.vm_op = VmJob::default();
    }

    /// VM locks held now by the pin job and the op job (for tests and
    /// the simulation's lock checks).
    pub fn vm_locks_held(&self) -> (&[VmId], &[VmId]) {
        (&self.vm_pin.held, &self.vm_op.held)
    }

    fn job_of(&mut self, a: &Action) -> Option<&mut VmJob> {
        job_of(&mut self.vm_pin, &mut self.vm_op, a)
    }
}

fn job_of<'a>(pin: &'a mut VmJob, op: &'a mut VmJob, a: &Action) -> Option<&'a mut VmJob> {
    match *a {
        Action::VmLock { tok: Tok::Pin, .. } | Action::OpenRev { tok: Tok::Pin, .. } => Some(pin),
        Action::VmLock {
            tok: Tok::Op(o), ..
        }
        | Action::OpenRev {
            tok: Tok::Op(o), ..
        } if op.op == Some(o) => Some(op),
        _ => None,
    }
}

/// Whether `job` holds every lock of `needed` (sorted); if not, queues
/// the next to take, first letting all go if it holds a higher one (so
/// locks are always taken in ascending order).
fn acquire(job: &mut VmJob, actions: &mut Actions, tok: Tok, needed: &[VmId]) -> bool {
    let missing = |v: &&VmId| !job.held.contains(v);
    let next = if bugs::on(Bug::LockVmsDescending) {
        needed.iter().rev().find(missing)
    } else {
        needed.iter().find(missing)
    };
    let Some(&next) = next else {
        return true;
    };
    if job.held.last().is_some_and(|&h| h > next) && !bugs::on(Bug::LockVmsDescending) {
        release(job, actions);
    }
    actions.push_back(Action::VmLock { tok, vm: next });
    false
}

/// Queues the release of every lock `job` holds.
fn release(job: &mut VmJob, actions: &mut Actions) {
    for &vm in job.held.iter().rev() {
        actions.push_back(Action::VmUnlock { vm });
    }
    job.held.clear();
    job.queries = 0;
    job.clean = None;
}
