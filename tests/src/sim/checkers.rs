//! The checkers, one per property, run after every step.

use std::collections::BTreeMap;

use wcfs_core::wire::Tid;
use wcfs_core::{ConnState, MapId, OsOp};
use wcfs_mock::{Mem, Path};

use super::{Check, Checker, World};

impl World {
    // ---- the checkers: one per property, run after every step ----

    /// Every checker, named after the property it guards.
    pub(super) const CHECKERS: [(&'static str, Checker); 5] = [
        ("core invariants hold", World::core_invariants_hold),
        (
            "a connection that is not up shows no memory",
            World::down_connections_only_fault,
        ),
        (
            "every readable block shows its revision's bytes",
            World::blocks_show_their_revision,
        ),
        (
            "dirty blocks keep the user's page",
            World::dirty_blocks_keep_the_users_page,
        ),
        (
            "pins agree with the server's",
            World::pins_agree_with_the_server,
        ),
    ];

    /// Runs every checker on every live client.
    pub(super) fn check_all(&mut self) -> Check {
        for i in self.live() {
            for (property, check) in World::CHECKERS {
                check(self, i).map_err(|e| format!("{property}: {e}"))?;
            }
        }
        Ok(())
    }

    /// The core's own `Conn::check_invariants`.
    pub(super) fn core_invariants_hold(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        c.h.conn
            .check_invariants()
            .map_err(|e| format!("client {i}: {e}"))
    }

    /// Every block of every mapping of a connection that is down, closed or
    /// forked faults.
    pub(super) fn down_connections_only_fault(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        if matches!(c.state(), ConnState::Up | ConnState::Closing) {
            return Ok(());
        }
        for (_, m) in c.h.conn.mappings() {
            if m.exposed {
                // The OS refused both ways to fault it, and the mapping
                // says so: only after a refused mprotect.
                if !c.h.be.injected_ops().contains(&OsOp::Protect) {
                    return Err(format!("client {i}: exposed, yet no mprotect was refused"));
                }
                continue;
            }
            for blk in m.blk_start..m.blk_stop() {
                let what = c.h.be.at(m.blk_addr(blk));
                if !matches!(what, None | Some(Mem::Fault)) {
                    return Err(format!(
                        "client {i} is {:?} but #{blk} reads as {what:?}",
                        c.state()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The oracle on every block that can be read without a server read:
    /// see [`World::read`].
    pub(super) fn blocks_show_their_revision(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        let maps: Vec<(MapId, u64, u64)> =
            c.h.conn
                .mappings()
                .map(|(id, m)| (id, m.blk_start, m.blk_stop()))
                .collect();
        for (map, start, stop) in maps {
            for blk in start..stop {
                let c = self.clients[i].as_ref().expect("client");
                let m = c.h.conn.mapping(map).expect("mapping");
                let cached = match c.h.be.at(m.blk_addr(blk)) {
                    Some(Mem::File {
                        path: Path::Head(o),
                        offset,
                    }) => {
                        let m = self.model.borrow();
                        let past_end = offset >= m.size(o, m.head()).unwrap_or(0);
                        past_end || self.cache.contains_key(&(o, offset / self.blksize))
                    }
                    _ => true,
                };
                if cached {
                    self.read(i, map, blk)?;
                }
            }
        }
        Ok(())
    }

    /// A block the user dirtied shows what it showed then until the user
    /// gives it back (`remap_blk`), whatever the server pins.
    pub(super) fn dirty_blocks_keep_the_users_page(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        for (&(map, blk), &was) in &c.dirty {
            let Some(m) = c.h.conn.mapping(map) else {
                continue;
            };
            let now = c.h.be.at(m.blk_addr(blk));
            if !m.faulting && now != was {
                return Err(format!(
                    "client {i}: dirty block #{blk} of map {} remapped: {was:?} -> {now:?}",
                    map.0
                ));
            }
        }
        Ok(())
    }

    /// When nothing is in flight, the client's `pinned` is what the server
    /// pinned for it.
    pub(super) fn pins_agree_with_the_server(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        if !(c.up() && c.quiet() && !c.faulted()) {
            return Ok(());
        }
        for (f, oid) in c.h.conn.files() {
            let ours: BTreeMap<u64, Tid> = c.h.conn.pinned(f).into_iter().collect();
            let theirs = self.model.borrow().pinned(c.link, oid);
            if ours != theirs {
                return Err(format!(
                    "client {i}: f<{oid}> pinned {ours:?}, server pinned {theirs:?}"
                ));
            }
        }
        Ok(())
    }
}
