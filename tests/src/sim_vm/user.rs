//! The VM simulation's clients: connecting, the scheduler's step, the
//! user's (the VMs') operations, the checks after every step, and the
//! final settling that finds deadlocks.

use super::*;

impl World {
    pub(super) fn new_client(&mut self, vm_fail: u64) -> Check {
        let (at, link) = {
            let mut m = self.model.borrow_mut();
            (m.head(), m.link_open())
        };
        let cfg = Config {
            page_size: 1,
            rev_cache: 1 + self.rng.below(3) as usize,
            ..Config::default()
        };
        let store = ModelStore::new(self.model.clone());
        let i = self.clients.len();
        self.clients.push(Client {
            conn: Conn::new(at, cfg),
            be: FaultInjector::new(MockBackend::new(store), self.rng.next_u64()),
            link,
            inbox: VecDeque::new(),
            eof: false,
            outbox: VecDeque::new(),
            file: FileId(0),
            vms: Default::default(),
            parked: [None, None],
            user_vm: None,
            resync: None,
            vm_fail,
            failed_callbacks: 0,
        });
        self.log(format!("client {i} connects @{at} on link {link}"));
        let op = self.clients[i].conn.open(OID).map_err(|e| e.to_string())?;
        for _ in 0..100 {
            self.drain(i, Who::User)?;
            if let Some(r) = self.clients[i].conn.poll_op(op) {
                match r {
                    Ok(OpOk::Opened(f)) => self.clients[i].file = f,
                    r => return Err(format!("open: {r:?}")),
                }
                for k in 0..2 {
                    for _ in 0..1 + self.rng.below(2) {
                        self.mmap_area(i, k)?;
                    }
                }
                return Ok(());
            }
            while !self.clients[i].outbox.is_empty() {
                self.deliver_to_server(i)?;
            }
            self.pin_thread(i)?;
        }
        Err("open did not finish".into())
    }

    pub(super) fn step(&mut self) -> Check {
        let i = self.rng.below(self.clients.len() as u64) as usize;
        match self.rng.below(100) {
            0..10 => self.commit(),
            10..20 => self.head_read(),
            20..45 => self.pin_thread(i),
            45..65 => self.deliver_to_server(i),
            _ => self.user(i),
        }
    }

    /// One call of the user's thread (also the VMs' thread).
    fn user(&mut self, i: usize) -> Check {
        if self.resume(i, Who::User)? {
            return self.poll_resync(i);
        }
        if self.clients[i].resync.is_some() {
            return self.poll_resync(i);
        }
        let Some(k) = self.clients[i].user_vm else {
            if self.rng.chance(15) {
                return self.start_resync(i);
            }
            let k = self.rng.below(2) as usize;
            let c = &mut self.clients[i];
            if c.vms[k].holder.is_none() {
                c.vms[k].holder = Some((Who::User, true));
                c.user_vm = Some(k);
                self.log(format!("client {i} VM {k} locks"));
            }
            return Ok(());
        };
        match self.rng.below(100) {
            0..45 => self.dirty(i, k),
            45..65 => self.discard(i, k),
            65..69 => self.unmap_area(i, k),
            69..74 => self.mmap_area(i, k),
            _ => {
                let c = &mut self.clients[i];
                c.vms[k].holder = None;
                c.user_vm = None;
                self.log(format!("client {i} VM {k} unlocks"));
                Ok(())
            }
        }
    }

    fn start_resync(&mut self, i: usize) -> Check {
        let head = self.model.borrow().head();
        let c = &mut self.clients[i];
        if c.conn.state() != ConnState::Up || head == c.conn.at() {
            return Ok(());
        }
        let op = c.conn.resync(head).map_err(|e| e.to_string())?;
        c.resync = Some(op);
        self.log(format!("client {i} resync @{head}"));
        self.poll_resync(i)
    }

    /// The user's thread in `resync`, as the Linux driver runs an op:
    /// drain, poll, again while the step queued more.
    fn poll_resync(&mut self, i: usize) -> Check {
        let Some(op) = self.clients[i].resync else {
            return Ok(());
        };
        loop {
            self.drain(i, Who::User)?;
            if self.clients[i].parked[Who::User as usize].is_some() {
                return Ok(());
            }
            let c = &mut self.clients[i];
            if let Some(r) = c.conn.poll_op(op) {
                c.resync = None;
                if r.is_err() && c.failed_callbacks == 0 {
                    return Err(format!("client {i} resync: {r:?}"));
                }
                self.log(format!("client {i} resync -> {r:?}"));
                return self.drain(i, Who::User);
            }
            if !c.conn.has_actions() {
                return Ok(());
            }
        }
    }

