//! The connection's mappings: each by its id, from `mmap` until `unmap`
//! (faulting ones included). The only code that adds or removes one, and
//! the one place a view is made to fault.

use alloc::vec::Vec;
use core::ops::Index;

use hashbrown::HashMap;

use crate::action::{Action, Actions, Src};
use crate::ids::MapId;
use crate::mapping::Mapping;

/// Invariant: placed mappings (`addr != 0`) never overlap.
#[derive(Debug, Default)]
pub(super) struct Maps {
    by_id: HashMap<MapId, Mapping>,
}

impl Maps {
    pub(super) fn get(&self, id: MapId) -> Option<&Mapping> {
        self.by_id.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: MapId) -> Option<&mut Mapping> {
        self.by_id.get_mut(&id)
    }

    pub(super) fn contains(&self, id: MapId) -> bool {
        self.by_id.contains_key(&id)
    }

    pub(super) fn insert(&mut self, id: MapId, m: Mapping) {
        self.by_id.insert(id, m);
    }

    pub(super) fn remove(&mut self, id: MapId) -> Option<Mapping> {
        self.by_id.remove(&id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (MapId, &Mapping)> + '_ {
        self.by_id.iter().map(|(&id, m)| (id, m))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Mapping> + '_ {
        self.by_id.values()
    }

    /// The mapping placed at `addr`, if any.
    pub(super) fn at_addr_mut(&mut self, addr: usize) -> Option<&mut Mapping> {
        self.by_id
            .values_mut()
            .find(|m| m.addr != 0 && m.addr == addr)
    }

    /// Makes mapping `id` fault from now on: a placed one is mapped over
    /// with inaccessible memory (`Src::Fault`); it is never remapped again.
    pub(super) fn fault(&mut self, id: MapId, actions: &mut Actions) {
        if let Some(m) = self.by_id.get_mut(&id) {
            fault(m, actions);
        }
    }

    /// Makes every mapping fault (see [`Maps::fault`]).
    pub(super) fn fault_all(&mut self, actions: &mut Actions) {
        for m in self.by_id.values_mut() {
            fault(m, actions);
        }
    }

    /// Checks the invariant written on [`Maps`].
    pub(super) fn check(&self) -> Result<(), &'static str> {
        let mut placed: Vec<(usize, usize)> = self
            .values()
            .filter(|m| m.addr != 0)
            .map(|m| (m.addr, m.addr + m.len_bytes()))
            .collect();
        placed.sort_unstable();
        if placed.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err("mappings overlap");
        }
        Ok(())
    }
}

fn fault(m: &mut Mapping, actions: &mut Actions) {
    if !m.faulting && m.addr != 0 {
        actions.push_back(Action::MapFixed {
            addr: m.addr,
            len: m.len_bytes(),
            src: Src::Fault,
        });
    }
    m.faulting = true;
}

impl Index<MapId> for Maps {
    type Output = Mapping;

    /// Mapping `id`, which must be in the table.
    fn index(&self, id: MapId) -> &Mapping {
        &self.by_id[&id]
    }
}
