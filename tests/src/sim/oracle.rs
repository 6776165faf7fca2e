//! The oracle: what a user reads, checked byte for byte against the model.

use wcfs_core::wire::Oid;
use wcfs_core::MapId;
use wcfs_mock::{Mem, Path};

use super::{Check, PendingRead, World};
use crate::model::HeadRead;

impl World {
    // ---- the oracle ----

    /// Reads block `blk` of a mapping as a user would, and checks it.
    pub(super) fn read(&mut self, i: usize, map: MapId, blk: u64) -> Check {
        let (addr, oid, at, dirty, live, resyncing, exposed) = {
            let c = self.clients[i].as_ref().expect("client");
            let Some(m) = c.h.conn.mapping(map) else {
                return Ok(());
            };
            let oid = c.h.conn.file_oid(m.file);
            (
                m.blk_addr(blk),
                oid,
                c.h.conn.at(),
                m.dirty.contains(&blk),
                !m.faulting,
                c.resyncing(),
                m.exposed,
            )
        };
        let what = self.clients[i].as_ref().expect("client").h.be.at(addr);
        let bs = self.blksize;
        // Memory of a file past its end is SIGBUS, as on Linux. (A dirty
        // block is the user's private page: it never faults.)
        if let Some(Mem::File { path, offset }) = what {
            let m = self.model.borrow();
            let size = match path {
                Path::Head(o) => m.size(o, m.head()),
                Path::Rev(o, rev) => m.size(o, rev),
            };
            if live && !dirty && offset >= size.unwrap_or(0) {
                // The server's limit (PROTOCOL section 5, "Files can
                // shrink"): head lost this block after the client was told
                // it exists (its last open/fstat of head), and the server
                // pins no deleted block, so the view still maps head there
                // until the client resyncs. On Linux this read is SIGBUS;
                // no client can avoid it, so it is not the client's bug.
                // Head mapped past what the client was told is.
                let told = match path {
                    Path::Head(o) => {
                        let c = self.clients[i].as_ref().expect("client");
                        c.h.be.store.told.get(&o).copied().unwrap_or(0)
                    }
                    Path::Rev(..) => 0,
                };
                if offset < told {
                    drop(m);
                    self.report.server_limit_faults += 1;
                    self.log(format!(
                        "client {i}: #{blk} is {path} past its new end: SIGBUS (server limit)"
                    ));
                    return Ok(());
                }
                return Err(format!("client {i}: #{blk} is {path} past its end: SIGBUS"));
            }
        }
        let got = match what {
            None | Some(Mem::Fault) => {
                if live && !dirty {
                    return Err(format!("client {i}: live mapping faults at #{blk}"));
                }
                return Ok(());
            }
            // The OS refused both MAP_FIXED and mprotect, and the client
            // says so on the mapping: nothing more a client can do.
            _ if !live && exposed => {
                self.report.exposed_reads += 1;
                self.log(format!("client {i}: #{blk} exposed: {what:?}"));
                return Ok(());
            }
            _ if !live => {
                return Err(format!(
                    "client {i}: closed mapping readable at #{blk} ({what:?})"
                ))
            }
            Some(Mem::Zeros) => vec![0; bs as usize],
            Some(Mem::Private(tag)) => vec![tag; bs as usize],
            Some(Mem::File {
                path: Path::Rev(o, rev),
                offset,
            }) => self.model.borrow().data(o, rev, offset / bs),
            Some(Mem::File {
                path: Path::Head(o),
                offset,
            }) if {
                let m = self.model.borrow();
                offset >= m.size(o, m.head()).unwrap_or(0)
            } =>
            {
                // Past head's end (a dirty block's original mapping): the
                // kernel answers without the server, and caches nothing.
                vec![0; bs as usize]
            }
            Some(Mem::File {
                path: Path::Head(o),
                offset,
            }) => {
                let b = offset / bs;
                match self.cache.get(&(o, b)) {
                    Some(d) => d.clone(),
                    None => {
                        let r = self.model.borrow_mut().read_head(o, b);
                        match r {
                            HeadRead::Ready(d) => {
                                self.cache.insert((o, b), d.clone());
                                d
                            }
                            HeadRead::Wait(id) => {
                                self.log(format!("client {i} read #{blk} waits ({id})"));
                                self.reads.insert(
                                    id,
                                    PendingRead {
                                        client: i,
                                        map,
                                        blk,
                                    },
                                );
                                return self.pump();
                            }
                        }
                    }
                }
            }
        };
        self.report.reads_checked += 1;
        if dirty || resyncing {
            return Ok(());
        }
        let oid = oid.ok_or_else(|| format!("client {i}: live mapping of a file that is gone"))?;
        let want = self.model.borrow().data(oid, at, blk);
        if got != want && what == Some(Mem::Zeros) && self.regrowth_race(i, oid, blk) {
            self.report.regrowth_zeros += 1;
            self.log(format!(
                "client {i}: #{blk} shows zeros, head regrew it unpinned (server limit)"
            ));
            return Ok(());
        }
        if got != want {
            return Err(format!(
                "client {i} @{at}: f<{oid}> #{blk} shows {:?} ({what:?}), want {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            ));
        }
        Ok(())
    }

    /// The other face of the server's limit on shrinking files: the
    /// client was told (at its last open/fstat of head) that head has no
    /// block `blk`, so it shows zeros there; the block has data at the
    /// view's `at` (it was deleted after `at`), and head grew back over it
    /// with that same data before the watch was set up, so the server,
    /// which pins only blocks whose data differ from head's, never pinned
    /// it. Zeros until the next resync maps head there. A pin the client
    /// acked rules this out.
    pub(super) fn regrowth_race(&self, i: usize, oid: Oid, blk: u64) -> bool {
        let c = self.clients[i].as_ref().expect("client");
        let told = c.h.be.store.told.get(&oid).copied().unwrap_or(0);
        blk * self.blksize >= told && !self.model.borrow().pin_acked(c.link, oid, blk)
    }
}
