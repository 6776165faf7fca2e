//! The world's plumbing: clients, the link between them and the server, ops
//! polled to their end, and the server side (new clients, commits, lines
//! delivered).

use std::collections::{BTreeMap, VecDeque};

use wcfs_core::{Config, ConnState, Error, OpOk, OsOp};
use wcfs_mock::Harness;

use super::{Check, Client, ModelStore, OpKind, World, MAX_BLKS, TAIL, TRACE_ALL};
use crate::model::{Change, LinkId, Output};

impl World {
    pub(super) fn log(&mut self, e: String) {
        for b in e.as_bytes().iter().chain(b"\n") {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        if self.events.len() == TAIL && !TRACE_ALL.with(|t| t.get()) {
            self.events.pop_front();
        }
        self.events.push_back(format!("#{} {e}", self.step));
    }

    pub(super) fn client(&mut self, i: usize) -> &mut Client {
        self.clients[i].as_mut().expect("live client")
    }

    pub(super) fn live(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| self.clients[i].is_some())
            .collect()
    }

    pub(super) fn link_owner(&self, link: LinkId) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.link == link && !c.forked))
    }

    /// Routes every model output.
    pub(super) fn pump(&mut self) -> Check {
        loop {
            let out = self.model.borrow_mut().poll_output();
            let Some(out) = out else { return Ok(()) };
            match out {
                Output::Send { link, line } => {
                    if line.contains(" pin ") {
                        self.report.pins += 1;
                    }
                    if let Some(i) = self.link_owner(link) {
                        let c = self.client(i);
                        c.inbox.extend(line.as_bytes());
                        c.inbox.push_back(b'\n');
                    }
                }
                Output::Close { link } => {
                    if let Some(i) = self.link_owner(link) {
                        self.client(i).inbox_eof = true;
                    }
                }
                Output::ReadReady { read } => {
                    let data = self.model.borrow_mut().take_read(read);
                    if let (Some(r), Some(data)) = (self.reads.remove(&read), data) {
                        let oid = self.clients[r.client].as_ref().and_then(|c| {
                            let m = c.h.conn.mapping(r.map)?;
                            c.h.conn.file_oid(m.file)
                        });
                        if let Some(oid) = oid {
                            self.cache.insert((oid, r.blk), data);
                        }
                        self.log(format!("read {read} ready"));
                        // The faulting access retries and sees whatever is mapped now.
                        self.read(r.client, r.map, r.blk)?;
                    }
                }
                Output::Invalidate { oid, blk } => {
                    self.cache.remove(&(oid, blk));
                }
                Output::ClientFailed { link, reason } => {
                    let who = self.link_owner(link);
                    let faulted = who.is_none_or(|i| {
                        self.clients[i]
                            .as_ref()
                            .is_some_and(|c| c.faulted() || !c.up())
                    });
                    if !faulted {
                        return Err(format!(
                            "server reports client failure on link {link}: {reason}"
                        ));
                    }
                }
            }
        }
    }

    /// Moves what the client sent to its outbox, and closes its link at the
    /// server when the client closed it.
    pub(super) fn collect(&mut self, i: usize) -> Check {
        let c = self.client(i);
        let sent = c.h.sent();
        if c.forked && !sent.is_empty() {
            return Err(format!("{}: fork child sent {sent:?}", c.name));
        }
        c.outbox.extend(sent);
        if !c.h.be.link_open() && !c.link_closed {
            c.link_closed = true;
            let link = c.link;
            // What it sent before closing still reaches the server first.
            let lines: Vec<String> = c.outbox.drain(..).collect();
            for l in lines {
                self.model.borrow_mut().link_recv(link, l.as_bytes());
                self.pump()?;
            }
            self.model.borrow_mut().link_close(link);
            self.log(format!("client {i} link closed"));
            self.pump()?;
        }
        Ok(())
    }

    pub(super) fn poll_op(&mut self, i: usize) -> Check {
        let Some((op, kind)) = self.client(i).op else {
            return Ok(());
        };
        let r = self.client(i).h.poll(op);
        self.collect(i)?;
        let Some(r) = r else { return Ok(()) };
        self.client(i).op = None;
        self.log(format!("client {i} {kind:?} -> {r:?}"));
        let c = self.client(i);
        match (kind, r) {
            (OpKind::Open(oid), Ok(OpOk::Opened(f))) => c.files.push((f, oid)),
            (OpKind::Close, Ok(_)) => {
                if c.state() != ConnState::Closed {
                    return Err(format!("{}: close done but state {:?}", c.name, c.state()));
                }
            }
            (_, Ok(_)) => {}
            (kind, Err(e)) => {
                let expected = c.faulted
                    || matches!(
                        e,
                        Error::Os { .. } | Error::Link(_) | Error::ConnClosed | Error::FileClosed
                    ) && c.h.be.injected() > 0
                    || matches!(e, Error::Server(_))
                    || matches!(kind, OpKind::Close | OpKind::CloseFile(_))
                        && c.state() != ConnState::Up;
                if !expected {
                    return Err(format!("{}: {kind:?} failed: {e}", c.name));
                }
            }
        }
        Ok(())
    }
    pub(super) fn new_client(&mut self, proc_id: usize) -> Check {
        let (at, link) = {
            let mut m = self.model.borrow_mut();
            let revs = m.revs();
            let recent = &revs[revs.len().saturating_sub(6)..];
            let at = recent[self.rng.below(recent.len() as u64) as usize];
            (at, m.link_open())
        };
        let i = self.clients.len();
        let cfg = Config {
            page_size: 1,
            rev_cache: 1 + self.rng.below(4) as usize,
            ..Config::default()
        };
        self.clients.push(Some(Client {
            name: format!("client {i} (proc {proc_id})"),
            proc_id,
            h: {
                let seed = self.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut h = Harness::seeded(at, cfg, ModelStore::new(self.model.clone()), seed);
                for &(op, percent) in &self.swarm.os_faults {
                    let errno = match op {
                        OsOp::MapNew | OsOp::MapFixed | OsOp::Protect => wcfs_mock::ENOMEM,
                        OsOp::Send => wcfs_mock::EPIPE,
                        _ => wcfs_mock::EIO,
                    };
                    h.be.set_fail_chance(op, percent, errno);
                }
                h
            },
            link,
            link_closed: false,
            inbox: VecDeque::new(),
            inbox_eof: false,
            outbox: VecDeque::new(),
            op: None,
            files: Vec::new(),
            maps: Vec::new(),
            dirty: BTreeMap::new(),
            owned: BTreeMap::new(),
            spare: Vec::new(),
            faulted: false,
            os_logged: 0,
            forked: false,
            sent_at_fork: 0,
        }));
        self.log(format!("client {i} connects @{at} on link {link}"));
        Ok(())
    }

    pub(super) fn commit(&mut self) -> Check {
        if !self.model.borrow().can_commit() {
            return Ok(());
        }
        let n = 1 + self.rng.below(3);
        let mut changes = Vec::new();
        for _ in 0..n {
            let oid = self.rng.pick(&self.oids).expect("oids");
            let blk = self.rng.below(MAX_BLKS);
            let tag = self.rng.below(1000);
            let mut d = format!("{oid}#{blk}:{tag}").into_bytes();
            d.truncate(self.blksize as usize);
            changes.push(Change::Write(oid, blk, d));
        }
        // Some commits delete a file's last blocks: head shrinks.
        let mut shrinks = false;
        if self.rng.chance(25) {
            let oid = self.rng.pick(&self.oids).expect("oids");
            let nblk = {
                let m = self.model.borrow();
                m.size(oid, m.head()).unwrap_or(0) / self.blksize
            };
            if nblk > 0 {
                let from = self.rng.below(nblk);
                let pos = self.rng.below(changes.len() as u64 + 1) as usize;
                changes.insert(pos, Change::DeleteFrom(oid, from));
                shrinks = true;
            }
        }
        let at = self.model.borrow_mut().commit_changes(&changes);
        match at {
            Ok(at) => {
                self.report.commits += 1;
                self.report.shrinks += usize::from(shrinks);
                let what: Vec<String> = changes
                    .iter()
                    .map(|c| match c {
                        Change::Write(o, b, _) => format!("{}#{b}", o.0),
                        Change::DeleteFrom(o, b) => format!("{}#{b}..:deleted", o.0),
                    })
                    .collect();
                self.log(format!("commit @{at}: {what:?}"));
                self.pump()
            }
            Err(e) => Err(format!("commit refused: {e:?}")),
        }
    }

    /// Delivers some of the server's bytes to a client.
    pub(super) fn deliver_to_client(&mut self, i: usize) -> Check {
        let c = self.client(i);
        if c.inbox.is_empty() {
            if c.inbox_eof && matches!(c.state(), ConnState::Up | ConnState::Closing) {
                c.inbox_eof = false;
                c.h.eof();
                self.log(format!("client {i} EOF"));
                return self.collect(i);
            }
            return Ok(());
        }
        let len = c.inbox.len() as u64;
        let n = if self.rng.chance(60) {
            len as usize
        } else {
            1 + self.rng.below(len) as usize
        };
        let c = self.client(i);
        let bytes: Vec<u8> = c.inbox.drain(..n).collect();
        c.h.recv_bytes(&bytes);
        let text = String::from_utf8_lossy(&bytes).replace('\n', "⏎");
        self.log(format!("client {i} <- {text}"));
        self.collect(i)
    }

    /// Delivers one client line to the server.
    pub(super) fn deliver_to_server(&mut self, i: usize) -> Check {
        let c = self.client(i);
        if c.link_closed {
            return Ok(());
        }
        let Some(line) = c.outbox.pop_front() else {
            return Ok(());
        };
        let link = c.link;
        self.log(format!("server <- client {i}: {line}"));
        self.model.borrow_mut().link_recv(link, line.as_bytes());
        self.pump()
    }
}
