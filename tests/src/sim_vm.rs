//! The deterministic simulation of mappings that serve a virtual-memory
//! manager (`Conn::mmap_vm`): clients against the server model, each with
//! two VMs of its own, two threads per client (the pin thread and the
//! user's, which is also the VMs' thread) and the locks between them.
//!
//! A VM has its own lock and its own table of dirty blocks. Under its lock
//! the user's thread dirties blocks at random (a private page laid over the
//! block, *without* telling the client), discards them (table, then
//! `remap_blk`), removes an area (`unmap`) or adds one (`mmap_vm`); without
//! it, it resyncs. The scheduler interleaves those with commits, head
//! reads by other processes (which make the server pin), deliveries both
//! ways, and the pin thread, which parks on a `VmLock` while the VM's lock
//! is held by someone else (the connection unlocked meanwhile, as on Linux).
//!
//! Checked after every step:
//! * a dirty page is never replaced (while the connection is up);
//! * a clean block shows the file as of the connection's `at` (read as a
//!   process would: a head page goes through the server's read, which
//!   waits for pins when the block changed), also right after a discard;
//! * locks: `VmDirty` only by the thread holding that VM's lock, locks
//!   taken in ascending order and never twice, a thread between steps holds
//!   a lock of the core only while parked on a blocking action (so no pin
//!   keeps a VM locked), no wait cycle between threads (a thread parked on
//!   a lock whose holder waits, through the server, for it);
//! * at the end the run settles: every parked thread gets its lock, every
//!   op ends, every pin is answered (else: a deadlock).
//!
//! A failing VM callback (drawn per run) must take the connection down
//! cleanly: the pin nak'ed, every mapping faulting, no lock left held.
//! Replay: `SIM_VM_SEED=<n> cargo test --release -p wcfs-testkit --test sim_vm replay -- --nocapture`.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use wcfs_core::wire::Oid;
use wcfs_core::{
    perform, Action, Config, Conn, ConnState, Errno, FileId, MapId, OpId, OpOk, Outcome, VmId,
};
use wcfs_mock::{FaultInjector, Mem, MockBackend, Path};

use crate::model::{HeadRead, LinkId, Model, ModelConfig, Output};
use crate::sim::{ModelStore, Rng};

/// The two threads of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Pin = 0,
    User = 1,
}

/// An area of a VM: a mapping serving it.
#[derive(Clone, Copy, Debug)]
struct Area {
    map: MapId,
    addr: usize,
    blk_start: u64,
    blk_len: u64,
}

#[derive(Default)]
struct VmModel {
    /// Who holds the lock, and whether as the VM itself (the user's own
    /// critical section) or for the core (a `VmLock` action).
    holder: Option<(Who, bool)>,
    areas: Vec<Area>,
    /// `(map, blk) -> tag` of the private pages laid.
    dirty: BTreeMap<(MapId, u64), u8>,
}

struct Client {
    conn: Conn,
    be: FaultInjector<MockBackend<ModelStore>>,
    link: LinkId,
    inbox: VecDeque<u8>,
    eof: bool,
    outbox: VecDeque<String>,
    file: FileId,
    vms: [VmModel; 2],
    /// A `VmLock` each thread is parked on.
    parked: [Option<Action>; 2],
    /// The VM whose lock the user holds as the VM.
    user_vm: Option<usize>,
    resync: Option<OpId>,
    /// Chance (%) that `is_dirty` fails.
    vm_fail: u64,
    failed_callbacks: usize,
}

type Check = Result<(), String>;

/// What a failing run says: seed, step, property, the last events.
#[derive(Debug)]
pub struct VmFailure {
    /// The run's seed.
    pub seed: u64,
    /// The step that failed.
    pub step: usize,
    /// The broken property.
    pub what: String,
    /// The last events.
    pub tail: Vec<String>,
}

impl std::fmt::Display for VmFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "vm simulation failed at step {}: {}",
            self.step, self.what
        )?;
        for e in &self.tail {
            writeln!(f, "  {e}")?;
        }
        write!(
            f,
            "replay: SIM_VM_SEED={} cargo test --release -p wcfs-testkit --test sim_vm replay -- --nocapture",
            self.seed
        )
    }
}

/// What a passing run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct VmReport {
    /// Pins the clients answered.
    pub pins: u64,
    /// Pins that left a dirty page.
    pub dirty_kept: u64,
    /// Times a thread parked on a VM lock.
    pub parks: u64,
    /// Discards (`remap_blk` from the VM).
    pub discards: u64,
    /// Connections taken down by a failing VM callback.
    pub downs: u64,
}

