//! The scheduler: one step of the safety phase, retiring ended clients, and
//! settling in the liveness phase; then a whole run by its seed.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use wcfs_core::wire::Oid;
use wcfs_core::{ConnState, OsOp};

use super::{
    Check, Failure, OpKind, Report, Rng, SimConfig, Step, Swarm, World, FNV, LAST, TRACE_ALL,
};
use crate::model::{Model, ModelConfig, PinRevChoice};

impl World {
    // ---- the scheduler ----

    /// One step of the safety phase, drawn with the run's weights.
    pub(super) fn step(&mut self) -> Check {
        let live = self.live();
        let step = self.rng.weighted(&self.swarm.steps).expect("steps weigh");
        let client = self.rng.pick(&live);
        let r = match (step, client) {
            (Step::Commit, _) => self.commit(),
            (Step::Connect, _) if live.len() < 8 => {
                let p = self.rng.below(self.procs as u64) as usize;
                self.new_client(p)
            }
            (Step::ToClient, Some(i)) => self.deliver_to_client(i),
            (Step::ToServer, Some(i)) => self.deliver_to_server(i),
            (Step::PollOp, Some(i)) => self.poll_op(i),
            (Step::User, Some(i)) => self.user(i),
            (Step::Inject, Some(i)) => self.inject(i),
            _ => Ok(()),
        };
        // Named in the trace even when the step failed.
        self.log_os_faults();
        r?;
        self.retire()?;
        self.check_all()
    }

    /// Logs, by name, the OS calls the clients' mocks failed since the
    /// last step.
    pub(super) fn log_os_faults(&mut self) {
        for i in self.live() {
            let c = self.client(i);
            let new: Vec<OsOp> = c.h.be.injected_ops()[c.os_logged..].to_vec();
            c.os_logged += new.len();
            for op in new {
                self.report.os_faults_injected += 1;
                self.log(format!("client {i} OS fault: {op:?} fails"));
            }
        }
    }

    /// Drops clients whose life is over, after checking how it ended.
    pub(super) fn retire(&mut self) -> Check {
        for i in self.live() {
            self.down_only_after_a_fault(i)
                .map_err(|e| format!("only a fault brings a connection down: {e}"))?;
            let c = self.clients[i].as_ref().expect("client");
            let st = c.state();
            let over = matches!(st, ConnState::Down | ConnState::Closed | ConnState::Forked)
                && c.op.is_none()
                && c.link_closed;
            if over {
                if c.forked && c.sent_since(c.sent_at_fork) {
                    return Err(format!(
                        "a fork child sends nothing: {} sent a line",
                        c.name
                    ));
                }
                // Faulting mappings still unmap.
                let c = self.client(i);
                for m in std::mem::take(&mut c.maps) {
                    c.h.conn
                        .unmap(m)
                        .map_err(|e| format!("unmap after end: {e}"))?;
                }
                c.h.drain();
                if !c.h.be.open_fds().is_empty() {
                    return Err(format!(
                        "an ended client holds no descriptor: {} leaked {:?}",
                        c.name,
                        c.h.be.open_fds()
                    ));
                }
                self.report.shrinks_followed += c.h.be.store.shrunk;
                self.log(format!("client {i} retired ({st:?})"));
                self.reads.retain(|_, r| r.client != i);
                self.clients[i] = None;
            }
        }
        Ok(())
    }

    /// A connection goes down only after a fault was injected into it.
    pub(super) fn down_only_after_a_fault(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        if c.state() == ConnState::Down && !c.faulted() {
            return Err(format!(
                "{} went down: {:?}",
                c.name,
                c.h.conn.down_reason()
            ));
        }
        Ok(())
    }

    /// Liveness: no more faults or commits; deliver everything until every
    /// client is quiet.
    pub(super) fn settle(&mut self) -> Check {
        for round in 0..20_000 {
            let mut busy = false;
            for i in self.live() {
                let c = self.clients[i].as_ref().expect("client");
                if !c.inbox.is_empty()
                    || c.inbox_eof && matches!(c.state(), ConnState::Up | ConnState::Closing)
                {
                    self.deliver_to_client(i)?;
                    busy = true;
                }
                if self.clients[i]
                    .as_ref()
                    .is_some_and(|c| !c.outbox.is_empty() && !c.link_closed)
                {
                    self.deliver_to_server(i)?;
                    busy = true;
                }
                if self.clients[i].as_ref().is_some_and(|c| c.op.is_some()) {
                    self.poll_op(i)?;
                    busy = true;
                }
            }
            if round == 1_000 {
                // A `bye` whose send failed never reaches the server, which
                // then never ends the link: the driver gives up on it after
                // its close timeout, as here.
                for i in self.live() {
                    let c = self.client(i);
                    if c.state() == ConnState::Closing && c.h.be.injected() > 0 {
                        c.h.conn.abandon_link(wcfs_mock::EPIPE);
                        c.h.drain();
                        self.log(format!("client {i} close times out"));
                        self.collect(i)?;
                    }
                }
            }
            self.retire()?;
            self.check_all()?;
            if !busy {
                if !self.reads.is_empty() {
                    return Err(format!(
                        "reads still waiting at quiescence: {:?}",
                        self.reads.keys().collect::<Vec<_>>()
                    ));
                }
                return Ok(());
            }
            let _ = round;
        }
        Err("livelock: no quiescence after 20000 rounds".into())
    }
}