    /// The VM's write fault: a private page over a block, telling nobody.
    fn dirty(&mut self, i: usize, k: usize) -> Check {
        let bs = self.bs;
        let c = &mut self.clients[i];
        let Some(&a) = pick(&mut self.rng, &c.vms[k].areas) else {
            return Ok(());
        };
        let blk = a.blk_start + self.rng.below(a.blk_len);
        if c.vms[k].dirty.contains_key(&(a.map, blk)) {
            return Ok(());
        }
        let tag = 0x80 | self.rng.below(0x7f) as u8;
        let addr = a.addr + ((blk - a.blk_start) * bs) as usize;
        c.be.lay_private(addr, bs as usize, tag)
            .map_err(|e| format!("lay_private: {e:?}"))?;
        c.vms[k].dirty.insert((a.map, blk), tag);
        self.log(format!("client {i} VM {k} dirties {:?} #{blk}", a.map));
        Ok(())
    }

    /// The VM drops a dirty page: its table, then `remap_blk`.
    fn discard(&mut self, i: usize, k: usize) -> Check {
        let c = &mut self.clients[i];
        let keys: Vec<(MapId, u64)> = c.vms[k].dirty.keys().copied().collect();
        let Some(&(map, blk)) = pick(&mut self.rng, &keys) else {
            return Ok(());
        };
        c.vms[k].dirty.remove(&(map, blk));
        self.report.discards += 1;
        let op = match c.conn.remap_blk(map, blk) {
            Ok(op) => op,
            Err(e) => return Err(format!("remap_blk: {e}")),
        };
        self.log(format!("client {i} VM {k} discards {map:?} #{blk}"));
        self.finish_quick_op(i, op, "remap_blk")
    }

    fn unmap_area(&mut self, i: usize, k: usize) -> Check {
        let c = &mut self.clients[i];
        if c.vms[k].areas.is_empty() {
            return Ok(());
        }
        let j = self.rng.below(c.vms[k].areas.len() as u64) as usize;
        let a = c.vms[k].areas.remove(j);
        c.vms[k].dirty.retain(|&(m, _), _| m != a.map);
        c.conn.unmap(a.map).map_err(|e| format!("unmap: {e}"))?;
        self.log(format!("client {i} VM {k} unmaps {:?}", a.map));
        self.drain(i, Who::User)
    }

    pub(super) fn mmap_area(&mut self, i: usize, k: usize) -> Check {
        let blk_start = self.rng.below(NBLK);
        let blk_len = 1 + self.rng.below(NBLK + 2 - blk_start);
        let len = (blk_len * self.bs) as usize;
        let c = &mut self.clients[i];
        if c.conn.state() != ConnState::Up {
            return Ok(());
        }
        let addr = c.be.reserve(len);
        let op = c
            .conn
            .mmap_vm(c.file, blk_start, blk_len, addr, len, VmId(k as u64 + 1))
            .map_err(|e| format!("mmap_vm: {e}"))?;
        self.drain(i, Who::User)?;
        match self.clients[i].conn.poll_op(op) {
            Some(Ok(OpOk::Mapped(map))) => {
                self.clients[i].vms[k].areas.push(Area {
                    map,
                    addr,
                    blk_start,
                    blk_len,
                });
                self.log(format!(
                    "client {i} VM {k} maps {map:?} #{blk_start}+{blk_len}"
                ));
                Ok(())
            }
            r if self.clients[i].conn.state() != ConnState::Up => {
                self.log(format!("client {i} mmap_vm: {r:?}"));
                Ok(())
            }
            r => Err(format!("mmap_vm: {r:?}")),
        }
    }

    /// An op that needs no server (`remap_blk`): done after one drain.
    fn finish_quick_op(&mut self, i: usize, op: OpId, what: &str) -> Check {
        self.drain(i, Who::User)?;
        let c = &mut self.clients[i];
        match c.conn.poll_op(op) {
            Some(Ok(_)) => Ok(()),
            Some(Err(_)) if c.conn.state() != ConnState::Up => Ok(()),
            r => Err(format!("{what}: {r:?}")),
        }
    }

    // ---- the checks ----

    pub(super) fn check_all(&mut self) -> Check {
        for i in 0..self.clients.len() {
            self.check_locks(i)?;
            self.check_pages(i)?;
        }
        Ok(())
    }

