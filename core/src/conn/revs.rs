//! The connection's cache of open `@rev` files: which are open, which one
//! goes when the cache is full (the least recently used), and what a
//! pinned block shows. The only code that reads or changes the cache.

use crate::action::{Fd, Src};
use crate::file::File;
use crate::wire::{Oid, Tid};

/// Most `@rev` files a connection keeps open.
pub const MAX_REV_CACHE: usize = 16;

/// An `@rev` file kept open.
#[derive(Clone, Copy, Debug)]
struct RevFile {
    oid: Oid,
    rev: Tid,
    fd: Fd,
    size: u64,
    /// The clock when a block last showed this file.
    used: u64,
}

/// Invariants: at most `cap` files, at most one per `(oid, rev)`; every
/// `fd` is open and the connection's to close.
#[derive(Debug)]
pub(super) struct RevCache {
    files: heapless::Vec<RevFile, MAX_REV_CACHE>,
    cap: usize,
    clock: u64,
}

impl RevCache {
    /// An empty cache of at most `cap` (`1..=MAX_REV_CACHE`) files.
    pub(super) fn new(cap: usize) -> RevCache {
        RevCache {
            files: heapless::Vec::new(),
            cap: cap.clamp(1, MAX_REV_CACHE),
            clock: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether `oid@rev` is open.
    pub(super) fn has(&self, oid: Oid, rev: Tid) -> bool {
        self.files.iter().any(|r| r.oid == oid && r.rev == rev)
    }

    /// Keeps `fd`, just opened as `oid@rev` (`size` bytes); returns the
    /// file to close now: `fd` itself when `oid@rev` is open already, else
    /// the least recently used one when the cache was full.
    #[must_use]
    pub(super) fn insert(&mut self, oid: Oid, rev: Tid, fd: Fd, size: u64) -> Option<Fd> {
        if self.has(oid, rev) {
            return Some(fd);
        }
        let evicted = if self.files.len() >= self.cap {
            let lru = (0..self.files.len())
                .min_by_key(|&i| self.files[i].used)
                .expect("a full cache is not empty");
            Some(self.files.swap_remove(lru).fd)
        } else {
            None
        };
        self.clock += 1;
        let kept = self.files.push(RevFile {
            oid,
            rev,
            fd,
            size,
            used: self.clock,
        });
        debug_assert!(kept.is_ok(), "cap <= MAX_REV_CACHE");
        evicted
    }

    /// Empties the cache; every file that was in it, to close.
    pub(super) fn take_all(&mut self) -> impl Iterator<Item = Fd> {
        core::mem::take(&mut self.files).into_iter().map(|r| r.fd)
    }

    /// What block `blk` of file `f` shows: its pin's `@rev` file (zeros
    /// past that file's end), else [`File::unpinned_src`]: head, or zeros
    /// past head's known size (also where head shrank: a pin or unpin there
    /// maps zeros, never head that would fault). `Err(rev)` when the `@rev`
    /// file must be opened first.
    pub(super) fn block_src(&mut self, f: &File, blk: u64) -> Result<Src, Tid> {
        let offset = blk * f.blksize;
        let Some(&rev) = f.pinned.get(&blk) else {
            return Ok(f.unpinned_src(blk));
        };
        let r = self
            .files
            .iter_mut()
            .find(|r| r.oid == f.oid && r.rev == rev)
            .ok_or(rev)?;
        self.clock += 1;
        r.used = self.clock;
        Ok(if offset < r.size {
            Src::File { fd: r.fd, offset }
        } else {
            Src::Zeros
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_file_per_rev_and_closes_the_least_recently_used() {
        let (a, b, c) = (Tid(1), Tid(2), Tid(3));
        let bs = 4096;
        let mut revs = RevCache::new(2);
        assert_eq!(revs.insert(Oid(1), a, Fd(10), bs), None);
        assert_eq!(revs.insert(Oid(1), a, Fd(11), bs), Some(Fd(11)), "a again");
        assert_eq!(revs.insert(Oid(1), b, Fd(12), bs), None);
        let mut f = File::new(Oid(1));
        f.blksize = bs;
        f.size = 4 * bs;
        f.pinned.insert(0, a);
        f.pinned.insert(1, a);
        // A block showing a makes b the least recently used.
        let at0 = Src::File {
            fd: Fd(10),
            offset: 0,
        };
        assert_eq!(revs.block_src(&f, 0), Ok(at0));
        // Past the @rev file's end: zeros.
        assert_eq!(revs.block_src(&f, 1), Ok(Src::Zeros));
        assert_eq!(
            revs.insert(Oid(1), c, Fd(13), bs),
            Some(Fd(12)),
            "b was least recent"
        );
        assert!(revs.has(Oid(1), a) && revs.has(Oid(1), c) && !revs.has(Oid(1), b));
        f.pinned.insert(2, b);
        assert_eq!(revs.block_src(&f, 2), Err(b));
        let mut left: heapless::Vec<Fd, 4> = revs.take_all().collect();
        left.sort();
        assert_eq!(&left[..], &[Fd(10), Fd(13)]);
        assert!(revs.is_empty());
    }
}