/// Runs one seed: safety phase (faults as the seed decides), then liveness
/// (healed) and a final close of every connection.
pub fn run(cfg: &SimConfig) -> Result<Report, Failure> {
    let mut rng = Rng::new(cfg.seed);
    let blksize = [16, 32, 64][rng.below(3) as usize];
    let swarm = Swarm::draw(&mut rng, cfg.faults);
    let pin_rev = match rng.below(3) {
        0 => PinRevChoice::Exact,
        1 => PinRevChoice::Oldest,
        _ => PinRevChoice::Seeded(rng.next_u64()),
    };
    let model = Model::new(ModelConfig {
        blksize,
        history: u64::MAX / 4,
        pin_rev,
        zurl: "sim://".into(),
        pintimeout_secs: 30.0,
    });
    let mut w = World {
        rng,
        model: Rc::new(RefCell::new(model)),
        clients: Vec::new(),
        procs: 3,
        cache: BTreeMap::new(),
        reads: BTreeMap::new(),
        oids: vec![Oid(1), Oid(2), Oid(3)],
        blksize,
        swarm,
        events: VecDeque::new(),
        hash: FNV,
        step: 0,
        report: Report::default(),
        seed: cfg.seed,
    };
    let setup = format!(
        "seed {} blksize {blksize} pin_rev {pin_rev:?}; {}",
        cfg.seed, w.swarm
    );
    w.log(setup.clone());
    let fail = |w: &mut World, what: String| Failure {
        seed: w.seed,
        step: w.step,
        cfg: cfg.clone(),
        what,
        setup: setup.clone(),
        tail: w.events.iter().cloned().collect(),
    };
    // A first commit so that files exist.
    let first: Vec<(Oid, u64, Vec<u8>)> =
        w.oids.iter().map(|&o| (o, 0, b"init".to_vec())).collect();
    let r = w.model.borrow_mut().commit(&first);
    if let Err(e) = r {
        return Err(fail(&mut w, format!("first commit: {e:?}")));
    }
    if let Err(e) = w.pump() {
        return Err(fail(&mut w, e));
    }
    for p in 0..w.procs {
        if let Err(e) = w.new_client(p) {
            return Err(fail(&mut w, e));
        }
    }
    for s in 0..cfg.steps {
        w.step = s;
        if let Err(e) = w.step() {
            return Err(fail(&mut w, e));
        }
    }
    w.step = cfg.steps;
    // Liveness: the OS stops failing, so every client must finish.
    for c in w.clients.iter_mut().flatten() {
        for op in OsOp::ALL {
            c.h.be.set_fail_chance(op, 0, wcfs_mock::EIO);
        }
    }
    if let Err(e) = w.settle() {
        return Err(fail(&mut w, e));
    }
    // Close everything; every mapping must fault afterwards.
    for i in w.live() {
        let c = w.client(i);
        if c.up() && c.op.is_none() {
            if let Ok(op) = c.h.conn.close() {
                c.op = Some((op, OpKind::Close));
            }
        }
    }
    if let Err(e) = w.settle() {
        return Err(fail(&mut w, e));
    }
    w.report.steps = cfg.steps;
    w.report.trace_hash = w.hash;
    for c in w.clients.iter().flatten() {
        w.report.shrinks_followed += c.h.be.store.shrunk;
    }
    LAST.with(|l| *l.borrow_mut() = w.events.iter().cloned().collect());
    Ok(w.report)
}

/// The last events of a run (for looking at what a seed does).
pub fn last_events(cfg: &SimConfig) -> Vec<String> {
    TRACE_ALL.with(|t| t.set(true));
    let r = run(cfg);
    TRACE_ALL.with(|t| t.set(false));
    match r {
        Ok(_) => LAST.with(|l| l.take()),
        Err(f) => f.tail,
    }
}

/// Formats a report line.
pub fn summary(reports: &[Report], secs: f64) -> String {
    let steps: usize = reports.iter().map(|r| r.steps).sum();
    let mut s = String::new();
    let _ = write!(
        s,
        "{} seeds, {steps} steps in {secs:.2}s: {:.0} seeds/s, {:.0} steps/s; {} reads checked, {} pins, {} commits ({} shrinking a file, followed by {} client opens/resyncs), {} server-limit SIGBUS reads, {} server-limit zero reads, {} faults injected, {} OS faults injected, {} exposed reads, {} fixed maps",
        reports.len(),
        reports.len() as f64 / secs,
        steps as f64 / secs,
        reports.iter().map(|r| r.reads_checked).sum::<usize>(),
        reports.iter().map(|r| r.pins).sum::<usize>(),
        reports.iter().map(|r| r.commits).sum::<usize>(),
        reports.iter().map(|r| r.shrinks).sum::<usize>(),
        reports.iter().map(|r| r.shrinks_followed).sum::<usize>(),
        reports.iter().map(|r| r.server_limit_faults).sum::<usize>(),
        reports.iter().map(|r| r.regrowth_zeros).sum::<usize>(),
        reports.iter().map(|r| r.faults_injected).sum::<usize>(),
        reports.iter().map(|r| r.os_faults_injected).sum::<usize>(),
        reports.iter().map(|r| r.exposed_reads).sum::<usize>(),
        reports.iter().map(|r| r.fixed_maps).sum::<usize>(),
    );
    s
}