    /// Locks the core took are held only by parked threads, as the core
    /// says, and no two threads wait for each other.
    fn check_locks(&self, i: usize) -> Check {
        let c = &self.clients[i];
        let (pin, op) = c.conn.vm_locks_held();
        for (who, core_held) in [(Who::Pin, pin), (Who::User, op)] {
            let held: Vec<VmId> = (0..2)
                .filter(|&k| c.vms[k].holder == Some((who, false)))
                .map(|k| VmId(k as u64 + 1))
                .collect();
            if held != core_held {
                return Err(format!(
                    "client {i}: {who:?} holds {held:?}, core says {core_held:?}"
                ));
            }
            if !held.is_empty() && c.parked[who as usize].is_none() {
                return Err(format!("client {i}: {who:?} keeps {held:?} after its step"));
            }
        }
        // Who each thread waits for: the holder of the VM it is parked on;
        // the user in a resync waits, through the server, for the pin
        // thread's acks.
        let waits = |who: Who| -> Option<Who> {
            match &c.parked[who as usize] {
                Some(Action::VmLock { vm, .. }) => c.vms[vm.0 as usize - 1].holder.map(|h| h.0),
                _ if who == Who::User && c.resync.is_some() => {
                    self.model.borrow().awaits_ack(c.link).then_some(Who::Pin)
                }
                _ => None,
            }
        };
        if waits(Who::Pin) == Some(Who::User) && waits(Who::User) == Some(Who::Pin) {
            return Err(format!(
                "client {i}: deadlock: the pin thread and the user wait for each other"
            ));
        }
        if c.conn.state() == ConnState::Down && c.failed_callbacks == 0 {
            return Err(format!("client {i} down: {:?}", c.conn.down_reason()));
        }
        Ok(())
    }

    /// Dirty pages stay; clean blocks show the file as of `at`.
    fn check_pages(&mut self, i: usize) -> Check {
        let bs = self.bs;
        let c = &self.clients[i];
        let up = c.conn.state() == ConnState::Up;
        let at = c.conn.at();
        let mut blocks = Vec::new();
        for vm in &c.vms {
            for a in &vm.areas {
                let faulting = c.conn.mapping(a.map).is_none_or(|m| m.faulting);
                if !up && !faulting {
                    return Err(format!("client {i} down, {:?} does not fault", a.map));
                }
                for blk in a.blk_start..a.blk_start + a.blk_len {
                    let addr = a.addr + ((blk - a.blk_start) * bs) as usize;
                    blocks.push((
                        a.map,
                        blk,
                        c.be.at(addr),
                        vm.dirty.get(&(a.map, blk)).copied(),
                    ));
                }
            }
        }
        if !up {
            return Ok(());
        }
        let resyncing = c.resync.is_some();
        for (map, blk, mem, dirty) in blocks {
            let want = self.model.borrow().data(OID, at, blk);
            let got = match (dirty, mem) {
                (Some(tag), Some(Mem::Private(t))) if t == tag => continue,
                (Some(tag), m) => {
                    return Err(format!(
                        "client {i}: dirty page {tag:#x} of {map:?} #{blk} replaced by {m:?}"
                    ))
                }
                _ if resyncing => continue,
                (
                    None,
                    Some(Mem::File {
                        path: Path::Head(oid),
                        offset,
                    }),
                ) => {
                    match self.model.borrow_mut().read_head(oid, offset / bs) {
                        HeadRead::Ready(d) => d,
                        HeadRead::Wait(_) => continue, // pins go out first
                    }
                }
                (
                    None,
                    Some(Mem::File {
                        path: Path::Rev(oid, rev),
                        offset,
                    }),
                ) => self.model.borrow().data(oid, rev, offset / bs),
                (None, Some(Mem::Zeros)) => vec![0; bs as usize],
                (None, m) => return Err(format!("client {i}: clean {map:?} #{blk} shows {m:?}")),
            };
            if got != want {
                return Err(format!(
                    "client {i}: clean {map:?} #{blk} shows {got:?}, not the data as of @{at} {want:?}"
                ));
            }
        }
        self.pump()
    }

    /// No more VM work: every thread must get its lock, every op end and
    /// every pin be answered.
    pub(super) fn settle(&mut self) -> Check {
        for c in &mut self.clients {
            if let Some(k) = c.user_vm.take() {
                c.vms[k].holder = None;
            }
        }
        for _ in 0..5000 {
            let mut busy = false;
            for i in 0..self.clients.len() {
                busy |= self.clients[i].parked.iter().any(Option::is_some)
                    || self.clients[i].resync.is_some()
                    || !self.clients[i].inbox.is_empty()
                    || !self.clients[i].outbox.is_empty();
                self.pin_thread(i)?;
                self.deliver_to_server(i)?;
                self.user(i)?;
                if let Some(k) = self.clients[i].user_vm.take() {
                    self.clients[i].vms[k].holder = None;
                }
                self.check_locks(i)?;
            }
            let waiting = self.model.borrow().links_awaiting_ack();
            if !busy && waiting.is_empty() {
                return self.check_all();
            }
        }
        let stuck: Vec<String> = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| format!("client {i}: parked {:?}, resync {:?}", c.parked, c.resync))
            .collect();
        Err(format!("no progress (deadlock?): {stuck:?}"))
    }
}

fn pick<'a, T>(rng: &mut Rng, v: &'a [T]) -> Option<&'a T> {
    if v.is_empty() {
        return None;
    }
    v.get(rng.below(v.len() as u64) as usize)
}