struct World {
    rng: Rng,
    model: Rc<RefCell<Model>>,
    clients: Vec<Client>,
    bs: u64,
    events: VecDeque<String>,
    report: VmReport,
}

const OID: Oid = Oid(1);
const NBLK: u64 = 8;

impl World {
    fn log(&mut self, e: String) {
        if self.events.len() == 40 {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Moves the server's output to the clients.
    fn pump(&mut self) -> Check {
        loop {
            let out = self.model.borrow_mut().poll_output();
            let Some(out) = out else { break };
            match out {
                Output::Send { link, line } => {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.link == link) {
                        c.inbox.extend(line.as_bytes());
                        c.inbox.push_back(b'\n');
                    }
                }
                Output::Close { link } => {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.link == link) {
                        c.eof = true;
                    }
                }
                Output::ReadReady { read } => {
                    let _ = self.model.borrow_mut().take_read(read);
                }
                Output::Invalidate { .. } => {}
                Output::ClientFailed { link, reason } => {
                    let c = self.clients.iter().find(|c| c.link == link);
                    if c.is_some_and(|c| c.failed_callbacks == 0) {
                        return Err(format!("server: client on link {link} failed: {reason}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Client `i`'s thread `who` drains the core: quick actions "under the
    /// connection's lock", blocking ones without it; a `VmLock` whose VM is
    /// held by another parks the thread.
    fn drain(&mut self, i: usize, who: Who) -> Check {
        loop {
            let c = &mut self.clients[i];
            let Some(a) = c.conn.poll_action() else { break };
            if !self.act(i, who, a)? {
                return Ok(());
            }
        }
        let c = &mut self.clients[i];
        c.outbox.extend(c.be.take_sent());
        c.conn.check_invariants().map_err(|e| e.to_string())
    }

    /// Performs `a` for `who`; false when the thread parked on it.
    fn act(&mut self, i: usize, who: Who, a: Action) -> Result<bool, String> {
        let fail = self.rng.below(100) < self.clients[i].vm_fail;
        let c = &mut self.clients[i];
        let outcome = match a {
            Action::VmLock { vm, .. } => {
                let k = vm_index(vm)?;
                if !a.is_blocking() {
                    return Err("VmLock is not blocking: taken under the connection's lock".into());
                }
                for (j, v) in c.vms.iter().enumerate() {
                    if v.holder.is_some_and(|(w, _)| w == who) && j >= k {
                        return Err(format!("{who:?} locks VM {k} holding VM {j}"));
                    }
                }
                if c.vms[k].holder.is_some() {
                    c.parked[who as usize] = Some(a);
                    self.report.parks += 1;
                    self.log(format!("client {i} {who:?} parks on VM {k}"));
                    return Ok(false);
                }
                c.vms[k].holder = Some((who, false));
                Outcome::Done
            }
            Action::VmDirty {
                vm, map, addr, blk, ..
            } => {
                let k = vm_index(vm)?;
                if c.vms[k].holder.map(|h| h.0) != Some(who) {
                    return Err(format!("{who:?} asks VM {k} without its lock"));
                }
                let area = c.vms[k].areas.iter().find(|a| a.map == map);
                if area.is_none_or(|a| a.addr + ((blk - a.blk_start) * self.bs) as usize != addr) {
                    return Err(format!("VM {k} asked about {map:?} #{blk} at {addr:#x}"));
                }
                if fail {
                    c.failed_callbacks += 1;
                    Outcome::Failed(Errno(5))
                } else {
                    Outcome::Dirty(c.vms[k].dirty.contains_key(&(map, blk)))
                }
            }
            Action::VmUnlock { vm } => {
                let k = vm_index(vm)?;
                if c.vms[k].holder != Some((who, false)) {
                    return Err(format!(
                        "{who:?} unlocks VM {k} held by {:?}",
                        c.vms[k].holder
                    ));
                }
                c.vms[k].holder = None;
                Outcome::Done
            }
            ref a => perform(&mut c.be, a),
        };
        c.conn.complete(&a, outcome);
        Ok(true)
    }

    /// Resumes a parked thread when its VM is free; true if it was parked.
    fn resume(&mut self, i: usize, who: Who) -> Result<bool, String> {
        let c = &mut self.clients[i];
        let Some(a) = c.parked[who as usize].clone() else {
            return Ok(false);
        };
        let Action::VmLock { vm, .. } = a else {
            unreachable!()
        };
        let k = vm_index(vm)?;
        if c.vms[k].holder.is_some() {
            return Ok(true);
        }
        c.parked[who as usize] = None;
        c.vms[k].holder = Some((who, false));
        c.conn.complete(&a, Outcome::Done);
        self.log(format!("client {i} {who:?} takes VM {k}"));
        self.drain(i, who)?;
        Ok(true)
    }

    /// The pin thread: resumes, or handles some of its input.
    fn pin_thread(&mut self, i: usize) -> Check {
        if self.resume(i, Who::Pin)? {
            return Ok(());
        }
        let c = &mut self.clients[i];
        if c.inbox.is_empty() {
            if c.eof && matches!(c.conn.state(), ConnState::Up | ConnState::Closing) {
                c.eof = false;
                c.conn.handle_eof();
                return self.drain(i, Who::Pin);
            }
            return Ok(());
        }
        let n = 1 + self.rng.below(c.inbox.len() as u64) as usize;
        let bytes: Vec<u8> = c.inbox.iter().take(n).copied().collect();
        let used = c.conn.handle_bytes(&bytes);
        c.inbox.drain(..used);
        let text = String::from_utf8_lossy(&bytes[..used]).replace('\n', "⏎");
        self.log(format!("client {i} <- {text}"));
        self.drain(i, Who::Pin)
    }

    fn deliver_to_server(&mut self, i: usize) -> Check {
        let c = &mut self.clients[i];
        let Some(line) = c.outbox.pop_front() else {
            return Ok(());
        };
        let link = c.link;
        self.report.pins += u64::from(line.contains(" ack"));
        self.log(format!("server <- client {i}: {line}"));
        self.model.borrow_mut().link_recv(link, line.as_bytes());
        self.pump()
    }

    fn commit(&mut self) -> Check {
        if !self.model.borrow().can_commit() {
            return Ok(());
        }
        let blk = self.rng.below(NBLK + 1);
        let tag = self.rng.below(1000);
        let data = format!("#{blk}:{tag}").into_bytes();
        let at = self
            .model
            .borrow_mut()
            .commit(&[(OID, blk, data)])
            .map_err(|e| format!("commit: {e:?}"))?;
        self.log(format!("commit @{at}: #{blk}"));
        self.pump()
    }

    fn head_read(&mut self) -> Check {
        let blk = self.rng.below(NBLK);
        let _ = self.model.borrow_mut().read_head(OID, blk);
        self.pump()
    }
}

fn vm_index(vm: VmId) -> Result<usize, String> {
    match vm.0 {
        1 | 2 => Ok(vm.0 as usize - 1),
        n => Err(format!("unknown VM {n}")),
    }
}

mod user;

/// Runs seed `seed` for `steps` steps.
pub fn run(seed: u64, steps: usize) -> Result<VmReport, VmFailure> {
    let mut rng = Rng::new(seed ^ 0x5eed_0f0f);
    let bs = [16u64, 32][rng.below(2) as usize];
    let model = Model::new(ModelConfig::new("sim-vm://", bs));
    let mut w = World {
        rng,
        model: Rc::new(RefCell::new(model)),
        clients: Vec::new(),
        bs,
        events: VecDeque::new(),
        report: VmReport::default(),
    };
    let fail = |w: &World, step: usize, what: String| VmFailure {
        seed,
        step,
        what,
        tail: w.events.iter().cloned().collect(),
    };
    let first: Vec<_> = (0..NBLK - 2).map(|b| (OID, b, vec![b as u8 + 1])).collect();
    if let Err(e) = w.model.borrow_mut().commit(&first) {
        return Err(fail(&w, 0, format!("first commit: {e:?}")));
    }
    let vm_fail = if w.rng.chance(30) {
        1 + w.rng.below(3)
    } else {
        0
    };
    for _ in 0..2 {
        if let Err(e) = w.new_client(vm_fail) {
            return Err(fail(&w, 0, e));
        }
    }
    for s in 0..steps {
        if let Err(e) = w.step().and_then(|()| w.check_all()) {
            return Err(fail(&w, s, e));
        }
    }
    if let Err(e) = w.settle() {
        return Err(fail(&w, steps, e));
    }
    for c in &w.clients {
        w.report.dirty_kept += c.conn.stats().dirty_kept;
        w.report.downs += u64::from(c.conn.state() == ConnState::Down);
    }
    Ok(w.report)
}
