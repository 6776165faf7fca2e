//! The checks of the invariants written on [`Conn`] (and on `File` and
//! `Mapping`), for tests, fuzz targets and the simulation.

use super::Conn;
use crate::file::FileState;

impl Conn {
    /// Checks the invariants written on [`Conn`]; `Err` names the first broken one.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.files.check()?;
        self.maps.check()?;
        for (mid, m) in self.maps.iter() {
            let open = self
                .files
                .get(&m.file)
                .is_some_and(|f| f.state == FileState::Open);
            if !open && !m.faulting && m.addr != 0 {
                return Err("a mapping of a file that is not open does not fault");
            }
            if m.addr != 0 && !m.faulting {
                let f = &self.files[&m.file];
                if !f.maps.contains(&(m.blk_start, mid)) || m.blk_len > f.max_map_len {
                    return Err("a live mapping is missing from its file's index");
                }
            }
            if m.dirty.iter().any(|&b| !m.contains(b)) {
                return Err("a dirty block lies outside its mapping");
            }
        }
        for f in self.files.values() {
            if !f.pinned.is_empty() && !f.watched {
                return Err("pins kept for a file that is not watched");
            }
            if f.maps.iter().any(|(_, mid)| !self.maps.contains(*mid)) {
                return Err("a file indexes a mapping that is gone");
            }
            if f.blksize != 0 && f.size % f.blksize != 0 {
                return Err("head size not a multiple of blksize");
            }
        }
        if !self.reading() {
            if self.maps.values().any(|m| !m.faulting && m.addr != 0) {
                return Err("a connection that is not up has a live mapping");
            }
            if !self.files.is_empty() || !self.revs.is_empty() {
                return Err("a connection that is not up holds files");
            }
        }
        if !self.ops.waiters_are_live() {
            return Err("a reply is awaited for a finished op");
        }
        Ok(())
    }
}
