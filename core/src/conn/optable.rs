//! The connection's long operations as a table: each op by its id, when it
//! may start, its result until its caller takes it, and the request streams
//! whose reply an op waits for. The only code that changes either index;
//! what each op does step by step is `ops.rs`.

use alloc::vec::Vec;
use core::ops::Index;

use hashbrown::HashMap;

use super::{Error, OpOk};
use crate::action::Fd;
use crate::ids::{FileId, MapId, OpId};
use crate::wire::{Oid, StreamId, Tid};

#[derive(Clone, Copy, Debug)]
pub(super) enum OpKind {
    Open {
        oid: Oid,
        file: Option<FileId>,
    },
    CloseFile {
        file: FileId,
    },
    Resync {
        at: Tid,
        stats: usize,
        replies: usize,
    },
    Mmap {
        map: MapId,
    },
    Remap,
    CloseConn,
}

#[derive(Debug)]
pub(super) struct Op {
    pub(super) kind: OpKind,
    pub(super) started: bool,
    /// Head files a resync has still to stat, one at a time.
    pub(super) stat_fds: Vec<Fd>,
    /// Blocks still to remap, last first; may wait for an `@rev` open.
    pub(super) todo: Vec<(MapId, u64)>,
    result: Option<Result<OpOk, Error>>,
}

/// Invariants: an op's result, once set, is never replaced, and the op
/// leaves `by_id` when its caller takes the result; `waiting` names only
/// unfinished ops of `by_id` (finishing an op forgets its streams).
#[derive(Debug, Default)]
pub(super) struct Ops {
    by_id: HashMap<OpId, Op>,
    waiting: HashMap<StreamId, OpId>,
}

impl Ops {
    /// A new op, not started.
    pub(super) fn insert(&mut self, id: OpId, kind: OpKind) {
        let op = Op {
            kind,
            started: false,
            stat_fds: Vec::new(),
            todo: Vec::new(),
            result: None,
        };
        self.by_id.insert(id, op);
    }

    pub(super) fn get(&self, id: OpId) -> Option<&Op> {
        self.by_id.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: OpId) -> Option<&mut Op> {
        self.by_id.get_mut(&id)
    }

    /// The op not finished yet, if `id` names one.
    pub(super) fn live(&self, id: OpId) -> Option<&Op> {
        self.get(id).filter(|o| o.result.is_none())
    }

    pub(super) fn is_live(&self, id: OpId) -> bool {
        self.live(id).is_some()
    }

    pub(super) fn unfinished(&self) -> impl Iterator<Item = OpId> + '_ {
        self.by_id
            .iter()
            .filter(|(_, o)| o.result.is_none())
            .map(|(&id, _)| id)
    }

    /// Sets the result of op `id` if it has none yet, forgets the blocks it
    /// had still to remap and the replies it waited for, and gives its kind
    /// back; `None` (and nothing changes) if it was finished already.
    pub(super) fn finish(&mut self, id: OpId, r: Result<OpOk, Error>) -> Option<OpKind> {
        let o = self.by_id.get_mut(&id).filter(|o| o.result.is_none())?;
        o.result = Some(r);
        o.todo = Vec::new();
        if self.waiting.values().any(|&w| w == id) {
            self.waiting.retain(|_, w| *w != id);
        }
        Some(o.kind)
    }

    /// The result of op `id` once it has one, which forgets the op.
    pub(super) fn take_result(&mut self, id: OpId) -> Option<Result<OpOk, Error>> {
        self.by_id.get(&id)?.result.as_ref()?;
        self.by_id.remove(&id).and_then(|o| o.result)
    }

    /// Ops start in order of creation, each once it conflicts with no older
    /// or running op: a resync runs alone among opens, closes and resyncs;
    /// opens and closes of one file run one at a time. `oid_of` names the
    /// bigfile of an open file.
    pub(super) fn can_start(&self, id: OpId, oid_of: impl Fn(FileId) -> Option<Oid>) -> bool {
        let oid_of = |k: &OpKind| match *k {
            OpKind::Open { oid, .. } => Some(oid),
            OpKind::CloseFile { file } => oid_of(file),
            _ => None,
        };
        let is_resync = |k: &OpKind| matches!(k, OpKind::Resync { .. });
        let me = &self[id].kind;
        let conflicts = |k: &OpKind| {
            let gated = |k: &OpKind| is_resync(k) || oid_of(k).is_some();
            if is_resync(k) || is_resync(me) {
                gated(k) && gated(me)
            } else {
                oid_of(k).is_some() && oid_of(k) == oid_of(me)
            }
        };
        self.by_id.iter().all(|(&other, o)| {
            let ahead = other < id || o.started;
            other == id || o.result.is_some() || !ahead || !conflicts(&o.kind)
        })
    }

    /// Op `id`, which must be unfinished, waits for the reply on `stream`.
    pub(super) fn await_reply(&mut self, stream: StreamId, id: OpId) {
        debug_assert!(self.is_live(id));
        self.waiting.insert(stream, id);
    }

    /// The op the reply on `stream` is for; `None` if none waits for it
    /// (its op failed already).
    pub(super) fn take_waiter(&mut self, stream: StreamId) -> Option<OpId> {
        self.waiting.remove(&stream)
    }

    /// Whether every awaited reply is for an unfinished op.
    pub(super) fn waiters_are_live(&self) -> bool {
        self.waiting.values().all(|&id| self.is_live(id))
    }
}

impl Index<OpId> for Ops {
    type Output = Op;

    /// Op `id`, which must be in the table.
    fn index(&self, id: OpId) -> &Op {
        &self.by_id[&id]
    }
}
